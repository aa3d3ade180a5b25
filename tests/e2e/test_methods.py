"""End to end (slow), beside tests/methods/test_methods.py: the method registry's contract, and the two faces (CLI,
HTTP) resolving the same search the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.methods.test_methods import INVALID, SPECS, _flags  # noqa: F401


@pytest.mark.slow
def test_cli_and_server_resolve_the_same_settings_and_refuse_the_same_specs(tmp_path: Path) -> None:
    from tests.server.test_server import TOKEN, start_server

    env = {"EHDNAS_API_TOKEN": TOKEN, "XDG_DATA_HOME": str(tmp_path / "data")}
    server = start_server(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "serve.log", 0, env)
    try:
        client = server.client(TOKEN)
        for spec in SPECS:
            cli = run_cli("search", *_flags(spec), "--dry-run", "--json")
            response = client.post("/v1/jobs", json={"kind": "search", "spec": {"target": "systolic-edge32", **spec},
                                                     "dry_run": True})  # fmt: skip
            assert response.status_code == 200, response.text
            assert json.loads(cli.stdout) == response.json(), spec["method"]
        for spec in INVALID:
            cli = run_cli("search", *_flags(spec), "--dry-run", "--json", check=False)
            response = client.post("/v1/jobs", json={"kind": "search", "spec": {"target": "systolic-edge32", **spec},
                                                     "dry_run": True})  # fmt: skip
            assert cli.returncode == 2 and response.status_code == 422, (spec, cli.stderr, response.text)
            message = response.json()["detail"][0]["msg"]
            assert message in cli.stderr, (message, cli.stderr)
        assert client.get("/v1/jobs").json()["total"] == 0  # a dry run queues nothing
    finally:
        assert server.stop() == 0
