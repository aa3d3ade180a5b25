"""The job server's client: `Client` over HTTP (httpx), and the documents it reads (`ehdnas.client.models`).

It needs httpx and pydantic, never the server's own libraries (FastAPI, the
store), so it installs alone: `pip install 'ehdnas[client]'`.
"""

from ehdnas.client.client import Client, ServerError, Update
from ehdnas.client.models import Event, JobList, JobOut

__all__ = ["Client", "Event", "JobList", "JobOut", "ServerError", "Update"]
