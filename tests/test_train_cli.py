"""`dsd train` / `dsd status` from the command line: options reach the trainer, and a real
`dsd train` subprocess survives SIGKILL (resume, each model exactly once) and Ctrl-C (pending)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from procs import dsd_process, wait_for
from typer.testing import CliRunner

import dsd.cli.train  # noqa: F401  (registers the commands)
from dsd import Store
from dsd.cli import app
from test_train import add_sweep

runner = CliRunner()
QUICK_ARGS = ["--epochs", "3", "--batch-size", "50", "--subset", "1000", "--test-subset", "500"]


def test_cli_imports_no_torch():
    code = "import dsd.cli.train, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_train_options_reach_the_trainer(tmp_path, monkeypatch):
    seen = {}

    def fake_train(store, **kw):
        seen.update(kw, store=store.path)
        from dsd.train.runner import Summary
        return Summary({"done": 3}, None, 0, 1.0)

    monkeypatch.setattr("dsd.train.train", fake_train)
    Store(tmp_path / "s.sqlite").close()   # `dsd train` opens an existing store only
    res = runner.invoke(app, ["train", "a", "b", "--epochs", "5", "--lr", "0.2", "--wd", "1e-4",
                              "--precision", "fp32", "--recipe", "nds-plain", "--gpus", "0,1",
                              "--per-gpu", "3", "--max-time", "9m", "--whole-models",
                              "--retry-failed", "--kernels", "bn",
                              "--dataset", "cifar10", "--subset", "500",
                              "--store", str(tmp_path / "s.sqlite")])
    assert res.exit_code == 0, res.output
    assert seen["sweeps"] == ["a", "b"] and seen["recipe"] == "nds-plain"
    assert seen["overrides"] == {"epochs": 5, "lr": 0.2, "batch_size": None, "wd": 1e-4,
                                 "precision": "fp32", "subset": 500, "test_subset": None}
    assert seen["gpus"] == [0, 1] and seen["per_gpu"] == 3 and seen["max_time"] == 540
    assert seen["retry_failed"] and seen["whole_models"] and seen["dataset"] == "cifar10"
    assert seen["kernels"] == ("bn",)
    assert "done 3" in res.output
    for flag, kernels in (([], None), (["--kernels", "none"], ())):  # None: dsd's default
        res = runner.invoke(app, ["train", *flag, "--store", str(tmp_path / "s.sqlite")])
        assert res.exit_code == 0 and seen["kernels"] == kernels, res.output
    assert "could not start" not in res.output


def test_train_says_when_workers_could_not_start(tmp_path, monkeypatch):
    from dsd.train.runner import Summary

    monkeypatch.setattr("dsd.train.train", lambda store, **kw: Summary(
        {"done": 3}, None, 0, 1.0, mps=True, workers_lost=1))
    Store(tmp_path / "s.sqlite").close()
    res = runner.invoke(app, ["train", "--store", str(tmp_path / "s.sqlite")])
    assert res.exit_code == 0 and "1 worker process(es) could not start" in res.output


def test_train_errors_are_one_line(tmp_path):
    Store(tmp_path / "s.sqlite").close()
    res = runner.invoke(app, ["train", "nope", "--store", str(tmp_path / "s.sqlite")])
    assert res.exit_code == 1 and "no sweep 'nope'" in res.output
    res = runner.invoke(app, ["train", "--max-time", "soon", "--store", str(tmp_path / "t")])
    assert res.exit_code == 1 and "duration" in res.output
    res = runner.invoke(app, ["train", "--kernels", "gconv",
                              "--store", str(tmp_path / "s.sqlite")])
    assert res.exit_code == 1 and "kernels: unknown gconv; allowed: bn" in res.output


def test_train_and_status_on_cifar(tmp_path, data_root):
    path = str(tmp_path / "s.sqlite")
    add_sweep(Store(path), n=2)
    res = runner.invoke(app, ["status", "--store", path])
    assert res.exit_code == 0 and "tiny" in res.output
    res = runner.invoke(app, ["train", "--store", path, "--data-dir", str(data_root),
                              *QUICK_ARGS[:1], "2", *QUICK_ARGS[2:]])
    assert res.exit_code == 0, res.output
    assert "tiny #0" in res.output and "tiny #1" in res.output and "done 2" in res.output
    res = runner.invoke(app, ["status", "--store", path])
    header = next(line for line in res.output.splitlines() if "sweep" in line).split()
    row = next(line for line in res.output.splitlines() if "tiny" in line).split()
    assert header[-3:] == ["models", "pending", "done"]  # statuses nobody has are left out
    assert row[-3:] == ["2", "0", "2"]


def _dsd(args, env) -> subprocess.Popen:
    return dsd_process("train", args, env)


def _wait_for(pred, proc, timeout=240):
    wait_for(pred, proc, "dsd train", timeout)


def _env(data_root):
    return {**os.environ, "DSD_DATA": str(data_root), "COLUMNS": "120"}


def test_sigkill_then_resume_trains_each_model_once(tmp_path, data_root):
    path = tmp_path / "s.sqlite"
    store = Store(path)
    add_sweep(store, n=3)
    ckpt = tmp_path / "s.sqlite.ckpt"
    proc = _dsd(["--store", str(path), *QUICK_ARGS], _env(data_root))
    # kill once the second model has a checkpoint (its first epoch is done, more to go)
    _wait_for(lambda: len(store.epochs()) >= 4 and list(ckpt.glob("*.pt")), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = store.results(status=None)
    assert "running" in set(before["status"])                   # killed mid-model
    assert "done" in set(before["status"])
    kept = {int(p.stem) for p in ckpt.glob("*.pt")}
    assert kept
    proc = _dsd(["--store", str(path), *QUICK_ARGS], _env(data_root))
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    df = store.results(status=None)
    assert len(df) == 3 and set(df["status"]) <= {"done", "collapsed"}
    assert sorted(df["index"]) == [0, 1, 2]
    assert kept <= set(df["result_id"])                          # resumed the same results
    curves = store.epochs()
    assert curves.groupby("result_id")["epoch"].apply(sorted).tolist() == [[1, 2, 3]] * 3
    assert not list(ckpt.glob("*.pt"))                           # deleted once done
    for i in before.loc[before["status"] == "done", "index"]:   # (longest first: #2 first)
        assert f"#{i} " not in out                               # finished: not retrained


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_leaves_pending_models_pending(tmp_path, data_root, sig, code):
    """Ctrl-C, and SIGTERM as timeout and Slurm send it (to the whole process group here):
    the running models go back to pending, no ghost stays `running`."""
    path = tmp_path / "s.sqlite"
    store = Store(path)
    add_sweep(store, n=3)
    proc = _dsd(["--store", str(path), *QUICK_ARGS], _env(data_root))
    _wait_for(lambda: len(store.epochs()) >= 1, proc)
    os.killpg(proc.pid, sig) if sig == signal.SIGTERM else os.kill(proc.pid, sig)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == code, out
    assert "interrupted" in out
    df = store.results(status=None)
    assert "running" not in set(df["status"])
    assert (df["status"] == "pending").sum() >= 1                # the interrupted model
    queue = store.training_queue(None, dataset=None, recipe_json=__import__(
        "dsd.train", fromlist=["x"]).get_recipe(None, "cifar10").override(
            epochs=3, batch_size=50, subset=1000, test_subset=500).to_dict())
    done = set(df.loc[df["status"] != "pending", "index"])
    assert {q["index"] for q in queue} == {0, 1, 2} - done       # nothing lost, nothing doubled


def test_one_store_through_a_symlink_is_locked_once(tmp_path):
    """The train lock belongs to the store's real file, not to the path it was named by."""
    from dsd.errors import DsdError
    from dsd.train import train
    from dsd.train.runner import TrainLock

    real = tmp_path / "s.sqlite"
    add_sweep(Store(real), n=1)
    link = tmp_path / "link.sqlite"
    link.symlink_to(real)
    held = TrainLock(tmp_path / "s.sqlite.ckpt")   # a first `dsd train` on the real path
    try:
        with pytest.raises(DsdError, match="another `dsd train` is using this store"):
            train(Store(link), overrides={"epochs": 1}, dataset="synthetic")
    finally:
        held.release()
    assert Store(real).results(status=None).empty   # nothing trained twice


def test_a_truncated_cifar_batch_is_named_before_training(tmp_path, data_root):
    src = data_root / "cifar10" / "cifar-10-batches-py"
    dst = tmp_path / "data" / "cifar10" / "cifar-10-batches-py"
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).symlink_to(f)
    (dst / "data_batch_2").unlink()
    (dst / "data_batch_2").write_bytes((src / "data_batch_2").read_bytes()[:1_000_000])
    path = tmp_path / "s.sqlite"
    add_sweep(Store(path), n=2)
    res = runner.invoke(app, ["train", "--store", str(path), "--data-dir",
                              str(tmp_path / "data"), *QUICK_ARGS])
    assert res.exit_code == 1, res.output
    assert "data_batch_2: not a CIFAR-10 batch" in res.output
    assert Store(path).results(status=None).empty     # no model failed for it


def test_a_missing_data_dir_is_left_as_it_was(tmp_path, monkeypatch):
    from dsd.errors import DsdError
    from dsd.datasets import get_dataset

    import types

    def offline(root, train, download):   # as torchvision does offline: folder, then error
        os.makedirs(root, exist_ok=True)
        raise OSError("network is unreachable")

    monkeypatch.setitem(sys.modules, "torchvision.datasets",
                        types.SimpleNamespace(CIFAR10=offline))
    with pytest.raises(DsdError, match="download failed: OSError"):
        get_dataset("cifar10").find(tmp_path / "nonexistent")
    assert not (tmp_path / "nonexistent").exists()
