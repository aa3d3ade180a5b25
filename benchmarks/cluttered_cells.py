"""Does the data tell cells apart? Fixed DARTS cells retrained on `--data`, their test accuracy and seconds.

Six cells of the demo's network size (5 cells, 8 channels), each retrained from
scratch the way a search's result is (`retrain`, `--retrain-epochs`, batch 64):
every edge `sep_conv_3x3`; every edge a skip connection or 3x3 average pooling
(no convolution but the 1x1 preprocessing; both cells take every node from the
cell's two inputs); and the first 4 architectures the space samples with seed
0. On the embedded digits every cell reaches about 99%; the cluttered digits
were calibrated for the first cell at 75-90% and the second clearly below it.
One torch thread.

    .venv/bin/python -m benchmarks.cluttered_cells [--data cluttered] [--input-size 16] [--retrain-epochs 10]
"""

from __future__ import annotations

import argparse
import time

import torch

from ehdnas.methods.darts import SearchSettings, retrain
from ehdnas.spaces import get_space
from ehdnas.spaces.darts import DartsSpace, Genotype
from ehdnas.tasks.images import load_data


def uniform_cell(ops: list[str]) -> Genotype:
    """Both cell types with `ops` in turn on their 8 edges, every node fed by the cell's two inputs."""
    edges = tuple((ops[k % len(ops)], k % 2) for k in range(8))
    return Genotype(normal=edges, reduce=edges)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cluttered")
    parser.add_argument("--input-size", type=int, default=16)
    parser.add_argument("--retrain-epochs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)

    space = get_space("darts", {"layers": 5, "channels": 8, "input_size": args.input_size})
    assert isinstance(space, DartsSpace)
    data = load_data(args.data, args.input_size, space.config.in_channels)
    cells = {
        "all sep_conv_3x3": uniform_cell(["sep_conv_3x3"]),
        "skip + avg_pool": uniform_cell(["skip_connect", "avg_pool_3x3"]),
    }
    cells.update({f"sampled {i}": genotype for i, genotype in enumerate(space.sample_many(4, 0))})
    settings = SearchSettings(retrain_epochs=args.retrain_epochs, batch_size=64, space_options=space.config_dict())
    print(f"{args.data}: {len(data.train_x)} train, {len(data.test_x)} test, {space.config_dict()}")
    print("| cell | test accuracy | retrain s | genotype |\n| --- | --- | --- | --- |")
    for name, genotype in cells.items():
        started = time.perf_counter()
        _, accuracy = retrain(settings, space, genotype, data, lambda event: None)
        print(f"| {name} | {accuracy:.1%} | {time.perf_counter() - started:.0f} | `{genotype.to_text()}` |", flush=True)


if __name__ == "__main__":
    main()
