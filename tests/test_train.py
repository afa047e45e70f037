"""Training on CPU: recipes, augmentation, the SGD update, and whole runs on real data.

Runs use tiny CIFAR-layout models on a 1,000-image subset of CIFAR-10 (from DSD_DATA) and on a
generated ImageFolder of real JPEG files; faults are injected by patching the engine in-process.
"""
from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dsd import Store, complexity, make_spec
from dsd.errors import DsdError
from dsd.train import RECIPES, get_recipe, parse_duration, train
from dsd.train.data import augment_cifar
from dsd.train.optim import TensorSGD, lr_at, param_groups

QUICK = {"epochs": 2, "batch_size": 50, "subset": 1000, "test_subset": 1000}


def tiny_spec(i: int, dataset: str = "cifar10"):
    return make_spec([1, 1, 1, 1], [8, 16, 24, 32], [1] * 4, [8] * 4, dataset=dataset,
                     stem_w=8 + 8 * i)


def add_sweep(store: Store, name: str = "tiny", n: int = 2, dataset: str = "cifar10",
              seed: int = 0) -> None:
    """A sweep of n tiny models written straight to the store (no sampler needed)."""
    models = []
    for i in range(n):
        spec = tiny_spec(i, dataset)
        c = complexity(spec)
        models.append(SimpleNamespace(index=i, spec=spec, params={}, flops=c["flops"],
                                      params_count=c["params"], acts=c["acts"]))
    store.add_sweep(name, space="test", space_def={}, dataset=dataset, window={}, seed=seed,
                    draws=n, models=models)


# ---- recipes -----------------------------------------------------------------------------
def test_recipes_are_keyed_by_every_field():
    nds = get_recipe(None, "cifar10")
    assert nds.name == "nds" and nds.nesterov and nds.lr == 0.1 and nds.wd == 5e-4
    assert get_recipe(None, "imagenet").name == "dds"
    assert nds.override(epochs=None).hash == nds.hash
    hashes = {nds.hash, nds.override(epochs=5).hash, nds.override(subset=100).hash,
              RECIPES["nds-plain"].hash, nds.override(precision="fp32").hash}
    assert len(hashes) == 5
    with pytest.raises(DsdError, match="unknown recipe"):
        get_recipe("sgd", "cifar10")
    with pytest.raises(DsdError, match="epochs"):
        nds.override(epochs=0)


def test_parse_duration():
    assert parse_duration("90s") == 90 and parse_duration("9m") == 540
    assert parse_duration("1h30m") == 5400 and parse_duration("12") == 12
    assert parse_duration(None) is None
    with pytest.raises(DsdError, match="duration"):
        parse_duration("soon")


def test_lr_schedule_warmup_then_cosine():
    r = RECIPES["nds"].override(epochs=2)
    assert lr_at(r, 0, 200, 100) == pytest.approx(0.1 * r.lr)
    assert lr_at(r, 100, 200, 100) == pytest.approx(0.5 * r.lr)     # warm-up over, cos mid
    assert lr_at(r, 199, 200, 100) < 1e-4
    plain = RECIPES["nds-plain"]
    assert lr_at(plain, 0, 200, 100) == plain.lr


# ---- augmentation and optimizer ------------------------------------------------------------
def test_augment_is_a_padded_crop_or_its_mirror():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    out = augment_cifar(x, g, torch.zeros(3), torch.ones(3) / 255, torch.float32)
    assert out.shape == (64, 3, 32, 32)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4)).float()
    for i in range(64):
        crops = [padded[i, :, a:a + 32, b:b + 32] for a in range(9) for b in range(9)]
        assert any(torch.allclose(out[i], c, atol=1e-3) or
                   torch.allclose(out[i], c.flip(-1), atol=1e-3) for c in crops)


def test_tensor_sgd_matches_torch_sgd():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=True), torch.nn.BatchNorm2d(4),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
    ref = __import__("copy").deepcopy(model)
    recipe = RECIPES["nds"]
    ours = TensorSGD(param_groups(model, recipe), lr=0.1, momentum=0.9, nesterov=True,
                     device="cpu")
    theirs = torch.optim.SGD([{"params": p, "weight_decay": wd}
                              for p, wd in param_groups(ref, recipe)],
                             lr=0.1, momentum=0.9, nesterov=True)
    assert [len(p) for p, _ in param_groups(model, recipe)] == [2, 4]  # conv w, fc w | rest
    for step in range(4):
        x, y = torch.randn(5, 3, 8, 8), torch.randint(0, 3, (5,))
        ours.lr.fill_(0.1 / (step + 1))
        for group in theirs.param_groups:
            group["lr"] = 0.1 / (step + 1)
        for m, opt in ((model, ours), (ref, theirs)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
    for a, b in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b)


# ---- whole runs ----------------------------------------------------------------------------
def test_train_cifar_subset(tmp_path, data_root):
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=2)
    summary = train(store, overrides=QUICK, data_dir=data_root)
    assert summary.counts == {"done": 2} and summary.pending == 0
    df = store.results(status=None)
    assert list(df["status"]) == ["done", "done"]
    assert (df["top1"] < 90).all() and (df["top5"] < df["top1"]).all()
    assert set(df["exec_path"]) == {"eager"} and df["train_seed"].nunique() == 2
    assert (df["recipe"] == "nds").all() and '"subset": 1000' in df["recipe_json"][0]
    curves = store.epochs()
    assert len(curves) == 4 and set(curves["epoch"]) == {1, 2}
    assert not list((tmp_path / "s.sqlite.ckpt").glob("*.pt"))
    again = train(store, overrides=QUICK, data_dir=data_root)     # nothing left: no retraining
    assert again.counts == {} and len(store.results(status=None)) == 2


def _jpeg_tree(root: Path, classes=3, train=16, val=6) -> None:
    """Real JPEG files whose class is their dominant colour (learnable in a few steps)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        for c in range(classes):
            (root / split / f"class{c}").mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 90, (48, 48, 3), dtype=np.uint8)
                img[..., c] += 160
                Image.fromarray(img).save(root / split / f"class{c}" / f"{i}.JPEG", quality=90)


def test_train_imagefolder(tmp_path):
    _jpeg_tree(tmp_path / "data")
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=2, dataset="imagenet")
    summary = train(store, overrides={"epochs": 2, "batch_size": 8}, data_dir=tmp_path / "data")
    df = store.results(status=None)
    assert summary.counts == {"done": 2}, df["error"].tolist()
    assert (df["recipe"] == "dds").all() and (df["dataset"] == "imagenet").all()
    assert (df["top1"] < 100 * 2 / 3).all()   # below chance with 3 classes


def test_nan_gives_diverged(tmp_path, data_root, monkeypatch):
    monkeypatch.setattr("dsd.train.engine.lr_at", lambda *a: math.nan)
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=1)
    summary = train(store, overrides={**QUICK, "epochs": 1, "subset": 200, "test_subset": 100},
                    data_dir=data_root)
    row = store.results(status=None).iloc[0]
    assert summary.counts == {"diverged": 1}
    assert row["status"] == "diverged" and "epoch 1" in row["error"]


def test_a_loss_that_stops_accumulating_fails_the_model_not_collapses_it(tmp_path, data_root,
                                                                         monkeypatch):
    """An epoch whose loss reads exactly 0.0 (the accumulator was not updated; seen once on the
    graph path) fails the model with that message; --retry-failed trains it again."""
    from dsd.train.engine import Stepper

    real = Stepper._forward_backward

    def forward_backward(self, x, y):  # trains, but from epoch 2 on the loss is not kept
        real(self, x, y)
        if self.calls > 20:             # QUICK: 1000 images / batch 50 = 20 steps per epoch
            self.loss_acc.zero_()

    monkeypatch.setattr(Stepper, "_forward_backward", forward_backward)
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=1)
    assert train(store, overrides=QUICK, data_dir=data_root).counts == {"failed": 1}
    row = store.results(status=None).iloc[0]
    assert row["status"] == "failed" and "train loss read 0.0 in epoch 2" in row["error"]
    monkeypatch.undo()
    assert train(store, overrides=QUICK, data_dir=data_root, retry_failed=True).counts == {
        "done": 1}


def test_exception_fails_one_model_and_next_trains(tmp_path, data_root, monkeypatch):
    from dsd.model import build as real_build

    def build(spec, **kw):
        if spec.stem_w == 8:
            raise RuntimeError("CUDA out of memory (injected)")
        return real_build(spec, **kw)

    monkeypatch.setattr("dsd.train.engine.build", build)
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=2)
    summary = train(store, overrides=QUICK, data_dir=data_root)
    df = store.results(status=None)
    assert summary.counts == {"failed": 1, "done": 1}
    assert list(df["status"]) == ["failed", "done"]
    assert "out of memory (injected)" in df["error"][0]
    monkeypatch.undo()
    retry = train(store, overrides=QUICK, data_dir=data_root)
    assert retry.counts == {}                     # failed models wait for --retry-failed
    retry = train(store, overrides=QUICK, data_dir=data_root,
                  retry_failed=True)
    assert retry.counts == {"done": 1}
    assert list(store.results(status=None)["status"]) == ["done", "done"]


def test_cuda_error_on_the_graph_path_retries_the_model_eagerly(tmp_path, data_root,
                                                                 monkeypatch):
    from dsd.model import build as real_build

    def build(spec, **kw):  # the first build of model 0 hits a (simulated) CUDA error
        if spec.stem_w == 8 and not build.failed:
            build.failed = True
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real_build(spec, **kw)

    build.failed = False
    monkeypatch.setattr("dsd.train.engine.build", build)
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=2)
    summary = train(store, overrides={**QUICK, "epochs": 1}, data_dir=data_root)
    df = store.results(status=None)
    assert build.failed and sum(summary.counts.values()) == 2 and "failed" not in summary.counts
    assert list(df["index"]) == [0, 1] and set(df["exec_path"]) == {"eager"}


def coordinator(store, tmp_path, slots, *, streams=2, data_dir=None, overrides=QUICK):
    """A Coordinator over every pending model of `store`, its worker processes on `slots`."""
    from dsd.train.coordinator import Coordinator
    from dsd.train.progress import TrainProgress
    from dsd.train.runner import plan, resolve

    ckpt = tmp_path / "ckpt"
    jobs = plan(store, resolve(store, None, dataset=None, recipe=None, overrides=overrides), ckpt)
    return Coordinator(store, jobs, ckpt, slots=slots, deadline=None, data_dir=data_dir,
                       progress=TrainProgress(None), streams=streams)


def crashing_worker(slot, device, tasks, results, stop, deadline, data_dir, loaders, streams,
                    queues):
    """A stand-in worker process: model 0 under the graph path poisons the CUDA context (the
    worker announces its exit holding only that model); any other job is done at once."""
    results.put(("ready", slot, None, {}))
    while (job := tasks.get()) is not None:
        if job.index == 0 and not job.eager:
            results.put(("exit", slot, None, {"held": [job.result_id]}))
            results.put(("final", slot, job.result_id, {
                "status": "failed", "error": "AcceleratorError: CUDA error: an illegal memory "
                                             "access was encountered"}))
            return
        results.put(("final", slot, job.result_id, {
            "status": "done", "top1": 50.0, "top5": 10.0, "train_loss": 1.0, "seconds": 1.0,
            "exec_path": "eager" if job.eager else "graph"}))


def test_a_poisoned_worker_is_replaced_and_its_models_go_on(tmp_path, monkeypatch):
    """The worker protocol of a sticky CUDA error: the job it never took goes back to the queue,
    the failed one is retried eagerly in a fresh process, and each is recorded once."""
    monkeypatch.setattr("dsd.train.coordinator.worker_main", crashing_worker)
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=3)
    coord = coordinator(store, tmp_path, ["cpu"] * 2)
    assert coord.run() is None and coord.counts == {"done": 3}
    df = store.results(status=None)
    assert list(df["index"]) == [0, 1, 2] and (df["status"] == "done").all()
    assert df.set_index("index")["exec_path"].to_dict() == {0: "eager", 1: "graph", 2: "graph"}


def segfaulting_worker(slot, device, tasks, results, stop, deadline, data_dir, loaders, streams,
                       queues):
    """A stand-in worker process that dies of a segfault once it holds model 0 (on the graph
    path only when `device` is "cpu:once", on either path on "cpu:always"); holding model 0 on the
    graph path, it waits for its second job, so its neighbour dies with it."""
    results.put(("ready", slot, None, {}))
    held = []
    while (job := tasks.get()) is not None:
        held.append(job)
        if job.index == 0 and (not job.eager or device == "cpu:always"):
            if not job.eager:
                held.append(tasks.get(timeout=10))
            time.sleep(0.5)  # let the queue's feeder thread send "ready" first
            os.kill(os.getpid(), signal.SIGSEGV)
        for j in held:
            results.put(("final", slot, j.result_id, {
                "status": "done", "top1": 50.0, "top5": 10.0, "train_loss": 1.0,
                "seconds": 1.0, "exec_path": "eager" if j.eager else "graph"}))
        held.clear()


@pytest.mark.parametrize("device", ["cpu:once", "cpu:always"])
def test_a_segfaulting_worker_gets_its_models_retried_eagerly(tmp_path, monkeypatch, device):
    """Models in a worker that dies after it started are trained again eagerly and alone, each
    recorded once; a model whose workers die twice is failed with the exit code, its
    neighbour done."""
    monkeypatch.setattr("dsd.train.coordinator.worker_main", segfaulting_worker)
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=3)
    coord = coordinator(store, tmp_path, [device])
    assert coord.run() is None
    df = store.results(status=None).set_index("index")
    assert list(df.index) == [0, 1, 2]
    if device == "cpu:once":
        assert coord.counts == {"done": 3} and (df["status"] == "done").all()
        assert df["exec_path"].to_dict() == {0: "eager", 1: "eager", 2: "graph"}
    else:
        assert coord.counts == {"done": 2, "failed": 1}
        assert df.loc[0, "status"] == "failed"
        assert df.loc[0, "error"] == f"worker process died (exit code {-signal.SIGSEGV}), 2 times"
        assert list(df.loc[[1, 2], "status"]) == ["done", "done"]


def chatty_worker(slot, device, tasks, results, stop, deadline, data_dir, loaders, streams,
                  queues):
    """A stand-in worker process: on "cpu:crash" it dies of a segfault holding model 0 on the
    graph path and leaves a flag file when it trains it again; on "cpu:chatty" it reports
    images every 20 ms until that flag exists (at most 60 s), so the coordinator's queue is
    never quiet."""
    flag = Path(data_dir) / "retried"
    results.put(("ready", slot, None, {}))
    while (job := tasks.get()) is not None:
        if device == "cpu:crash" and job.index == 0:
            if not job.eager:
                time.sleep(0.5)  # let the queue's feeder thread send "ready" first
                os.kill(os.getpid(), signal.SIGSEGV)
            flag.touch()
        t0 = time.time()
        while device == "cpu:chatty" and not flag.exists() and time.time() - t0 < 60:
            results.put(("images", slot, job.result_id, {"n": 1}))
            time.sleep(0.02)
        results.put(("final", slot, job.result_id, {
            "status": "done" if device == "cpu:crash" or flag.exists() else "failed",
            "top1": 50.0, "top5": 10.0, "train_loss": 1.0, "seconds": 1.0,
            "exec_path": "eager" if job.eager else "graph"}))


def test_a_dead_worker_is_noticed_while_others_keep_reporting(tmp_path, monkeypatch):
    """Dead workers are looked for every half second, not only when no worker has reported
    for that long (32 busy models report every second: the study's 4 dead models waited
    minutes)."""
    monkeypatch.setattr("dsd.train.coordinator.worker_main", chatty_worker)
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=2)
    coord = coordinator(store, tmp_path, ["cpu:crash", "cpu:chatty"], streams=1,
                        data_dir=tmp_path)
    assert coord.run() is None and coord.counts == {"done": 2}
    assert store.results(status=None).set_index("index")["exec_path"].to_dict() == {
        0: "eager", 1: "graph"}


def unstartable_worker(slot, device, tasks, results, stop, deadline, data_dir, loaders, streams,
                       queues):
    """A stand-in worker process: on "cuda:9" it dies before it is ready (as when CUDA cannot
    start in it), on "cuda:8" too while it is given more than CUDA's default hardware queues
    (as an MPS client does when the GPU's run out); elsewhere every job is done at once."""
    if device == "cuda:9" or (device == "cuda:8" and queues is not None):
        os._exit(3)
    results.put(("ready", slot, None, {}))
    while (job := tasks.get()) is not None:
        results.put(("final", slot, job.result_id, {
            "status": "done", "top1": 50.0, "top5": 10.0, "train_loss": 1.0, "seconds": 1.0,
            "exec_path": "graph"}))


def test_workers_that_die_as_they_start_fail_no_model(tmp_path, monkeypatch):
    """A slot whose workers die before they are ready is given up, its models trained elsewhere;
    with no slot left the run stops with an error and every model stays pending. A worker that
    died as it started is respawned with CUDA's default hardware queues."""
    monkeypatch.setattr("dsd.train.coordinator.worker_main", unstartable_worker)
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=3)

    with pytest.raises(DsdError, match=r"every worker process died as it started \(last: "
                                       r"cuda:9, exit code 3"):
        coordinator(store, tmp_path, ["cuda:9"]).run()
    assert set(store.results(status=None)["status"]) == {"pending"}
    coord = coordinator(store, tmp_path, ["cuda:9", "cpu"])
    assert coord.run() is None and coord.counts == {"done": 3} and coord.lost == ["cuda:9"]
    assert list(store.results(status=None)["status"]) == ["done"] * 3
    add_sweep(store, "more", n=2)   # a worker that cannot start with its queues: retried without
    coord = coordinator(store, tmp_path, ["cuda:8", "cuda:8"])
    assert coord.run() is None and coord.counts == {"done": 2} and coord.lost == []
    assert coord.queues == [None, None]


def test_whole_models_starts_no_model_that_cannot_finish(tmp_path):
    from dsd.train.coordinator import Coordinator
    from dsd.train.progress import TrainProgress
    from dsd.train.runner import Plan

    def coordinator(whole: bool) -> Coordinator:
        c = Coordinator(Store(":memory:"), Plan([], {}), tmp_path, slots=["cpu"],
                        deadline=time.time() + 100, data_dir=None,
                        progress=TrainProgress(None), whole_models=whole)
        c.epoch_times, c.model_times = [10.0], [150.0]  # epochs of 10 s, models of 150 s
        return c

    assert coordinator(False).can_start()      # the next epoch fits: start, checkpoint later
    assert not coordinator(True).can_start()   # a whole model does not


def test_dataset_must_match_the_sweep(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=1)
    with pytest.raises(DsdError, match="sampled for cifar10"):
        train(store, dataset="imagenet")
    with pytest.raises(DsdError, match="cifar10 not found"):
        train(store, data_dir=tmp_path / "nowhere")


def test_synthetic_results_are_labelled(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=1)
    summary = train(store, dataset="synthetic", overrides={**QUICK, "epochs": 1, "subset": 200,
                                                           "test_subset": 100})
    assert sum(summary.counts.values()) == 1
    assert store.results(status=None).empty            # excluded by default
    assert store.results(status=None, synthetic=True)["synthetic"].all()


def test_max_time_stops_cleanly_and_the_next_run_finishes(tmp_path, data_root):
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=3)
    t0 = __import__("time").time()
    summary = train(store, overrides=QUICK, data_dir=data_root, max_time=2.0)
    assert summary.stopped == "time" and __import__("time").time() - t0 < 60
    df = store.results(status=None)
    assert "running" not in set(df["status"]) and summary.pending >= 1
    rest = train(store, overrides=QUICK, data_dir=data_root)
    assert rest.stopped is None and rest.pending == 0
    assert len(store.results(status=None)) == 3


def test_worker_processes_interleave_models_like_inline(tmp_path, data_root):
    """Two worker processes, two models interleaved in each (the GPU layout, run on CPU): every
    model recorded once, with the errors a one-at-a-time inline run gives."""
    quick = {**QUICK, "subset": 500, "test_subset": 500}
    inline = Store(tmp_path / "inline.sqlite")
    add_sweep(inline, n=4)
    train(inline, overrides=quick, data_dir=data_root)
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=4)
    coord = coordinator(store, tmp_path, ["cpu", "cpu"], data_dir=data_root, overrides=quick)
    assert coord.run() is None and sum(coord.counts.values()) == 4
    got, want = store.results(status=None), inline.results(status=None)
    assert list(got["index"]) == [0, 1, 2, 3] and list(got["status"]) == list(want["status"])
    # fp32 on 1 thread vs 2 (sums in another order): the same training to about 1e-4
    assert np.allclose(got["top1"], want["top1"], atol=0.5)
    assert np.allclose(got["train_loss"], want["train_loss"], atol=1e-3)
    assert len(store.epochs()) == 8


def test_a_model_queues_at_most_a_few_steps_ahead():
    """A model with QUEUE_DEPTH steps waiting on its stream is skipped until the oldest has run,
    so a fast model is not held to a slow neighbour's pace; on the CPU nothing waits."""
    from dsd.train.worker import QUEUE_DEPTH, Queued

    made = []

    class Event:  # a CUDA event stand-in: "runs" when the test says so
        def __init__(self):
            self.done = False
            made.append(self)

        def record(self, stream):
            assert stream == "lane"

        def query(self):
            return self.done

    q = Queued("lane", event=Event)
    for _ in range(QUEUE_DEPTH):
        assert not q.full()
        q.add()
    assert q.full() and len(made) == QUEUE_DEPTH
    made[0].done = True
    assert not q.full()
    q.add()
    assert q.full()
    cpu = Queued(0)
    for _ in range(10):
        cpu.add()
    assert not cpu.full()


def fake_mps_control(tmp_path, monkeypatch, body: str | None = None):
    """A stand-in nvidia-cuda-mps-control on PATH; by default it logs its arguments, the pipe
    folder and device mask it was given, and its stdin."""
    log = tmp_path / "calls"
    exe = tmp_path / "bin" / "nvidia-cuda-mps-control"
    exe.parent.mkdir(exist_ok=True)
    exe.write_text("#!/bin/sh\n" + (body or f'echo "$* | $CUDA_MPS_PIPE_DIRECTORY | '
                                               f'$CUDA_VISIBLE_DEVICES | $(cat -)" >> {log}\n'))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{exe.parent}:{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_MPS_PIPE_DIRECTORY", raising=False)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))  # the daemons' folders
    return log


def test_mps_daemon_is_private_and_workers_inherit_it(tmp_path, monkeypatch):
    """`-d` with private pipe/log folders and the user's device mask; meanwhile child processes
    get the pipe and the server's own numbering of its devices (0,1 for the user's 2,3); `quit`
    on exit, and the environment restored."""
    import subprocess

    from dsd.train.mps import mps

    log = fake_mps_control(tmp_path, monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    with mps(True, devices=2) as on:
        assert on
        pipe = os.environ["CUDA_MPS_PIPE_DIRECTORY"]
        assert (Path(pipe).parent / "owner").read_text() == str(os.getpid())
        echo = 'echo "$CUDA_MPS_PIPE_DIRECTORY|$CUDA_VISIBLE_DEVICES"'
        child = subprocess.run(["sh", "-c", echo], capture_output=True, text=True).stdout.strip()
        assert child == f"{pipe}|0,1" and Path(pipe).is_dir()
    assert "CUDA_MPS_PIPE_DIRECTORY" not in os.environ and not Path(pipe).exists()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"
    started, quit_ = log.read_text().splitlines()
    assert started == f"-d | {pipe} | 2,3 | " and quit_ == f" | {pipe} | 2,3 | quit"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with mps(True, devices=4):                  # no mask: the workers get none either
        assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_mps_quits_the_daemon_of_a_killed_run_and_leaves_a_live_one(tmp_path, monkeypatch):
    """A SIGKILLed dsd train leaves its daemon running: the next one quits it (owner gone). A
    live owner's daemon is left alone, and auto mode then trains without MPS, saying so."""
    import subprocess

    from dsd.train.mps import mps

    log = fake_mps_control(tmp_path, monkeypatch)
    dead = subprocess.Popen(["true"])
    dead.wait()
    for name, owner in (("dsd-mps-dead", dead.pid), ("dsd-mps-live", os.getpid()),
                        ("dsd-mps-gone", dead.pid)):   # gone: its daemon is not running either
        (tmp_path / "tmp" / name / "pipe").mkdir(parents=True)
        (tmp_path / "tmp" / name / "owner").write_text(str(owner))
        if name != "dsd-mps-gone":
            (tmp_path / "tmp" / name / "pipe" / "control").touch()   # the daemon's named pipe
    notes = []
    with mps(None, note=notes.append) as on:
        assert on is False
    dead_pipe, live_pipe = (tmp_path / "tmp" / n / "pipe" for n in ("dsd-mps-dead", "dsd-mps-live"))
    assert log.read_text().splitlines() == [f" | {dead_pipe} |  | quit"]
    assert not dead_pipe.exists() and live_pipe.exists()
    assert not (tmp_path / "tmp" / "dsd-mps-gone").exists()
    assert notes == [f"another dsd train runs an MPS daemon ({live_pipe.parent}); this one runs "
                     "without MPS"]
    with mps(False) as on:                      # --no-mps touches no daemon
        assert on is False
    with mps(True) as on:                       # --mps starts its own all the same
        assert on
    assert len(log.read_text().splitlines()) == 3 and live_pipe.exists()


def test_mps_auto_falls_back_with_a_note_and_explicit_mps_fails(tmp_path, monkeypatch):
    from dsd.train.mps import mps

    notes = []
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with mps(None, note=notes.append) as on:    # no control program: quietly without
        assert on is False and not notes
    with pytest.raises(DsdError, match="nvidia-cuda-mps-control is not on PATH"):
        with mps(True):
            pass
    fake_mps_control(tmp_path, monkeypatch,
                     "echo 'An instance of this daemon is already running' >&2; exit 1\n")
    with mps(None, note=notes.append) as on:
        assert on is False
    assert notes == ["--mps: `nvidia-cuda-mps-control -d` failed (1): An instance of this daemon "
                     "is already running; worker processes time-share each GPU instead"]
    with pytest.raises(DsdError, match=r"-d` failed \(1\): An instance"):
        with mps(True):
            pass
    with mps(False) as on:
        assert on is False
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", "/run/mps")   # the user's own daemon: use it
    with mps(None, note=notes.append) as on:
        assert on is False and len(notes) == 1
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=1)
    if not torch.cuda.is_available():
        with pytest.raises(DsdError, match="--mps needs the local executor and a CUDA GPU"):
            train(store, dataset="synthetic", mps=True)


def test_train_takes_one_frozen_options_value(tmp_path):
    """`train(store, TrainOptions(...))` and keyword fields are the same call; fields override."""
    import dataclasses

    from dsd.train import TrainOptions

    opts = TrainOptions(dataset="synthetic", overrides={**QUICK, "epochs": 1, "subset": 200,
                                                        "test_subset": 100})
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.eager = True
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=2)
    summary = train(store, opts, indices=[1])
    df = store.results(status=None, synthetic=True)
    assert sum(summary.counts.values()) == 1 and df["index"].tolist() == [1]  # random input
    with pytest.raises(TypeError):
        train(store, opts, epochs=3)   # not a field: recipe fields go in overrides


def test_worker_processes_share_a_gpus_hardware_queues(monkeypatch):
    """Each of n worker processes on a GPU gets its share of 96 CUDA hardware queues after 4
    for each one's decode process (8 to 32), set before its context exists; a value the user
    set is kept."""
    from dsd.train.engine import hardware_queues, use_gpu

    assert [hardware_queues(n) for n in (1, 2, 3, 4, 8, 16)] == [32, 32, 28, 20, 8, 8]
    bound = []   # no GPU here: record what set_device saw of the environment
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: bound.append(
        (device, os.environ.get("CUDA_DEVICE_MAX_CONNECTIONS"))))
    monkeypatch.delenv("CUDA_DEVICE_MAX_CONNECTIONS", raising=False)
    use_gpu(torch.device("cuda", 0), hardware_queues(4))
    assert bound == [(torch.device("cuda", 0), "20")]
    monkeypatch.setenv("CUDA_DEVICE_MAX_CONNECTIONS", "8")
    use_gpu(torch.device("cuda", 0), 32)
    assert os.environ["CUDA_DEVICE_MAX_CONNECTIONS"] == "8"


def _engine_run(tmp_path, data_root, stop_after=None, ckpt="m.pt"):
    """Train tiny model 0 (1 epoch of 20 steps, CIFAR subset) with the engine directly;
    `stop_after`: ask it to stop once that many steps have run (a handshake on the step
    count, not a timer). Returns the final record and the model's weights."""
    from dsd.train.data import CifarData
    from dsd.train.engine import Job, train_steps

    recipe = get_recipe(None, "cifar10").override(epochs=1, batch_size=50, subset=1000,
                                                  test_subset=500)
    job = Job(result_id=1, sweep="t", index=0, spec_json=tiny_spec(0).to_json(), flops=1,
              seed=7, dataset="cifar10", recipe=recipe.to_dict(), ckpt=str(tmp_path / ckpt))
    data = CifarData("cpu", batch_size=50, data_dir=data_root, subset=1000, test_subset=500)
    steps = train_steps(job, data, device=torch.device("cpu"), emit=lambda k, r: None,
                        should_stop=lambda: stop_after is not None and n[0] >= stop_after)
    n = [0]
    while True:
        try:
            next(steps)
            n[0] += 1
        except StopIteration as end:
            return end.value, n[0]


def test_a_model_stopped_mid_epoch_resumes_at_the_step_it_reached(tmp_path, data_root):
    """Stopped after 7 of 20 steps, a model checkpoints step 7; the next run trains steps 8–20
    only, and ends with exactly the error and loss of an uninterrupted run."""
    whole, steps = _engine_run(tmp_path, data_root, ckpt="whole.pt")
    assert whole["status"] == "done" and steps == 20
    first, steps = _engine_run(tmp_path, data_root, stop_after=7)
    assert first["status"] == "stopped" and steps == 7
    saved = torch.load(tmp_path / "m.pt", weights_only=False)
    assert saved["pos"]["step"] == 7 and saved["history"] == []
    rest, steps = _engine_run(tmp_path, data_root)
    assert rest["status"] == "done" and steps == 13
    assert rest["top1"] == whole["top1"] and rest["train_loss"] == pytest.approx(
        whole["train_loss"], rel=1e-6)


def test_a_deadline_stops_a_model_before_the_step_that_would_pass_it():
    from dsd.train.engine import Clock

    clock = Clock(time.time() + 3600)
    assert not clock.step_passes() and not clock.passes(10.0) and clock.passes(7200.0)
    clock.prev -= 4000            # the last step took 4,000 s: the next would end past the limit
    assert clock.step_passes()
    assert not Clock(None).step_passes() and not Clock(None).passes(1e9)


def test_cpu_threads_leave_the_busy_cores_alone(monkeypatch):
    from dsd.train import runner

    monkeypatch.setattr(runner, "available_cores", lambda: 2)
    for load, want in ((0.1, 2), (1.6, 1), (5.5, 1)):
        monkeypatch.setattr(runner.os, "getloadavg", lambda load=load: (load, load, load))
        assert runner.cpu_threads()[0] == want
    assert runner.cpu_threads(3) == (3, "--threads")
    with pytest.raises(DsdError, match="--threads must be >= 1"):
        runner.cpu_threads(0)


def test_a_cpu_run_trains_on_the_threads_chosen_and_gives_them_back(tmp_path, data_root):
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=1)
    before = torch.get_num_threads()
    summary = train(store, overrides={**QUICK, "epochs": 1}, data_dir=data_root, threads=1)
    assert summary.threads == 1 and summary.counts == {"done": 1}
    assert torch.get_num_threads() == before


def test_the_time_limit_counts_from_the_callers_clock(tmp_path, data_root):
    """`dsd train --max-time` counts from the command's start (as a scheduler does), not
    from when torch was imported and the data checked: a limit already spent trains nothing."""
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=1)
    summary = train(store, overrides=QUICK, data_dir=data_root, max_time=60.0,
                    clock_start=time.time() - 120)
    assert summary.stopped == "time" and summary.pending == 1 and not summary.counts


def test_the_progress_bar_moves_within_an_epoch():
    from io import StringIO

    from rich.console import Console

    from dsd.train.progress import TrainProgress

    p = TrainProgress(Console(file=StringIO()))
    with p.live(models=2, epochs=4):
        p.images(250, "m1", of=1000)
        p.images(500, "m2", of=1000)
        assert p.bar.tasks[0].completed == pytest.approx(0.75)
        p.epoch("m1")                  # m1's epoch ends: the bar counts it whole
        assert p.bar.tasks[0].completed == pytest.approx(1.5)
        p.images(600, "m2", of=1000)   # a last report never pushes past the epoch's end
        p.epoch("m2")
        assert p.bar.tasks[0].completed == pytest.approx(2.0)


def test_each_run_writes_a_log_file_beside_the_store(tmp_path, data_root):
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=2)
    summary = train(store, overrides={**QUICK, "epochs": 1}, data_dir=data_root)
    log = Path(summary.log)
    assert log.parent == Path(f"{os.path.realpath(tmp_path / 's.sqlite')}.logs")
    lines = log.read_text().splitlines()
    assert lines[0].split(" ", 1)[1].startswith("dsd train: 2 models of tiny")
    models = [ln for ln in lines if " tiny #" in ln]                        # one per model
    assert len(models) == 2 and all(ln.endswith(("(eager)", "(graph)")) for ln in models)
    assert lines[-1].split(" ", 1)[1].startswith("end: {") and "stopped: None" in lines[-1]
    assert train(store, overrides={**QUICK, "epochs": 1}, data_dir=data_root).log is None
