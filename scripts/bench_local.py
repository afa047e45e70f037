"""Models/hour of `dsd train` (the local executor) against the number of GPUs of one host, with
the jobs started longest-first and in the store's order.

For every count in --gpus and every order in --orders a child process sees the first g GPUs
(CUDA_VISIBLE_DEVICES) and trains a fresh store of --models-per-gpu × g sampled CIFAR-regime
RegNetX models (117–130 MF; every run takes the first models of one sample, so every count runs
the same waves) for --epochs on real CIFAR-10. Rows are added to --out (JSON, with the machine),
so one command per GPU count fills one table: GPUs, models/hour, speed-up and efficiency against
the fewest GPUs of the same order, GPU busy share (nvidia-smi), mean error.

  python scripts/bench_local.py --gpus 1,2,4,8 --out scaling.json       # 10 epochs, 8 per GPU
  python scripts/bench_local.py --gpus 4 --out scaling.json             # one count per command
  python scripts/bench_local.py order --epochs 10 --out order.json      # 16 models on one GPU
  python scripts/bench_local.py --gpus 0 --dataset synthetic --models 2 --epochs 1 \\
      --window 10MF-20MF --subset 256 --test-subset 128                 # CPU smoke

`order` is the one-GPU measurement of issue 16: the same 16 models on one GPU, longest-first
and in the store's order (`--gpus 1 --models 16`); scripts/cost_model.py predicts its gain.
"""
from __future__ import annotations

import sys

from benchlib import scaling_main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:1] == ["order"]:
        argv = ["--gpus", "1", "--models", "16", "--out", "bench_order.json", *argv[1:]]
    scaling_main("local", __doc__, __file__, argv)
