"""The benchmark scripts on the CPU: bench_local.py's smoke run (a real child process training
two tiny models; the JSON row and the table), the one-line message without a GPU, the
scaling table's arithmetic, bench_train.py's modes and bench_imagenet.py's window rate.
bench_ray.py's smoke run is in test_ray.py (it needs Ray)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import benchlib  # noqa: E402

SMOKE = ["--gpus", "0", "--dataset", "synthetic", "--models", "2", "--epochs", "1",
         "--window", "3MF-6MF", "--subset", "128", "--test-subset", "64"]


def run_script(name: str, *args, env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})}
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], env=env,
                          capture_output=True, text=True, timeout=600)


def smoke(script: str, tmp_path, *extra) -> dict:
    """A CPU smoke run of a scaling script; its JSON after two commands (rows accumulate)."""
    out = tmp_path / "scaling.json"
    p = run_script(script, *SMOKE, "--orders", "longest", "--out", str(out), *extra)
    assert p.returncode == 0, p.stdout + p.stderr
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["gpus"] == 0 and row["order"] == "longest" and row["models"] == 2
    assert row["counts"] and sum(row["counts"].values()) == 2 and row["device"] == "cpu fp32"
    assert row["wall_s"] > 0 and row["models_per_hour"] == pytest.approx(2 / row["wall_s"] * 3600)
    assert sorted(row["index"]) == [0, 1] and len(row["finished_after_s"]) == 2
    assert 0 < max(row["finished_after_s"]) <= row["wall_s"] + 1
    assert data["machine"]["cpus"] == os.cpu_count()
    assert "models/h" in p.stdout and "longest" in p.stdout.splitlines()[-1]
    return row


def test_bench_local_smoke_run(tmp_path):
    row = smoke("bench_local.py", tmp_path)
    assert row["executor"] == "local"


def test_no_gpu_is_one_line(tmp_path):
    for args in (["--gpus", "1,2"], ["order", "--epochs", "1"]):
        p = run_script("bench_local.py", *args, "--out", str(tmp_path / "x.json"),
                       env={"CUDA_VISIBLE_DEVICES": ""})
        assert p.returncode == 1 and not (tmp_path / "x.json").exists()
        assert p.stderr.strip().count("\n") == 0 and "needs" in p.stderr
        assert "this machine shows 0" in p.stderr and "--gpus 0 runs a CPU smoke" in p.stderr
    p = run_script("bench_local.py", *SMOKE, "--orders", "fastest")
    assert p.returncode == 1 and "unknown --order 'fastest'" in p.stderr


def test_scaling_table_arithmetic():
    def row(g, order, mph, busy):
        return {"executor": "local", "order": order, "gpus": g, "models": 8 * g,
                "per_gpu": 8, "epochs": 10, "dataset": "cifar10", "window": benchlib.WINDOW,
                "subset": None, "wall_s": 8 * g / mph * 3600, "models_per_hour": mph,
                "gpu_busy": busy, "mean_top1": 14.0}

    rows = [row(1, "longest", 160.0, [0.9]), row(4, "longest", 576.0, [0.8] * 4),
            row(2, "store", 300.0, [0.7, 0.9]), row(1, "store", 150.0, [0.9])]
    lines = benchlib.scaling_table(rows).splitlines()
    assert lines[0].split()[:4] == ["executor", "order", "GPUs", "models"]
    four = next(x.split() for x in lines if x.split()[1:3] == ["longest", "4"])
    assert four[5:9] == ["576.0", "3.60x", "0.90", "80"]           # 576 / 160, / 4 GPUs
    two = next(x.split() for x in lines if x.split()[1:3] == ["store", "2"])
    assert two[6:9] == ["2.00x", "1.00", "80"]
    assert all(len(x) <= 80 for x in lines)


def test_bench_train_modes():
    p = run_script("bench_train.py", "--help")
    assert p.returncode == 0
    modes = re.search(r"\{(compare[^}]*)\}", p.stdout).group(1).split(",")
    assert "compare" in modes and "convs" in modes
    assert "imagenet" not in modes   # moved to bench_imagenet.py (issue 17)
    assert not {"fault", "resume", "workspace"} & set(modes)   # retired: answered


def test_imagenet_window_rate_counts_only_while_all_models_train():
    """bench_imagenet's rate: images of all models together over the time in which each is past
    its first epoch and none has ended; the pace of a model left alone afterwards is not it."""
    from bench_imagenet import window_rate

    log = []
    for rid, rate, first, end in ((1, 100, 5, 30), (2, 50, 10, 60)):
        for t in range(1, end + 1):   # one progress record a second
            n = rate if t <= 30 else 4 * rate   # model 2 speeds up once model 1 has ended
            log.append((t + 0.5 * rid / 10, "images", rid, {"n": n}))
        log.append((first + 0.2, "epoch", rid, {"epoch": 1}))
        log.append((end + 0.3, "final", rid, {}))
    log.sort(key=lambda r: r[0])
    r = window_rate(log)
    assert r["window_s"] == pytest.approx(30.3 - 10.2)
    assert r["window_img_s"] == pytest.approx(150, rel=0.02)
    assert window_rate([e for e in log if e[1] != "final" or e[2] != 2])["window_img_s"] is None
