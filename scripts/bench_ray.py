"""Models/hour of `dsd train --executor ray` against the number of GPUs of one host, with the
jobs submitted longest-first and in the store's order.

The counterpart of bench_local.py (same harness, scripts/benchlib.py, same models and table):
for every count in --gpus and order in --orders a child process sees the first g GPUs, starts a
fresh local Ray cluster on them and trains --models-per-gpu × g sampled CIFAR-regime models
through the Ray executor (each model a task of 1/--per-gpu GPU). Rows are added to --out.

  python scripts/bench_ray.py --gpus 1,2,4,8 --out scaling.json        # 10 epochs, 8 per GPU
  python scripts/bench_ray.py --gpus 4 --orders longest --out scaling.json
  python scripts/bench_ray.py --gpus 0 --dataset synthetic --models 2 --epochs 1 \\
      --window 10MF-20MF --subset 256 --test-subset 128                 # CPU smoke (2 CPUs)

Needs Ray (`pip install 'dsd[ray]'`).
"""
from __future__ import annotations

from benchlib import scaling_main

if __name__ == "__main__":
    scaling_main("ray", __doc__, __file__)
