"""The read-only status page at `/`: jobs, their state and progress, and a finished search's plot."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from pathlib import Path

from server.jobs import Job

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; } td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }
.succeeded { color: #15803d; } .failed { color: #b91c1c; } .cancelled { color: #6b7280; } .running { color: #1d4ed8; }
img { max-width: 900px; display: block; margin: 1em 0 2em; } code { font-size: 12px; }
"""
_PLOTS = ("pareto.png", "search.png")  # a sweep's plot first, else the single search's


def _summary(job: Job) -> str:
    spec = job.spec
    text = f"{spec.get('space', '')} on {spec.get('target', '')}"
    if job.kind in ("collect", "benchmark") and spec.get("samples"):
        text += f", {spec['samples']} samples"
    if job.kind == "search" and spec.get("space") == "flownas":
        text += f", budget {spec.get('latency_budget_ms')} ms ({spec.get('latency_from', 'predictor')})"
    elif job.kind == "search":
        text += f", λ {','.join(f'{lam:g}' for lam in spec['lambdas'])}, {spec['epochs']} epochs"
    return text


def _outcome(job: Job) -> str:
    if job.error:
        return f"<code>{escape(job.error)}</code>"
    result = job.result if isinstance(job.result, dict) else {}
    if job.kind == "search" and "test_accuracy" in result:
        measured = result["measured_latency_ms"]["median"]
        return f"test accuracy {result['test_accuracy']:.4f}, measured {measured:.3f} ms"
    if job.kind == "search" and "test_epe" in result:  # flownas
        measured, met = result["measured_latency_ms"]["median"], result["meets_budget_measured"]
        budget = "met" if met else "NOT met"
        return f"test EPE {result['test_epe']:.3f} px, measured {measured:.3f} ms (budget {budget})"
    if job.kind == "search" and "runs" in result:
        return f"{len(result['runs'])} searches; see the plot"
    return escape(job.message)


def status_page(jobs: list[Job] | None, jobs_dir: Path) -> str:
    """The page; `jobs` None means the visitor has no token yet."""
    head = f"<!doctype html><html><head><meta charset='utf-8'><title>ehdnas jobs</title><style>{_STYLE}</style>"
    if jobs is None:
        return (
            f"{head}</head><body><h1>ehdnas</h1><p>This page needs the server's API token: open the address "
            "<code>ehdnas serve</code> printed (<code>/?token=...</code>) once; it sets a cookie that this browser "
            "then sends.</p></body></html>"
        )
    rows, plots = [], []
    for job in jobs:
        created = datetime.fromtimestamp(job.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows.append(
            f"<tr><td>{job.id}</td><td>{job.kind}</td><td>{escape(_summary(job))}</td>"
            f"<td class='{job.status}'>{job.status}</td>"
            f"<td><progress value='{job.progress:.3f}' max='1'></progress> {100 * job.progress:.0f}%</td>"
            f"<td>{created} UTC</td><td>{_outcome(job)}</td></tr>"
        )
        plot = next((name for name in _PLOTS if (jobs_dir / str(job.id) / name).is_file()), None)
        if job.kind == "search" and job.status == "succeeded" and plot:
            image = f"<img src='/v1/jobs/{job.id}/artifacts/{plot}' alt='result plot of job {job.id}'>"
            plots.append(f"<h2>job {job.id}: {escape(_summary(job))}</h2>{image}")
    refresh = "<meta http-equiv='refresh' content='5'>" if any(j.status in ("queued", "running") for j in jobs) else ""
    table = (
        "<table><tr><th>id</th><th>kind</th><th>what</th><th>status</th><th>progress</th><th>submitted</th>"
        f"<th>outcome</th></tr>{''.join(rows)}</table>"
        if rows
        else "<p>No jobs yet: <code>POST /v1/jobs</code> (see <a href='/docs'>/docs</a>).</p>"
    )
    return f"{head}{refresh}</head><body><h1>ehdnas jobs</h1>{table}{''.join(plots)}</body></html>"
