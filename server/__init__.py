"""The job server (FastAPI over the SQLite store). It arrives with the job-server issue."""
