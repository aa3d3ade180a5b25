"""Paths in server specs (issue 21, class 5): nothing outside the folders the operator allows is read or looked at,
and a file inside them is named in errors, never quoted; and the job folder's links out are not artifacts."""

from __future__ import annotations

import functools
from pathlib import Path

import httpx
import pytest

from ehdnas.core.errors import UserError
from server.settings import Settings
from tests.conftest import TOKEN
from tests.server.test_server import refusal, submit

SECRET = "hunter2-do-not-echo"
REFUSED = (
    "this server reads no file or folder outside the ones its operator allows (ehdnas serve --data-dir DIR, "
    "or EHDNAS_DATA_DIRS)"
)
INLINE = "; or give the accelerator inline, as the spec's `accelerator` object"


def dry_run(client: httpx.Client, kind: str, **spec) -> httpx.Response:
    return client.post("/v1/jobs", json={"kind": kind, "dry_run": True, "spec": spec})


def test_a_spec_may_name_paths_only_inside_the_folders_the_operator_allows(launch, tmp_path: Path) -> None:
    allowed, data, outside = tmp_path / "allowed", tmp_path / "data-sets", tmp_path / "outside"
    for folder in (allowed, data / "images", data / "chairs", outside / "images"):
        folder.mkdir(parents=True)
    (outside / "secret.toml").write_text(f'rows = 16\npassword = "{SECRET}"\n')
    (allowed / "escape.toml").symlink_to(outside / "secret.toml")
    (allowed / "out").symlink_to(outside)
    (allowed / "mine.toml").write_text("rows = 16\ncols = 8\n")
    for split in ("train", "test"):  # the files the checks list (they read none at submission)
        for label in ("a", "b"):
            (data / "images" / split / label).mkdir(parents=True)
            (data / "images" / split / label / "0.png").touch()
    for i in range(3):
        for name in ("flow.flo", "img1.ppm", "img2.ppm"):
            (data / "chairs" / f"{i:05d}_{name}").touch()
    server = launch(workers=0, args=("--data-dir", str(allowed), "--data-dir", str(data)))
    client = server.client(TOKEN)
    problems = functools.partial(refusal, client, "benchmark", target="systolic-edge32", samples=1)

    # Outside (a file there, none there, `..`, a link out, a NUL byte): one answer, whatever the server holds.
    escapes = [f"{allowed}/../outside/secret.toml", allowed / "escape.toml", allowed / "out" / "secret.toml"]
    for path in [outside / "secret.toml", outside / "missing.toml", *escapes, "secret.toml", f"{allowed}/a\0b.toml"]:
        spec = {"target": "systolic-edge32", "samples": 1, "options": {"accelerator": str(path)}}
        response = client.post("/v1/jobs", json={"kind": "benchmark", "spec": spec})
        assert response.status_code == 422 and SECRET not in response.text, path
        detail = response.json()["detail"]
        assert [(p["loc"][3:], p["msg"]) for p in detail] == [(["options", "accelerator"], REFUSED + INLINE)], path
    # Data and calibration folders, of every kind that names one, the same way.
    for kind, spec, field in [
        ("search", {"data": f"folder:{outside / 'images'}"}, ("data",)),
        ("search", {"data": f"cifar10:{outside / 'nothing'}"}, ("data",)),
        ("search", {"data": "folder:~/"}, ("data",)),
        ("search", {"space": "flownas", "latency_budget_ms": 2, "data": f"chairs:{outside}"}, ("data",)),
        ("search", {"method": "random", "space": "nb201", "latency_budget_ms": 1, "latency_from": "measured",
                    "accuracy_table": str(outside / "secret.toml")}, ("accuracy_table",)),
        ("collect", {"samples": 5, "target": "tflite-cpu", "options": {"calibration": f"folder:{outside / 'images'}"}},
         ("options", "calibration")),
        ("benchmark", {"target": "tflite-cpu", "options": {"calibration": f"folder:{outside / 'gone'}"}},
         ("options", "calibration")),
    ]:  # fmt: skip
        assert refusal(client, kind, **{"target": "ort-cpu", **spec}) == {field: REFUSED}, spec

    # Inside: read as before. A good file and existing folders pass; a missing folder is then said to be missing.
    mine = dry_run(client, "benchmark", target="systolic-edge32", options={"accelerator": str(allowed / "mine.toml")})
    assert mine.status_code == 200, mine.text
    search = {"target": "ort-cpu", "auto_predictor": True}
    assert dry_run(client, "search", **search, data=f"folder:{data / 'images'}").status_code == 200
    assert dry_run(client, "search", **search, data=f"folder:{allowed}/../data-sets/images").status_code == 200
    assert "no such folder" in refusal(client, "search", **search, data=f"folder:{data / 'none'}")[("data",)]
    flow = {"target": "systolic-edge32", "space": "flownas", "latency_budget_ms": 2, "latency_from": "measured"}
    assert dry_run(client, "search", **flow, data=f"chairs:{data / 'chairs'}").status_code == 200
    (allowed / "table.csv").write_text("arch,accuracy\n0,0.5\n")
    tabular = {"method": "random", "space": "nb201", "latency_budget_ms": 1, "latency_from": "measured"}
    assert dry_run(client, "search", **flow | tabular, accuracy_table=str(allowed / "table.csv")).status_code == 200
    calibrated = {"calibration": f"folder:{data / 'images'}", "precision": "int8"}
    assert dry_run(client, "benchmark", target="tflite-cpu", options=calibrated).status_code == 200

    # A bad file inside: its field named, none of its values (nor an unknown key's name) quoted.
    for text, message in [
        (f'rows = "{SECRET}"\n', "field 'rows' is not valid"),
        (f'name = "{SECRET}"\ndataflow = "{SECRET}"\n', "field 'dataflow' is not valid"),
        (f"{SECRET} = 1\n", "a key that is not a field of an accelerator (known: binary_macs_per_pe, bits, "),
        (f"rows = {SECRET}\n", "not a valid TOML accelerator description"),
        (b"\xff" + SECRET.encode(), "not a valid TOML accelerator description"),
    ]:
        bad = allowed / "bad.toml"
        bad.write_bytes(text if isinstance(text, bytes) else text.encode())
        refused = problems(options={"accelerator": str(bad)})
        assert list(refused) == [("options", "accelerator")] and message in refused[("options", "accelerator")], text
        assert SECRET not in str(refused) and "0xff" not in str(refused), refused
    assert client.get("/v1/jobs").json()["total"] == 0  # nothing was queued


def test_with_no_folder_allowed_a_spec_names_no_path_and_the_accelerator_goes_inline(launch, tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text("rows = 16\n")
    client = launch(workers=0).client(TOKEN)
    refused = refusal(client, "benchmark", target="systolic-edge32", options={"accelerator": str(mine)})
    assert refused == {("options", "accelerator"): REFUSED + INLINE}
    assert refusal(client, "search", target="ort-cpu", data=f"folder:{tmp_path}") == {("data",): REFUSED}
    inline = dry_run(client, "benchmark", target="systolic-edge32", accelerator={"rows": 16})
    assert inline.status_code == 200 and inline.json()["accelerator"] == {"rows": 16}
    embedded = dry_run(client, "search", target="ort-cpu", auto_predictor=True, data="cluttered")
    assert embedded.status_code == 200


def test_the_allowed_folders_come_from_the_environment_as_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EHDNAS_DATA_DIRS", raising=False)
    assert Settings.load().data_dirs == []  # none by default
    monkeypatch.setenv("EHDNAS_DATA_DIRS", '["/srv/data", "/srv/accelerators"]')
    assert Settings.load().data_dirs == [Path("/srv/data"), Path("/srv/accelerators")]
    assert Settings.load(data_dirs=[Path("/mine")]).data_dirs == [Path("/mine")]  # the flag wins
    monkeypatch.setenv("EHDNAS_DATA_DIRS", "/srv/data")
    with pytest.raises(UserError, match='^server settings: error parsing value for field "data_dirs"'):
        Settings.load()


def test_links_out_of_a_job_folder_are_not_listed_as_its_artifacts(launch, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.txt").write_text(SECRET)
    (outside / "sub" / "model.onnx").write_text(SECRET)
    client = launch(workers=0).client(TOKEN)
    job = submit(client, "benchmark", target="ort-cpu", samples=1)["id"]  # queued: no worker runs it
    folder = tmp_path / "store-jobs" / str(job)
    (folder / "lambda-0").mkdir(parents=True)
    (folder / "result.json").write_text("{}")
    (folder / "lambda-0" / "same.json").symlink_to(folder / "result.json")  # a link inside: served, so listed
    (folder / "lambda-1").symlink_to(outside / "sub", target_is_directory=True)
    (folder / "lambda-0" / "secret.txt").symlink_to(outside / "secret.txt")
    assert client.get(f"/v1/jobs/{job}").json()["artifacts"] == ["lambda-0/same.json", "result.json"]
    assert client.get(f"/v1/jobs/{job}/artifacts/lambda-0/same.json").status_code == 200
    for name in ("lambda-1/model.onnx", "lambda-0/secret.txt"):
        assert client.get(f"/v1/jobs/{job}/artifacts/{name}").status_code == 400, name
