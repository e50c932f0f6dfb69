"""Benchmark: vectorised oriented-box collision (separating axes, numpy) vs a shapely polygon loop.

    python tools/bench_collision.py [--pairs 1000000] [--shapely-pairs 20000] [--out bench_collision.json]

Times `obb_collide` on all (ego, obstacle, time-step) pairs. The shapely loop (build two polygons,
`intersects`) runs on the first `--shapely-pairs` pairs only and its time is extrapolated per
pair to the full count; verdicts are compared on exactly the pairs both ran. Writes a JSON report.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmrft.rewards.trajectory import obb_collide  # noqa: E402


def random_boxes(rng: np.random.Generator, shape: tuple[int, ...], spread: float = 10.0) -> np.ndarray:
    """Valid oriented boxes (x, y, yaw, length, width); about 10% of random pairs overlap at this spread."""
    xy = rng.uniform(-spread, spread, shape + (2,))
    yaw = rng.uniform(-math.pi, math.pi, shape + (1,))
    size = rng.uniform(0.5, 6.0, shape + (2,))
    return np.concatenate([xy, yaw, size], axis=-1)


def polygon(box: np.ndarray):
    from shapely.geometry import Polygon

    x, y, yaw, length, width = box
    ux, uy = math.cos(yaw) * length / 2, math.sin(yaw) * length / 2
    vx, vy = -math.sin(yaw) * width / 2, math.cos(yaw) * width / 2
    return Polygon([(x + ux + vx, y + uy + vy), (x - ux + vx, y - uy + vy), (x - ux - vx, y - uy - vy),
                    (x + ux - vx, y + uy - vy)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--obstacles", type=int, default=50, help="K obstacles per step; T = pairs / K")
    parser.add_argument("--shapely-pairs", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="vectorised timing: best of this many runs")
    parser.add_argument("--out", default="bench_collision.json")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    steps = args.pairs // args.obstacles
    ego = random_boxes(rng, (steps,))
    obstacles = random_boxes(rng, (steps, args.obstacles))
    pairs = steps * args.obstacles

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        verdicts = obb_collide(ego, obstacles)
        times.append(time.perf_counter() - start)
    vectorised_s = min(times)

    flat_ego = np.repeat(ego, args.obstacles, axis=0)  # pair i = (step i // K, obstacle i % K)
    flat_obstacles = obstacles.reshape(-1, 5)
    n = min(args.shapely_pairs, pairs)
    start = time.perf_counter()
    reference = np.array([polygon(flat_ego[i]).intersects(polygon(flat_obstacles[i])) for i in range(n)])
    shapely_sample_s = time.perf_counter() - start
    shapely_s = shapely_sample_s / n * pairs

    agree = int((verdicts.reshape(-1)[:n] == reference).sum())
    report = {
        "pairs": pairs,
        "vectorised_s": vectorised_s,
        "vectorised_pairs_per_s": pairs / vectorised_s,
        "shapely_pairs_run": n,
        "shapely_sample_s": shapely_sample_s,
        "shapely_s_extrapolated": shapely_s,
        "speedup": shapely_s / vectorised_s,
        "verdicts_compared": n,
        "verdicts_agree": agree,
        "identical": agree == n,
        "overlap_fraction": float(verdicts.mean()),
        "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "machine": f"{platform.machine()} {platform.python_version()} numpy {np.__version__}",
    }
    print(f"vectorised: {pairs:,} pairs in {vectorised_s:.3f} s ({pairs / vectorised_s:,.0f} pairs/s)")
    print(f"shapely:    {n:,} pairs in {shapely_sample_s:.2f} s -> {shapely_s:.1f} s for {pairs:,} (extrapolated)")
    print(f"speed ratio: {shapely_s / vectorised_s:,.0f}x   verdicts identical on {agree:,}/{n:,} pairs")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
