"""scripts/study_alternates.py on CPU (slow): sampling and training resume across calls; the
outputs are rewritten from the committed study store, equal to the published ones."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dsd.analysis.population import read_population
from dsd.store import Store

REPO = Path(__file__).resolve().parent.parent
SCRIPT = [sys.executable, str(REPO / "scripts" / "study_alternates.py")]
STUDY = REPO / "results" / "cifar10_alternates"


def _run(args):
    res = subprocess.run([*SCRIPT, *map(str, args)], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


@pytest.mark.slow
def test_study_samples_and_trains_in_chunks(tmp_path, data_root):
    store = tmp_path / "s.sqlite"
    args = ["--n", "2", "--flops", "4MF", "--epochs", "1", "--subset", "128",
            "--test-subset", "100", "--data-dir", data_root, "--store", store,
            "--no-outputs"]
    assert "under --min-chunk" in _run([*args, "--max-time", "1s"])  # stops before training
    assert Store(store).results(status=None).empty
    _run(args)
    res = Store(store).results(status=None)
    assert len(res) == 6 and set(res["status"]) <= {"done", "collapsed"}, res["status"]
    runs = (tmp_path / "s.runs.jsonl").read_text().splitlines()
    assert "training: nothing pending" in _run(args)      # the next chunk finds nothing to do
    assert (tmp_path / "s.runs.jsonl").read_text().splitlines() == runs


@pytest.mark.slow
def test_outputs_regenerate_from_the_committed_store(tmp_path):
    store = tmp_path / "study.sqlite"
    shutil.copy(STUDY / "study.sqlite", store)
    shutil.copy(STUDY / "study.runs.jsonl", tmp_path / "study.runs.jsonl")
    out = tmp_path / "out"
    _run(["--no-train", "--publish", "--store", store, "--out", out])
    new, _ = read_population(out / "population.parquet")
    old, _ = read_population(STUDY / "population.parquet")
    cols = ["sweep", "index", "status", "top1", "flops", "b1"]
    pd.testing.assert_frame_equal(new[cols], old[cols])
    assert (out / "compare.txt").read_text() == (STUDY / "compare.txt").read_text()
