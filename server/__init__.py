"""The job server: FastAPI over the SQLite store, jobs run by worker processes (`ehdnas serve`).

`app` builds the application, `routes` hold its routes (one module per
resource), `deps` what they take from it, `models` the API's shapes,
`middleware` the body bound, `settings` what it runs with (`EHDNAS_*`), `specs`
what a job may ask, `jobs` the queue, `worker` who runs it, `execute` what each
kind runs (the CLI's library calls), `page` the status page, `serve` the whole,
`local` a server on loopback for scripts and tests.
"""
