#!/usr/bin/env python3
"""Benchmark `dsd.sample.sample`: every shipped space at its default window, per dataset.

Prints models kept per second, candidates drawn per second, acceptance and wall time.
Usage: python scripts/bench_sample.py [--n 500] [--seed 0] [--dataset imagenet cifar10]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsd.sample import sample  # noqa: E402
from dsd.space import list_spaces  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="models to keep per space")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", nargs="+", default=["imagenet", "cifar10"])
    ap.add_argument("--spaces", nargs="*", help="space names (default: all shipped)")
    args = ap.parse_args()

    spaces = [s for s in list_spaces() if not args.spaces or s.name in args.spaces]
    header = (f"{'space':<22} {'dataset':<9} {'window':<22} {'n':>5} {'draws':>9} "
              f"{'accept':>8} {'seconds':>8} {'models/s':>9} {'cands/s':>9}")
    print(header)
    print("-" * len(header))
    total = 0.0
    for dataset in args.dataset:
        for space in spaces:
            t0 = time.perf_counter()
            r = sample(space, args.n, dataset=dataset, seed=args.seed)
            dt = time.perf_counter() - t0
            total += dt
            print(f"{space.name:<22} {dataset:<9} {str(r.window):<22} {len(r.models):>5} "
                  f"{r.draws:>9} {100 * r.acceptance:>7.3f}% {dt:>8.2f} "
                  f"{len(r.models) / dt:>9.0f} {r.draws / dt:>9.0f}")
    print(f"total {total:.1f} s")


if __name__ == "__main__":
    main()
