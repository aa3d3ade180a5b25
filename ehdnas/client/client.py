"""A typed client of the job server's `/v1/jobs` API on httpx: what `ehdnas jobs` runs, usable from Python.

    with Client("http://gpu-box:8000", token) as client:
        job = client.submit("benchmark", {"target": "ort-cpu", "samples": 3})
        for update in client.watch(job.id):
            print(update.job.progress, update.job.message)

Every refusal is a `ServerError` (a `UserError`) whose message is the
server's own, one line: each field at fault of a 422, the detail of a 401,
404, 409 or 429; an unreachable server is "no server at URL".
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from ehdnas.client.address import TOKEN_ENV, find_token, server_url
from ehdnas.client.models import Event, JobList, JobOut
from ehdnas.core.errors import UserError

POLL_S = 0.5  # how often `watch` asks
END_POLLS = 4  # how long `watch` waits for a finished job's last event, in polls
EVENTS_PAGE = 1000  # the most events the server sends at once
T = TypeVar("T")
NO_TOKEN = f"set ${TOKEN_ENV} or give --token-file"


class ServerError(UserError):
    """The server refused a request (`status` its HTTP status; 0 when there was no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Update:
    """What `watch` yields when something changed: the job now and the events since the last update."""

    job: JobOut
    events: list[Event]


class Client:
    """The server at `url` (default: `EHDNAS_SERVER`, else the local default) with `token` (default: the one
    in `token_file`, else the environment's, else the stored one: see `ehdnas.client.address`)."""

    def __init__(self, url: str | None = None, token: str | None = None, token_file: Path | None = None,
                 timeout: float = 30.0) -> None:  # fmt: skip
        self.url = server_url(url)
        token, self.token_source = (token, "the caller") if token is not None else find_token(token_file)
        if token is not None and not token.isascii():
            raise UserError(f"the API token ({self.token_source}) holds characters an HTTP header cannot carry")
        try:
            scheme, host = httpx.URL(self.url).scheme, httpx.URL(self.url).host
        except httpx.InvalidURL:
            scheme = host = ""
        if scheme not in ("http", "https") or not host:
            raise UserError(f"not a server URL: {self.url!r} (give http://HOST:PORT)")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def submit(self, kind: str, spec: dict[str, Any]) -> JobOut:
        """Queue a job of `kind` ("search", "collect", "train_predictor", "benchmark")."""
        return self._json(JobOut, "POST", "/v1/jobs", json={"kind": kind, "spec": spec})

    def dry_run(self, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        """What the job would run, resolved and checked; nothing is queued."""
        return self._json(dict[str, Any], "POST", "/v1/jobs", json={"kind": kind, "spec": spec, "dry_run": True})

    def jobs(self, status: str | None = None, kind: str | None = None, limit: int = 100, offset: int = 0) -> JobList:
        """Jobs, newest first, without their results."""
        params = {"status": status, "kind": kind, "limit": limit, "offset": offset}
        return self._json(JobList, "GET", "/v1/jobs", params={k: v for k, v in params.items() if v})

    def job(self, job_id: int) -> JobOut:
        """One job with its result and the names of its artifacts."""
        return self._json(JobOut, "GET", f"/v1/jobs/{job_id}")

    def events(self, job_id: int, after: int = 0) -> list[Event]:
        """The job's events with an id above `after`, oldest first (every page of them)."""
        found: list[Event] = []
        while True:
            params = {"after": after, "limit": EVENTS_PAGE}
            page = self._json(list[Event], "GET", f"/v1/jobs/{job_id}/events", params=params)
            found += page
            if len(page) < EVENTS_PAGE:
                return found
            after = page[-1].id

    def watch(self, job_id: int, poll_s: float = POLL_S) -> Iterator[Update]:
        """An update whenever the job's status, progress or message changes or it has new events, the first at
        once; the last is the finished job with its last event (the one of its final state)."""
        last_event, seen, late, stages = 0, None, 0, set()
        while True:
            job = self.job(job_id)  # before the events: none is missed between the two reads
            events = self.events(job_id, last_event)
            last_event = events[-1].id if events else last_event
            stages |= {event.data.get("stage") for event in events}
            now = (job.status, job.progress, job.message)
            ended = job.finished and job.status in stages
            if events or now != seen:
                yield Update(job, events)
                seen = now
            # The server writes a final state, then its event: wait a few polls for it (none on an older job).
            late += job.finished
            if ended or late > END_POLLS:
                return
            time.sleep(poll_s)

    def cancel(self, job_id: int) -> JobOut:
        """Cancel a queued job at once; a running one stops within seconds (its status says `running` until)."""
        return self._json(JobOut, "POST", f"/v1/jobs/{job_id}/cancel")

    def artifacts(self, job_id: int) -> list[str]:
        """The names of the files the job wrote (paths inside its folder)."""
        return self.job(job_id).artifacts or []

    def download(self, job_id: int, name: str, folder: Path) -> Path:
        """Artifact `name` saved under `folder` at its relative path; the file. Written to a temporary file and
        renamed, so a broken transfer leaves no partial file behind."""
        folder = folder.expanduser().resolve()
        path = (folder / name).resolve()
        if not path.is_relative_to(folder) or path == folder:
            raise UserError(f"artifact name {name!r} is no path inside a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with (
                os.fdopen(descriptor, "wb") as file,
                self._request("GET", f"/v1/jobs/{job_id}/artifacts/{name}") as response,
            ):
                for chunk in response.iter_bytes():
                    file.write(chunk)
            os.replace(temporary, path)
        except httpx.HTTPError as err:
            Path(temporary).unlink(missing_ok=True)
            raise ServerError(f"{self.url}: the transfer of {name!r} broke off ({err or type(err).__name__})") from None
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    # The wire.

    def _json(self, into: type[T], method: str, path: str, **kwargs: Any) -> T:
        """The answer's JSON document read as `into`; one that is not is a `ServerError` (a proxy's page, a
        server of another version)."""
        with self._request(method, path, **kwargs) as response:
            try:
                return TypeAdapter(into).validate_json(response.read())
            except ValidationError as err:
                problem = err.errors(include_url=False, include_input=False)[0]
                raise ServerError(
                    f"{self.url}{path} answered with no {getattr(into, '__name__', 'document')} this client "
                    f"reads ({'.'.join(map(str, problem['loc']))}: {problem['msg']})",
                    response.status_code,
                ) from None

    def _request(self, method: str, path: str, **kwargs: Any) -> closing[httpx.Response]:
        """The streamed response (a context manager that closes it), or the refusal as a `ServerError`."""
        try:
            response = self._http.send(self._http.build_request(method, path, **kwargs), stream=True)
        except httpx.ConnectError:
            raise ServerError(f"no server at {self.url}") from None
        except httpx.TimeoutException:
            raise ServerError(f"{self.url} did not answer within {self._http.timeout.read:g} s") from None
        except httpx.HTTPError as err:
            raise ServerError(f"{self.url}: {err or type(err).__name__}") from None
        if response.is_success:
            return closing(response)
        response.read()
        response.close()
        raise ServerError(self._refusal(response), response.status_code)

    def _refusal(self, response: httpx.Response) -> str:
        """The server's message, one line: each problem of a 422 as `field: message`."""
        try:
            detail = response.json()["detail"]
        except (ValueError, KeyError, TypeError):
            text = " ".join(response.text.split())[:200]
            return f"{self.url} answered {response.status_code} {response.reason_phrase}" + (
                f": {text}" if text else ""
            )
        if isinstance(detail, list):
            message = "; ".join(_problem(item) for item in detail)
        else:
            message = str(detail)
        if response.status_code == 401:
            message += f" (token from {self.token_source})" if self.token_source else f" (no token sent: {NO_TOKEN})"
        return message


def _problem(item: Any) -> str:
    """One problem of a 422 as `field: message`; the field as a path inside the spec (`options.threads`)."""
    try:
        loc, msg = list(item["loc"]), str(item["msg"])
    except (KeyError, TypeError):
        return str(item)
    if loc[:1] == ["body"]:
        loc = loc[3:] if len(loc) >= 3 and loc[2] == "spec" else loc[1:]
    elif loc[:1] in (["query"], ["path"]):
        loc = loc[1:]
    where = ".".join(str(part) for part in loc)
    return f"{where}: {msg}" if where else msg
