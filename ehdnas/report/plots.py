"""The plots a search leaves in its result folder: what alpha learned, and accuracy (or EPE) against latency.

matplotlib is imported by each function, with the file-only Agg backend, so
importing a method costs nothing of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def plot_search(history: list[dict[str, Any]], path: Path) -> Path:
    """Final op probabilities per edge, and predicted latency and accuracy over the epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ehdnas.spaces.darts import OPS

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    image = left.imshow(np.asarray(history[-1]["alpha"]), aspect="auto", cmap="viridis")
    left.set(title="softmax(alpha) after the search", xlabel="op", ylabel="edge (normal 0-13, reduce 14-27)")
    left.set_xticks(range(len(OPS)), OPS, rotation=45, ha="right")
    figure.colorbar(image, ax=left)
    epochs = [r["epoch"] for r in history]
    right.plot(epochs, [r["predicted_ms_soft"] for r in history], label="predicted ms, softmax(alpha)")
    right.plot(epochs, [r["predicted_ms_derived"] for r in history], label="predicted ms, derived genotype")
    if "follow_measured_ms" in history[-1]:  # the predictor followed the search: the derived network measured
        right.plot(epochs, [r["follow_measured_ms"] for r in history], "o", label="measured ms, derived genotype")
    right.set(xlabel="epoch", ylabel="latency (ms)", title="latency and alpha during the search")
    right.xaxis.get_major_locator().set_params(integer=True)
    twin = right.twinx()
    twin.plot(epochs, [r["val_acc"] for r in history], "k--", label="supernet val accuracy")
    twin.plot(epochs, [r["alpha_max"] for r in history], "k:", label="mean largest softmax(alpha)")
    twin.set_ylabel("accuracy, probability")
    lines = right.get_lines() + twin.get_lines()
    right.legend(lines, [line.get_label() for line in lines], loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_tradeoff(
    rows: Sequence[dict[str, Any]], target: str, path: Path, random: Sequence[tuple[float, float]] = ()
) -> Path:
    """Test accuracy against measured latency: each search a point, coloured by lambda (several seeds: several
    points, their mean joined), lambda 0 (DARTS) marked as the baseline, and random cells (ms, accuracy) in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.5, 4.8))
    if random:
        axes.scatter(*zip(*random), s=14, color="0.6", label="random cells")
    lambdas = sorted({r["lambda"] for r in rows})
    aware = [lam for lam in lambdas if lam > 0]  # coloured in order along one colour map: no two alike
    means = []
    for lam in lambdas:
        group = [r for r in rows if r["lambda"] == lam]
        ms, acc = [r["measured_ms"] for r in group], [r["test_accuracy"] for r in group]
        shade = plt.cm.viridis(0.9 * aware.index(lam) / max(1, len(aware) - 1)) if lam > 0 else "black"
        style = {"marker": "s" if lam == 0 else "o", "color": shade}
        axes.scatter(ms, acc, s=30, label="λ=0 (DARTS)" if lam == 0 else f"λ={lam:g}", **style)
        means.append((float(np.mean(ms)), float(np.mean(acc))))
    axes.plot(*zip(*means), "--", color="0.3", alpha=0.6, label="mean of each λ")
    axes.set(xlabel=f"measured latency on {target} (ms)", ylabel="test accuracy", title="accuracy vs latency")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_flow_pareto(
    population: Sequence[Any],  # evolution Candidates, the chosen one first
    scores: dict[str, dict[str, float]],
    budget_ms: float,
    path: Path,
) -> Path:
    """Validation EPE against latency of the last population, the chosen encoder marked, the budget drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    texts = [c.arch.to_text() for c in population]
    latency = [c.latency_ms for c in population]
    epe = [scores[t]["val_epe"] for t in texts]
    figure, axes = plt.subplots(figsize=(7, 5))
    axes.scatter(latency, epe, s=18, alpha=0.7, label="last population")
    axes.scatter(latency[:1], epe[:1], s=90, marker="*", color="red", label="chosen (best fitness)")
    axes.axvline(budget_ms, color="gray", linestyle="--", label=f"budget {budget_ms:g} ms")
    axes.set(xlabel="encoder latency (ms)", ylabel="validation EPE (px)", title="FlowNAS: EPE against latency")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
