"""The read-only pages a browser shows: the job list at `/` and a job's own page at `/jobs/{id}`.

They are Jinja2 templates (`server/templates`, FastAPI's templating) with autoescape on, so every value that
comes from a spec, a message, an event or a file name is escaped by the template, never pasted in here. What
this module adds is what the templates show of a job: its one-line summary and outcome, its plots and the
per-layer figures a simulated target gave, all read from the job's row and folder.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.templating import Jinja2Templates

from ehdnas.client.models import FINISHED
from server.jobs import Job

PLOT_SUFFIX = ".png"  # the plots a job leaves (search.png, pareto.png, a sweep's lambda-<L>/search.png)


def summary(job: Job) -> str:
    """What the job does, in a line: space, target and the figures that tell one job of a kind from another."""
    spec = job.spec
    text = f"{spec.get('space', '')} on {spec.get('target', '')}"
    if job.kind in ("collect", "benchmark") and spec.get("samples"):
        text += f", {spec['samples']} samples"
    if job.kind == "search" and spec.get("latency_budget_ms") is not None:  # flownas, evolution, random
        text += f", budget {spec.get('latency_budget_ms')} ms ({spec.get('latency_from', 'predictor')})"
    elif job.kind == "search":
        text += f", λ {','.join(f'{lam:g}' for lam in spec['lambdas'])}, {spec['epochs']} epochs"
    return text


def outcome(job: Job) -> str:
    """How a finished job ended, in a line (its error is shown apart); else what it is doing."""
    result = job.result if isinstance(job.result, dict) else {}
    if job.kind == "search" and "test_accuracy" in result:
        if result["measured_latency_ms"] is None:  # a device measured elsewhere (external:NAME)
            return f"test accuracy {result['test_accuracy']:.4f}, predicted {result['predicted_latency_ms']:.3f} ms"
        measured = result["measured_latency_ms"]["median"]
        return f"test accuracy {result['test_accuracy']:.4f}, measured {measured:.3f} ms"
    if job.kind == "search" and "test_epe" in result:  # flownas
        measured, met = result["measured_latency_ms"]["median"], result["meets_budget_measured"]
        budget = "met" if met else "NOT met"
        return f"test EPE {result['test_epe']:.3f} px, measured {measured:.3f} ms (budget {budget})"
    if job.kind == "search" and "table_queries" in result:  # evolution, random
        measured = result["measured_latency_ms"]["median"]
        queries = result["table_queries"]
        return f"accuracy {result['accuracy']:.4g} ({queries} table queries), measured {measured:.3f} ms"
    if job.kind == "search" and "runs" in result:
        return f"{len(result['runs'])} searches; see the plot"
    return job.message


def plots(artifacts: list[str]) -> list[str]:
    """The artifacts to show as images, the top folder's first (a sweep's Pareto plot before each run's curve)."""
    return sorted((name for name in artifacts if name.endswith(PLOT_SUFFIX)), key=lambda name: (name.count("/"), name))


def layer_tables(job: Job) -> list[dict[str, Any]]:
    """The measured models that a target broke down by layer (a benchmark document's `results[].layers`)."""
    result = job.result if isinstance(job.result, dict) else {}
    return [r for r in result.get("results", []) if isinstance(r, dict) and r.get("layers")]


def artifact_url(job: Job, name: str) -> str:
    return f"/v1/jobs/{job.id}/artifacts/{quote(name)}"


def utc(seconds: float | None) -> str:
    return "" if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def figure(value: Any) -> str:
    """An event's value, short: floats to 4 significant digits, anything else as JSON (text as it is)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.trim_blocks = templates.env.lstrip_blocks = True  # the HTML as written, without the tags' lines
templates.env.globals.update(summary=summary, outcome=outcome, artifact_url=artifact_url, FINISHED=FINISHED)
templates.env.filters.update(utc=utc, figure=figure, pretty=pretty)
