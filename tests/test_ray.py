"""`dsd train --executor ray` on a real local Ray cluster (2 CPUs, no GPU), shared by the module.

The same tiny sweep trains through the local executor and through Ray: same columns, statuses,
epoch rows, errors. Faults: a Ray worker process killed (SIGKILL) while it trains a model is
retried by Ray, resumes from the model's checkpoint and is recorded exactly once; with no retry
left the model is `failed` and the sweep goes on; a killed driver is continued by the next run.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_train import QUICK, add_sweep
from typer.testing import CliRunner

import dsd.cli.train  # noqa: F401  (registers the commands)
from dsd import Store
from dsd.cli import app
from dsd.errors import DsdError
from dsd.train import train
from dsd.train.ray_exec import check_executor

try:
    import ray
except ImportError:   # the optional extra is not installed
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason="ray is not installed (pip install 'dsd[ray]')")
SYNTH = {"epochs": 3, "batch_size": 50, "subset": 1500, "test_subset": 100}


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster (2 CPUs) for the module; its GCS address."""
    if ray is None:
        pytest.skip("ray is not installed (pip install 'dsd[ray]')")
    owned = not ray.is_initialized()
    if owned:
        ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    if owned and ray.is_initialized():
        ray.shutdown()


def _columns_and_rows(store: Store):
    df = store.results(status=None)
    return df, store.epochs()


# ---- without ray, and the command line ------------------------------------------------------
def test_missing_ray_is_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)     # import ray → ImportError
    with pytest.raises(DsdError, match=r"pip install 'dsd\[ray\]'"):
        check_executor("ray")
    assert check_executor("local") is None
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=1)
    with pytest.raises(DsdError, match="not installed"):
        train(store, dataset="synthetic", executor="ray")
    assert store.results(status=None, synthetic=True).empty     # nothing was started


def test_executor_options_are_checked():
    if ray is None:
        pytest.skip("ray is not installed")
    assert check_executor("ray", per_gpu=2, address="auto", max_retries=5) == {
        "address": "auto", "per_gpu": 2, "max_retries": 5, "cpus_per_task": 1.0}
    with pytest.raises(DsdError, match="--gpus"):
        check_executor("ray", gpus=[0, 1])
    with pytest.raises(DsdError, match="--max-retries"):
        check_executor("ray", max_retries=-1)
    with pytest.raises(DsdError, match="unknown executor"):
        check_executor("dask")


def test_cli_passes_ray_options(tmp_path, monkeypatch):
    seen = {}

    def fake_train(store, **kw):
        seen.update(kw)
        from dsd.train.runner import Summary
        return Summary({"done": 1}, None, 0, 1.0)

    monkeypatch.setattr("dsd.train.train", fake_train)
    Store(tmp_path / "s.sqlite").close()   # `dsd train` opens an existing store only
    res = CliRunner().invoke(app, ["train", "s", "--executor", "ray", "--address", "auto",
                                   "--per-gpu", "2", "--max-retries", "5",
                                   "--store", str(tmp_path / "s.sqlite")])
    assert res.exit_code == 0, res.output
    assert seen["executor"] == "ray" and seen["per_gpu"] == 2
    assert seen["ray_opts"] == {"address": "auto", "max_retries": 5, "cpus_per_task": 1.0}
    res = CliRunner().invoke(app, ["train", "s", "--store", str(tmp_path / "s.sqlite")])
    assert seen["executor"] == "local"


def test_cli_imports_no_ray_or_torch():
    code = ("import dsd.cli.train, sys; "
            "assert 'torch' not in sys.modules and 'ray' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_resources_ask_for_fractional_gpus_or_cpus():
    from types import SimpleNamespace

    from dsd.train.ray_exec import Resources

    def fake(*nodes):
        return SimpleNamespace(nodes=lambda: [{"Alive": True, "Resources": n} for n in nodes])

    r = Resources(fake({"GPU": 4.0, "CPU": 64.0}), per_gpu=4, cpus_per_task=1.0)
    assert r.slots == 16 and r.options == {"num_gpus": 0.25, "num_cpus": 4.0}
    r = Resources(fake({"GPU": 2.0, "CPU": 6.0}), per_gpu=4, cpus_per_task=1.0)
    assert r.slots == 8 and r.options == {"num_gpus": 0.25, "num_cpus": 0.75}
    r = Resources(fake({"GPU": 8.0, "CPU": 256.0}), per_gpu=2, cpus_per_task=1.0)
    assert r.slots == 16 and r.options["num_cpus"] == 8.0        # capped
    # a CPU-only head node does not lend its CPUs to the GPU nodes' models
    r = Resources(fake({"CPU": 64.0}, {"GPU": 8.0, "CPU": 32.0}, {"GPU": 4.0, "CPU": 32.0}),
                  per_gpu=4, cpus_per_task=1.0)
    assert r.slots == 48 and r.options == {"num_gpus": 0.25, "num_cpus": 1.0}
    r = Resources(fake({"CPU": 6.0}, {"CPU": 3.0}), per_gpu=4, cpus_per_task=2.0)
    assert r.slots == 4 and r.options == {"num_gpus": 0, "num_cpus": 2.0}


def test_checkpoints_go_node_local_when_the_directory_is_not_shared(tmp_path):
    from types import SimpleNamespace

    from dsd.train.ray_exec import _usable_ckpt

    (tmp_path / "s.sqlite.ckpt").mkdir()
    shared = SimpleNamespace(ckpt=str(tmp_path / "s.sqlite.ckpt" / "3.pt"))
    (tmp_path / "s.sqlite.ckpt" / "lock").touch()          # the driver's lock: shared
    assert not _usable_ckpt(shared) and shared.ckpt.startswith(str(tmp_path))
    other = SimpleNamespace(ckpt=str(tmp_path / "elsewhere.ckpt" / "3.pt"))
    assert _usable_ckpt(other) and other.ckpt.endswith("3.pt")
    assert not other.ckpt.startswith(str(tmp_path)) and not (tmp_path / "elsewhere.ckpt").exists()


def test_records_of_finished_models_are_dropped():
    from types import SimpleNamespace

    from dsd.train.ray_exec import _deliver

    seen = []
    coord = SimpleNamespace(running={7: None}, handle=lambda *a: seen.append(a))
    _deliver(coord, [("epoch", 7, {"epoch": 1}), ("epoch", 8, {"epoch": 1}),
                     ("final", 9, {"status": "done"}), ("images", 7, {"n": 5})], max_retries=3)
    assert seen == [("epoch", 7, {"epoch": 1}), ("images", 7, {"n": 5})]


# ---- a real cluster ------------------------------------------------------------------------
@needs_ray
def test_ray_matches_local_executor(tmp_path, data_root, cluster):
    local, remote = Store(tmp_path / "local.sqlite"), Store(tmp_path / "ray.sqlite")
    for s in (local, remote):
        add_sweep(s, n=2)
    a = train(local, overrides=QUICK, data_dir=data_root)
    t0 = time.time()
    b = train(remote, overrides=QUICK, data_dir=data_root, executor="ray")
    print(f"ray: 2 models in {time.time() - t0:.1f}s")
    assert a.counts == b.counts == {"done": 2} and b.pending == 0 and b.stopped is None
    (ra, ea), (rb, eb) = _columns_and_rows(local), _columns_and_rows(remote)
    assert list(ra.columns) == list(rb.columns)
    assert list(rb["status"]) == ["done", "done"] and (rb["top1"] < 90).all()
    assert (rb["top5"] < rb["top1"]).all() and set(rb["exec_path"]) == {"eager"}
    same = ["index", "dataset", "recipe", "recipe_json", "train_seed", "synthetic"]
    assert ra[same].equals(rb[same])
    assert list(ea.columns) == list(eb.columns) and len(eb) == 4
    assert sorted(zip(eb["result_id"], eb["epoch"])) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert not list((tmp_path / "ray.sqlite.ckpt").glob("*.pt"))
    again = train(remote, overrides=QUICK, data_dir=data_root, executor="ray")
    assert again.counts == {} and len(remote.results(status=None)) == 2


def _kill_on_epoch(monkeypatch, epoch: int = 1):
    """Patch the driver: SIGKILL the Ray worker of result 1 when its first attempt reports
    `epoch`. Returns the attempts seen per result id ({rid: [info, …]})."""
    from dsd.train import ray_exec
    from dsd.train.coordinator import Coordinator

    attempts: dict[int, list[dict]] = {}
    real_started, real_handle = ray_exec._started, Coordinator.handle

    def started(coord, rid, info, max_retries):
        attempts.setdefault(rid, []).append(info)
        real_started(coord, rid, info, max_retries)

    def handle(self, kind, rid, payload):
        real_handle(self, kind, rid, payload)
        if (kind == "epoch" and rid == 1 and payload["epoch"] == epoch
                and len(attempts.get(1, [])) == 1 and not attempts[1][0].get("killed")):
            attempts[1][0]["killed"] = True
            os.kill(attempts[1][0]["pid"], signal.SIGKILL)

    monkeypatch.setattr(ray_exec, "_started", started)
    monkeypatch.setattr(Coordinator, "handle", handle)
    return attempts


@needs_ray
def test_killed_worker_is_retried_from_its_checkpoint(tmp_path, cluster, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=2)
    attempts = _kill_on_epoch(monkeypatch)
    s = train(store, dataset="synthetic", overrides=SYNTH, executor="ray",
              ray_opts={"max_retries": 2})
    assert sum(s.counts.values()) == 2 and "failed" not in s.counts and s.pending == 0
    first, second = attempts[1]
    assert first["killed"] and second["attempt"] == 2 and second["resumed"]
    assert second["pid"] != first["pid"] and len(attempts[2]) == 1
    df = store.results(status=None, synthetic=True)
    assert len(df) == 2 and df["index"].is_unique and df["result_id"].is_unique
    assert set(df["status"]) <= {"done", "collapsed"}
    ep = store.epochs()
    assert sorted(zip(ep["result_id"], ep["epoch"])) == [(r, e) for r in (1, 2) for e in (1, 2, 3)]
    assert not list((tmp_path / "s.sqlite.ckpt").glob("*.pt"))


@needs_ray
def test_no_retry_left_fails_the_model_once(tmp_path, cluster, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=2)
    attempts = _kill_on_epoch(monkeypatch)
    s = train(store, dataset="synthetic", overrides=SYNTH, executor="ray",
              ray_opts={"max_retries": 0})
    assert s.counts.get("failed") == 1 and sum(s.counts.values()) == 2
    df = store.results(status=None, synthetic=True)
    assert len(df) == 2 and len(attempts[1]) == 1
    failed = df[df["status"] == "failed"].iloc[0]
    assert failed["result_id"] == 1 and "no retry left" in failed["error"]


def _dsd_train(args, env, cwd) -> subprocess.Popen:
    code = "from dsd.cli import main; main()"
    return subprocess.Popen([sys.executable, "-c", code, "train", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


@pytest.mark.slow  # ~40 s on an idle 2-core machine; the local executor's SIGKILL test covers the store side
@needs_ray
def test_killed_driver_is_continued_by_the_next_run(tmp_path, cluster):
    """A `dsd train --executor ray --address …` subprocess is SIGKILLed after its first epoch
    record; the same command again finishes every model exactly once. The store path is
    relative (checkpoints must still be found by the Ray workers, which run elsewhere)."""
    path = str(tmp_path / "s.sqlite")
    add_sweep(Store(path), n=2)
    args = ["--store", "s.sqlite", "--executor", "ray", "--address", cluster, "--dataset",
            "synthetic", "--epochs", "3", "--batch-size", "50", "--subset", "1500",
            "--test-subset", "100"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = _dsd_train(args, env, tmp_path)
    t0 = time.time()
    try:
        while time.time() - t0 < 120:
            if proc.poll() is not None:
                pytest.fail(f"driver ended early: {proc.stdout.read()}")
            if not Store(path).epochs().empty:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no epoch recorded in 120s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    store = Store(path)
    assert (store.results(status=None, synthetic=True)["status"] == "running").any()
    assert list((tmp_path / "s.sqlite.ckpt").glob("*.pt"))
    before = store.epochs().set_index(["result_id", "epoch"])
    proc = _dsd_train(args, env, tmp_path)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    df = Store(path).results(status=None, synthetic=True)
    assert len(df) == 2 and set(df["status"]) <= {"done", "collapsed"}, out
    ep = Store(path).epochs()
    assert sorted(zip(ep["result_id"], ep["epoch"])) == [(r, e) for r in (1, 2) for e in (1, 2, 3)]
    after = Store(path).epochs().set_index(["result_id", "epoch"]).loc[before.index]
    assert after.equals(before)      # resumed: the checkpointed epochs were not trained again
    assert sorted(os.listdir(tmp_path / "s.sqlite.ckpt")) == ["lock"]


@needs_ray
def test_bench_ray_smoke_run(tmp_path):
    """scripts/bench_ray.py on the CPU: a fresh 2-CPU Ray cluster in its child process."""
    from test_bench import smoke

    assert smoke("bench_ray.py", tmp_path)["executor"] == "ray"


# ---- several nodes on one host, one of them killed -------------------------------------------
RAY_CLI = [sys.executable, "-m", "ray.scripts.scripts"]
FAST_DEATH = {"RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4",
              "RAY_health_check_initial_delay_ms": "1000", "RAY_AUTH_MODE": "disabled",
              "RAY_USAGE_STATS_ENABLED": "0"}

# The driver runs in a fresh process (Ray cannot create actors on a second cluster from a
# process that used another one): `dsd.train.train` with two hooks, one recording each attempt's
# node, one SIGKILLing the `ray start` process group of the node that trains the first model to
# report an epoch, right after that report. argv: store, address, head temp dir, {label: pgid}.
DRIVER = """
import json, os, signal, sys, time
import ray
from dsd import Store
from dsd.train import ray_exec, train
from dsd.train.coordinator import Coordinator

path, address, head_dir, pgids = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
ray.init(address=address, _temp_dir=head_dir, log_to_driver=False)   # the head's node
while sum(n["Alive"] for n in ray.nodes()) < 1 + len(pgids):
    time.sleep(0.2)
label = {n["NodeID"]: name for n in ray.nodes() for name in pgids
         if f"node_{name}" in n["Resources"]}
attempts, killed = {}, {}
real_started, real_handle = ray_exec._started, Coordinator.handle

def started(coord, rid, info, max_retries):
    attempts.setdefault(rid, []).append({**info, "label": label.get(info["node"])})
    real_started(coord, rid, info, max_retries)

def handle(self, kind, rid, payload):
    # 8 epochs: the epoch-1 record reaches the driver (through the inbox, late under load)
    # while the model still has epochs to go, so the kill lands mid-model
    real_handle(self, kind, rid, payload)
    if kind == "epoch" and payload["epoch"] == 1 and not killed and attempts.get(rid):
        row = self.store.epochs().query("result_id == @rid").iloc[0]
        killed.update(rid=rid, node=attempts[rid][-1]["label"], epoch1=row.to_dict())
        os.killpg(pgids[killed["node"]], signal.SIGKILL)

ray_exec._started, Coordinator.handle = started, handle
s = train(Store(path), dataset="synthetic", executor="ray", ray_opts={"max_retries": 2},
          overrides={"epochs": 8, "batch_size": 50, "subset": 500, "test_subset": 100})
print("RESULT " + json.dumps({"counts": s.counts, "pending": s.pending, "attempts": attempts,
                              "killed": killed}, default=float))
"""


@pytest.fixture
def nodes(tmp_path_factory):
    """A Ray cluster of separate `ray start --block` processes on this host: a head without
    CPUs (the driver's node, holding the inbox) and two worker nodes of 1 CPU each, each with its
    own resource label and temp folder. Yields (address, head temp dir, {'a': process, 'b': …})."""
    import socket
    import tempfile

    if ray is None:
        pytest.skip("ray is not installed (pip install 'dsd[ray]')")
    env = {**os.environ, **FAST_DEATH, "PYTHONPATH": os.pathsep.join(sys.path)}
    root = Path(tempfile.mkdtemp(prefix="rn", dir="/tmp"))  # short: Ray's socket paths
    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    procs, logs = {}, tmp_path_factory.mktemp("ray-nodes")

    def start(name, *args):
        with open(logs / f"{name}.log", "w") as log:
            procs[name] = subprocess.Popen(
                [*RAY_CLI, "start", "--block", f"--temp-dir={root / name}", *args], env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    start("head", "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false")
    address = f"{socket.gethostbyname(socket.gethostname())}:{port}"
    time.sleep(3)
    for name in ("a", "b"):
        start(name, f"--address={address}", "--num-cpus=1",
              f"--resources={{\"node_{name}\": 1}}")
    try:
        yield address, str(root / "head"), {k: v for k, v in procs.items() if k != "head"}
    finally:
        for p in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        shutil.rmtree(root, ignore_errors=True)


@needs_ray
def test_a_killed_node_s_models_resume_on_another_node(tmp_path, nodes):
    """A node (raylet and object store: its `ray start` process group) is SIGKILLed when a
    model it trains reports its first epoch. Ray notices the node's death and runs the task
    again on the other node, which resumes it from its epoch-1 checkpoint (the checkpoint folder
    is shared: one file system); every model is recorded exactly once, the first attempt's
    epoch row is kept, and models start longest first."""
    import json

    address, head_dir, workers = nodes
    path = tmp_path / "s.sqlite"
    add_sweep(Store(path), n=3)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "RAY_AUTH_MODE": "disabled"}
    p = subprocess.run([sys.executable, "-c", DRIVER, str(path), address, head_dir,
                        json.dumps({k: v.pid for k, v in workers.items()})], env=env,
                       capture_output=True, text=True, timeout=400)
    line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert p.returncode == 0 and line, p.stdout[-3000:] + p.stderr[-3000:]
    out = json.loads(line[7:])
    killed, attempts = out["killed"], {int(k): v for k, v in out["attempts"].items()}
    assert killed and out["pending"] == 0 and sum(out["counts"].values()) == 3
    assert "failed" not in out["counts"] and workers[killed["node"]].poll() is not None
    first, second = attempts[killed["rid"]]
    survivor = "b" if killed["node"] == "a" else "a"
    assert first["label"] == killed["node"] and second["label"] == survivor
    assert second["attempt"] == 2 and second["resumed"] and not second["ckpt_local"]
    assert "resuming from its checkpoint" in p.stdout
    store = Store(path)
    df = store.results(status=None, synthetic=True)
    assert len(df) == 3 and df["index"].is_unique and set(df["status"]) <= {"done", "collapsed"}
    assert list(df.sort_values("result_id")["index"]) == [2, 1, 0]    # longest first
    ep = store.epochs()
    assert sorted(zip(ep["result_id"], ep["epoch"])) == [(r, e) for r in (1, 2, 3)
                                                         for e in range(1, 9)]
    row = ep.query("result_id == @killed['rid'] and epoch == 1").iloc[0].to_dict()
    assert row == pytest.approx(killed["epoch1"])    # resumed after epoch 1: not trained again
    assert not list((tmp_path / "s.sqlite.ckpt").glob("*.pt"))


@needs_ray
def test_a_block_from_a_file_trains_on_ray(tmp_path, data_root, cluster, monkeypatch):
    """DSD_BLOCKS set after the cluster started still reaches its workers."""
    from types import SimpleNamespace

    from dsd import complexity, make_spec
    from dsd.blocks import load_block_file

    example = Path(__file__).resolve().parent.parent / "examples" / "convnext_block.py"
    load_block_file(example)
    monkeypatch.setenv("DSD_BLOCKS", str(example))
    spec = make_spec([1, 1, 1], [16, 24, 32], ["1/2"] * 3, [1] * 3, ks=[3, 5, 3],
                     dataset="cifar10", block="convnext", stem_w=8)
    c = complexity(spec)
    store = Store(tmp_path / "s.sqlite")
    store.add_sweep("cx", space="test", space_def={}, dataset="cifar10", window={}, seed=0,
                    draws=1, models=[SimpleNamespace(index=0, spec=spec, params={},
                                                     flops=c["flops"], params_count=c["params"],
                                                     acts=c["acts"])])
    out = train(store, overrides={**QUICK, "epochs": 1}, data_dir=data_root, executor="ray")
    assert out.counts.get("done", 0) + out.counts.get("collapsed", 0) == 1, \
        store.results(status=None)[["status", "error"]]
