"""The pages' templates: what the list and a job's page show of a job, everything from a user escaped."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from backends import get_target
from ehdnas.pipeline import measure
from server.jobs import Job
from server.page import layer_tables, plots, templates

RUNNING = Job(
    id=7, kind="search", spec={"space": "darts", "target": "ort-cpu", "lambdas": [0.1], "epochs": 5},
    status="running", progress=0.3125, message="search epoch 2/5, step 12/31 <b>", created_at=0.0, started_at=1.0,
    finished_at=None, heartbeat_at=1.0, worker="w", attempts=1, cancel_requested=False, error=None, result=None,
)  # fmt: skip


def _job_page(job: Job, events: list[dict] | None = None, artifacts: list[str] | None = None) -> str:
    """The job page's template, given what the route hands it."""
    artifacts = artifacts or []
    context = {"job": job, "events": events or [], "artifacts": artifacts, "plots": plots(artifacts),
               "layer_tables": layer_tables(job)}  # fmt: skip
    return templates.get_template("job.html").render(context)


def test_the_list_links_each_job_to_its_page_and_refreshes_while_one_runs() -> None:
    page = templates.get_template("jobs.html").render(jobs=[RUNNING], active=True)
    assert '<a href="/jobs/7">7</a>' in page and '<a href="/jobs/7">darts on ort-cpu, λ 0.1, 5 epochs</a>' in page
    assert "search epoch 2/5, step 12/31 &lt;b&gt;" in page  # escaped
    assert '<progress value="0.312" max="1"></progress> 31%' in page
    assert '<meta http-equiv="refresh" content="5">' in page
    done = replace(RUNNING, status="failed", error="it <broke>", finished_at=2.0)
    page = templates.get_template("jobs.html").render(jobs=[done], active=False)
    assert "refresh" not in page and "<code>it &lt;broke&gt;</code>" in page


def test_a_job_page_escapes_what_a_spec_a_message_an_event_and_an_artifact_name_hold() -> None:
    hostile = "<script>alert(1)</script>"
    job = replace(RUNNING, spec={**RUNNING.spec, "target": hostile}, message=hostile)
    events = [{"id": 3, "at": 5.0, "data": {"stage": hostile, "note": hostile, "loss": 0.123456}}]
    page = _job_page(job, events, [f"{hostile}.png", "a b/search.png"])
    assert page.count("<script>") == 1  # the page's own script only
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # title, message, event stage and note, spec
    assert "note &lt;script&gt;alert(1)&lt;/script&gt;, loss 0.1235" in page  # an event's values, floats short
    assert 'href="/v1/jobs/7/artifacts/a%20b/search.png"' in page  # a name is quoted into its address
    assert 'src="/v1/jobs/7/artifacts/%3Cscript%3Ealert%281%29%3C/script%3E.png"' in page
    assert 'data-src="/jobs/7/live"' in page and "<div data-finished>" not in page  # polled while it runs


def test_a_finished_job_page_shows_its_outcome_plots_top_folder_first_and_its_result() -> None:
    result = {"test_accuracy": 0.9123, "measured_latency_ms": {"median": 1.5}}
    job = replace(RUNNING, status="succeeded", progress=1.0, message="done", finished_at=9.0, result=result)
    page = _job_page(job, artifacts=["lambda-0/search.png", "model.onnx", "pareto.png", "result.json"])
    assert "<div data-finished>" in page and "test accuracy 0.9123, measured 1.500 ms" in page
    images = [line for line in page.splitlines() if "<img" in line]
    assert ["pareto.png" in images[0], "lambda-0/search.png" in images[1], len(images)] == [True, True, 2]
    assert '<li><a href="/v1/jobs/7/artifacts/model.onnx">model.onnx</a></li>' in page
    assert "&#34;test_accuracy&#34;: 0.9123" in page  # the result, in full


def test_a_benchmark_on_a_simulated_accelerator_shows_its_per_layer_table(tiny_model: Path) -> None:
    runner, protocol = get_target("systolic-edge32"), measure.timing_protocol(1, 0, 0, 0.5)
    document = measure.report(runner, protocol, measure.benchmark_files(runner, [tiny_model], protocol))
    layers = document["results"][0]["layers"]
    job = replace(RUNNING, kind="benchmark", spec={"space": "darts", "target": runner.name}, status="succeeded",
                  result=document)  # fmt: skip
    page = _job_page(job)
    assert "<h2>tiny.onnx: per layer</h2>" in page
    for layer in layers:
        row = f'<tr><td>{layer["name"]}</td><td>{layer["kind"]}</td><td class="number">{layer["cycles"]:,}</td>'
        assert row in page
    assert "per layer" not in _job_page(RUNNING)
