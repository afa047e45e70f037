"""GPU measurements behind BENCHMARKS.md (training section): run on an H100.

  compare   the issue's benchmark: the same 8 CIFAR-regime models (117-130 MF) and data,
            (a) plain loop: torchvision DataLoader (8 workers, pinned), fp32, eager, batch 128,
            one model at a time; (b) `dsd train` defaults. Models/hour, img/s, mean error.
  scan      img/s of `dsd train` for several layouts (--k 4,8/2,16/8+mps: models per
            GPU[/processes], +mps: under a private MPS daemon, else without): the defaults.
  collapse  collapse rate of nds-plain vs nds on n CIFAR-regime models (graph, bf16).
  zoo       regnetx-400mf (CIFAR layout) trained with the nds defaults on all 50,000 images.
  imagenet  the ImageFolder path on a generated tree of JPEGs vs synthetic data on the GPU.
  profile   step rate of --n compare models under bf16/fp16/fp32 × channels_last/NCHW (and
            bf16-cl+bn: with dsd's fused batch norm kernels), and the CUDA kernels
            that dominate bf16 and fp16 (batch norm: native vs cuDNN).
  startup   the start-up phases of a model (warm-up with cuDNN autotuning, capture, first
            evaluation, checkpoint) with autotuning on and off, and the step rate after.
  fault     the two models whose graph replays corrupted memory, fresh then resumed, as a
            worker trains them (run it under compute-sanitizer to name the kernel).
  resume    the study's chunk-9 fault: AnyNetXD #59-#66 (8 models at once, as on the GPU whose
            4 workers all faulted) trained by `dsd train` in short rounds (--max-time), so
            every model resumes from its checkpoint again and again; counts the faults.
  workspace two CUDA graphs of a bf16 matrix product replayed at once on two streams, captured
            on one shared stream (torch's default capture stream: one cuBLAS workspace) or each
            on its own (dsd's Stepper since the fifth session): max error against the product.
  convs     per stage of the slowest compare model: its grouped 3×3 convolution (heuristics,
            autotuning, NCHW, dense) and batch norm + ReLU (PyTorch's in both layouts, dsd's
            fused one), GPU µs per training step (each timed as a replayed CUDA graph).

Every mode prints a short table and writes JSON to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsd import Store, complexity, zoo_spec  # noqa: E402
from dsd.train import RECIPES, train  # noqa: E402


def dsd1(name: str):
    """A shipped space under the dsd1 sampler convention: the populations BENCHMARKS.md
    measured (and the models its fault runs picked by index) were drawn with it."""
    from dsd.space import load_space

    return load_space(name).with_samplers("dsd1")


def cifar_models(n: int, seed: int, window: str = "117MF-130MF") -> list:
    """n RegNetX models in the CIFAR-10 layout inside the flops window (dsd's sampler)."""
    from dsd.sample import sample

    return sample(dsd1("regnetx"), n, dataset="cifar10", window=window, seed=seed).models


def make_store(models, name="bench", dataset="cifar10", seed=0) -> Store:
    store = Store(Path(tempfile.mkdtemp()) / "bench.sqlite")
    store.add_sweep(name, space="regnetx", space_def={}, dataset=dataset, window={}, seed=seed,
                    draws=len(models), models=models)
    return store


def run_dsd(models, data, *, epochs: int, **kw) -> dict:
    store = make_store(models)
    t0 = time.time()
    s = train(store, data_dir=data, overrides={"epochs": epochs, **kw.pop("overrides", {})}, **kw)
    wall = time.time() - t0
    df = store.results(status=None)
    n_img = 50_000 // 128 * 128
    return {"wall_s": wall, "models": len(models), "epochs": epochs, "counts": s.counts,
            "mps": s.mps,
            "img_per_s": len(models) * epochs * n_img / wall,
            "models_per_hour": len(models) / wall * 3600,
            "mean_top1": float(df["top1"].mean()), "top1": df["top1"].tolist(),
            "status": df["status"].tolist(), "exec_path": df["exec_path"].tolist(),
            "seconds": df["seconds"].tolist(),  # per model: when each finished shows the tail
            "device": df["device"].iloc[0], "train_loss": df["train_loss"].tolist()}


def baseline_one(spec, data: str, epochs: int, recipe) -> dict:
    """The plain loop: torchvision CIFAR10 + DataLoader(8 workers, pinned), fp32, eager."""
    import torch
    import torchvision.transforms as T
    from torchvision.datasets import CIFAR10

    from dsd.model import build
    from dsd.train.data import CIFAR_MEAN, CIFAR_STD
    from dsd.train.optim import lr_at, param_groups

    t0 = time.time()
    norm = [T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)]
    root = str(Path(data) / "cifar10")
    tr = CIFAR10(root, train=True, transform=T.Compose(
        [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), *norm]))
    te = CIFAR10(root, train=False, transform=T.Compose(norm))
    loader = torch.utils.data.DataLoader(tr, batch_size=128, shuffle=True, num_workers=8,
                                         pin_memory=True, drop_last=True, persistent_workers=True)
    test = torch.utils.data.DataLoader(te, batch_size=1000, num_workers=8, pin_memory=True)
    torch.manual_seed(0)
    model = build(spec, zero_init_last_bn=recipe.zero_init_last_bn).cuda()
    opt = torch.optim.SGD([{"params": p, "weight_decay": wd} for p, wd in
                           param_groups(model, recipe)], lr=recipe.lr, momentum=0.9,
                          nesterov=recipe.nesterov)
    spe = len(loader)
    total = epochs * spe
    it = 0
    epoch_s = []
    for _ in range(epochs):
        t_epoch = time.time()
        model.train()
        for x, y in loader:
            for g in opt.param_groups:
                g["lr"] = lr_at(recipe, it, total, spe)
            x, y = x.cuda(non_blocking=True), y.cuda(non_blocking=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1
        torch.cuda.synchronize()
        epoch_s.append(time.time() - t_epoch)
    model.eval()
    wrong = n = 0
    with torch.no_grad():
        for x, y in test:
            wrong += (model(x.cuda()).argmax(1) != y.cuda()).sum().item()
            n += len(y)
    return {"seconds": time.time() - t0, "top1": 100.0 * wrong / n, "loss": loss.item(),
            "images": total * 128, "epoch_s": epoch_s}


def cmd_compare(a) -> dict:
    models = cifar_models(8, a.seed)
    flops = [m.flops for m in models]
    out = {"flops": flops, "epochs": a.epochs}
    recipe = RECIPES["nds"].override(epochs=a.epochs)
    long_run = None
    if a.long_epochs and a.long_gpu is not None:  # dsd's long run on another GPU, meanwhile
        long_out = Path(tempfile.mkdtemp())
        long_run = subprocess.Popen(
            [sys.executable, __file__, "long", "--data", str(a.data), "--seed", str(a.seed),
             "--epochs", str(a.long_epochs), "--out", str(long_out)],
            env={**os.environ, "CUDA_VISIBLE_DEVICES": str(a.long_gpu)})
    dsd = run_dsd(models, a.data, epochs=a.epochs)
    out["dsd"] = dsd
    dump(a, "compare", out)
    base = []
    for m in models:
        base.append(baseline_one(m.spec, a.data, a.epochs, recipe))
        print(f"baseline model: {base[-1]}", flush=True)
    wall = sum(b["seconds"] for b in base)
    out["baseline"] = {"wall_s": wall, "models_per_hour": len(models) / wall * 3600,
                       "img_per_s": sum(b["images"] for b in base) / wall,
                       "mean_top1": sum(b["top1"] for b in base) / len(base),
                       "top1": [b["top1"] for b in base]}
    out["ratio_models_per_hour"] = dsd["models_per_hour"] / out["baseline"]["models_per_hour"]
    if a.long_epochs:  # the plain loop's epochs all cost the same: its long run is extrapolated
        if long_run is None:
            out["dsd_long"] = run_dsd(models, a.data, epochs=a.long_epochs)
        else:
            long_run.wait()
            out["dsd_long"] = json.loads((long_out / "long.json").read_text())
        long_wall = sum(b["seconds"] + (a.long_epochs - a.epochs) * sum(b["epoch_s"]) / a.epochs
                        for b in base)
        out["baseline_long_extrapolated"] = {"wall_s": long_wall,
                                             "models_per_hour": len(models) / long_wall * 3600}
        out["ratio_long"] = (out["dsd_long"]["models_per_hour"]
                             / out["baseline_long_extrapolated"]["models_per_hour"])
    dump(a, "compare", out)
    b = out["baseline"]
    print(f"\n{'':10s} {'models/h':>9s} {'img/s':>9s} {'mean top1':>10s}  ({a.epochs} epochs)")
    print(f"{'baseline':10s} {b['models_per_hour']:9.1f} {b['img_per_s']:9.0f} "
          f"{b['mean_top1']:9.2f}%")
    print(f"{'dsd':10s} {dsd['models_per_hour']:9.1f} {dsd['img_per_s']:9.0f} "
          f"{dsd['mean_top1']:9.2f}%   ratio {out['ratio_models_per_hour']:.1f}x")
    if a.long_epochs:
        d = out["dsd_long"]
        bl = out["baseline_long_extrapolated"]
        print(f"dsd {a.long_epochs} epochs: {d['models_per_hour']:.1f} models/h, "
              f"{d['img_per_s']:.0f} img/s, mean top1 {d['mean_top1']:.2f}%; baseline "
              f"extrapolated {bl['models_per_hour']:.1f} models/h; ratio {out['ratio_long']:.1f}x")
    return out


def cmd_long(a) -> dict:
    """dsd's defaults on the compare models for --epochs (compare runs it on --long-gpu)."""
    mps = {"auto": None, "on": True, "off": False}[a.mps]
    from dsd.train.kernels import default_kernels

    kernels = (default_kernels() if a.kernels is None else
               tuple(k for k in a.kernels.split(",") if k and k != "none"))
    out = run_dsd(cifar_models(8, a.seed), a.data, epochs=a.epochs, mps=mps, kernels=kernels)
    out["kernels"] = kernels
    dump(a, "long", out)
    return out


def bench_step(spec, dev, *, fmt, amp, graph: bool, kernels: tuple = ()):
    """(model, optimizer, Stepper) of `spec` as `dsd train` sets them up, for the probes below;
    `kernels`: dsd's own layers to swap in (`train(kernels=…)`)."""
    from dsd.model import build
    from dsd.train.engine import Stepper
    from dsd.train.kernels import use_kernels
    from dsd.train.optim import TensorSGD, param_groups

    model = use_kernels(build(spec, zero_init_last_bn=True), kernels).to(dev, memory_format=fmt)
    opt = TensorSGD(param_groups(model, RECIPES["nds"]), lr=0.01, momentum=0.9, nesterov=True,
                    device=dev)
    return model, opt, Stepper(model, opt, amp=amp, graph=graph, device=dev)


def step_rate(spec, *, amp: str, channels_last: bool, steps: int, profile: bool = False,
              kernels: tuple = ()):
    """Images/s of the training step of `spec` under autocast `amp` (bf16, fp16 or fp32: none)
    (batch 128, graphed on CUDA as `dsd train` does it); with `profile` (CUDA only), eager steps
    instead, and the 12 CUDA kernels that took longest over them (kernels inside a replayed graph
    may not be traced one by one). fp16 runs without loss scaling: a speed probe only (PyTorch
    hands batch norm to cuDNN for fp16 inputs, never for bf16)."""
    import torch

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[amp]
    profile = profile and dev.type == "cuda"
    _, _, step = bench_step(spec, dev, fmt=fmt, amp=dtype, graph=dev.type == "cuda" and not profile,
                            kernels=kernels)
    x = torch.randn(128, 3, 32, 32, device=dev).to(memory_format=fmt)
    x = x.to(dtype) if dtype else x
    y = torch.randint(0, 10, (128,), device=dev)
    for _ in range(8):  # warm-up steps, then the capture
        step(x, y)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    prof = None
    if profile:
        prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA])
        prof.__enter__()
    t0 = time.time()
    for _ in range(steps):
        step(x, y)
    sync()
    rate = steps * 128 / (time.time() - t0)
    top = []
    if prof is not None:
        prof.__exit__(None, None, None)
        events = [e for e in prof.key_averages() if e.device_time_total > 0]
        total = sum(e.device_time_total for e in events) or 1.0
        for e in sorted(events, key=lambda e: -e.device_time_total)[:12]:
            top.append({"kernel": e.key[:90], "share": e.device_time_total / total,
                        "calls": e.count})
    return rate, step.exec_path, top


PROFILE_VARIANTS = (("bf16", True), ("fp16", True), ("bf16", False), ("fp32", True),
                    ("fp32", False), ("bf16", ("bn",)), ("bf16", ("nchw",)),
                    ("bf16", ("bn", "nchw")))  # channels_last, + dsd's own layers


def cmd_profile(a) -> dict:
    """Steady-state step rate of a few compare models under precision/layout variants (cuDNN
    heuristics, as `dsd train`; --cudnn-bench: autotuning), and the kernels that dominate
    the default (bf16, channels_last) and the fp16 one: where the time of a sampled model goes."""
    import torch

    torch.backends.cudnn.benchmark = a.cudnn_bench  # dsd train uses heuristics
    models = cifar_models(a.n, a.seed)
    pick = [int(i) for i in a.pick.split(",")] if a.pick else range(len(models))

    def vname(amp, cl) -> str:   # bf16-cl, bf16-nchw, bf16-cl+bn, …
        return f"{amp}-" + ("cl+" + "+".join(cl) if isinstance(cl, tuple)
                            else "cl" if cl else "nchw")

    variants = [v for v in PROFILE_VARIANTS if a.variants in ("all", None)
                or vname(*v) in a.variants.split(",")]
    out = []
    for i in pick:
        m = models[i]
        row = {"index": i, "flops_mf": m.flops / 1e6, "stages": [[st.d, st.w, st.b, st.g]
                                                               for st in m.spec.stages]}
        for amp, cl in variants:
            name = vname(amp, cl)
            row[name], path, _ = step_rate(m.spec, amp=amp, channels_last=bool(cl),
                                           steps=a.steps,
                                           kernels=cl if isinstance(cl, tuple) else ())
            print(f"#{i} {m.flops / 1e6:6.1f}MF {name:10s} {row[name]:8.0f} img/s ({path})",
                  flush=True)
        for amp in [t for t in a.top.split(",") if t]:
            rate, _, row[f"top_kernels_{amp}"] = step_rate(m.spec, amp=amp, channels_last=True,
                                                           steps=a.steps, profile=True)
            print(f"{m.flops / 1e6:6.1f}MF {amp}-cl eager {rate:8.0f} img/s; stages (d, w, b, g) "
                  f"{row['stages']}", flush=True)
            for k in row[f"top_kernels_{amp}"]:
                print(f"    {100 * k['share']:5.1f}%  {k['calls']:6d}x  {k['kernel']}")
        out.append(row)
        dump(a, "profile", out)
    return out


def _startup_worker(bench: bool, specs: list[str], steps: int, q) -> None:
    """In a fresh process (an empty cuDNN autotuning cache): time each start-up phase of
    `dsd train`'s graphed bf16 step for every spec, with cuDNN autotuning on or off."""
    import torch

    from dsd.spec import ModelSpec
    from dsd.train.engine import WARMUP_STEPS, evaluate, save_checkpoint

    torch.backends.cudnn.benchmark = bench
    cuda = torch.cuda.is_available()   # on CPU (a smoke run): fp32, eager
    dev, cl = torch.device("cuda" if cuda else "cpu"), torch.channels_last
    amp = torch.bfloat16 if cuda else None
    x = torch.randn(128, 3, 32, 32, device=dev).to(memory_format=cl, dtype=amp)
    y = torch.randint(0, 10, (128,), device=dev)
    test = [(torch.randn(1000, 3, 32, 32, device=dev).to(memory_format=cl, dtype=amp),
             torch.randint(0, 10, (1000,), device=dev))] * 10
    data = SimpleNamespace(test=lambda: iter(test))
    torch.nn.functional.conv2d(x, torch.randn(8, 3, 3, 3, device=dev, dtype=x.dtype)).sum()
    for spec in specs:
        row, t = {"bench": bench}, time.time()

        def phase(name: str) -> None:
            nonlocal t
            if cuda:
                torch.cuda.synchronize(dev)
            row[name], t = time.time() - t, time.time()

        model, opt, step = bench_step(ModelSpec.from_json(spec), dev, fmt=cl, amp=amp,
                                      graph=cuda)
        phase("build")
        for _ in range(WARMUP_STEPS):
            step(x, y)
        phase("warmup")
        step(x, y)
        phase("capture")
        for _ in range(steps):
            step(x, y)
        phase("steps")
        row["img_per_s"] = steps * 128 / row["steps"]
        evaluate(model, data, bf16=cuda, device=dev)
        phase("eval_first")
        evaluate(model, data, bf16=cuda, device=dev)
        phase("eval")
        save_checkpoint(f"{tempfile.gettempdir()}/startup.pt", model, opt, {"history": []})
        phase("checkpoint")
        q.put(row)
    q.put(None)


def cmd_startup(a) -> dict:
    """Where a model's start-up goes (build, eager warm-up with cuDNN autotuning, capture, first
    evaluation, checkpoint) with cuDNN autotuning on and off, each in a fresh process; and the
    step rate after, to see whether autotuning pays for itself."""
    import multiprocessing as mp

    specs = [m.spec.to_json() for m in cifar_models(a.n, a.seed)]
    out = {}
    for bench in (False, True):
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        proc = ctx.Process(target=_startup_worker, args=(bench, specs, a.steps, q))
        proc.start()
        rows = list(iter(q.get, None))
        proc.join()
        out["bench" if bench else "heuristics"] = rows
        for i, r in enumerate(rows):
            print(f"model {i} cudnn {'bench' if bench else 'heur '}: " + ", ".join(
                f"{k} {v:.2f}s" for k, v in r.items() if k not in ("bench", "img_per_s", "steps"))
                + f"; steps {r['img_per_s']:.0f} img/s", flush=True)
        dump(a, "startup", out)
    return out


def cmd_fault(a) -> dict:
    """The two models whose graph replays corrupted memory (BENCHMARKS.md: an illegal address in
    a test pass; a train loss that read 0.0 after a resume), trained as a worker trains them:
    interleaved on two CUDA streams, on the first --images CIFAR-10 images. A fresh run stops
    after its first epoch; a resumed run loads that checkpoint, captures again and trains to
    --epochs. Prints every epoch's train loss. --cudnn-bench: with cuDNN autotuning, as both
    faults were seen. Under `compute-sanitizer --tool memcheck` it names a kernel that writes
    out of its allocator segment (writes inside one go unseen)."""
    import torch

    from dsd.sample import sample
    from dsd.train.engine import Job, use_gpu
    from dsd.train.worker import DataCache, Running, step_round

    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    if cuda:
        use_gpu(dev)
        torch.backends.cudnn.benchmark = a.cudnn_bench
    specs = [sample(dsd1("anynetxc"), 24, dataset="cifar10", seed=1).models[23].spec,
             sample(dsd1("anynetxc"), 100, dataset="cifar10", seed=0).models[56].spec]
    recipe = {**RECIPES["nds"].to_dict(), "epochs": a.epochs, "subset": a.images,
              "test_subset": 1000}
    ckpts = Path(tempfile.mkdtemp())
    jobs = [Job(i, "fault", i, spec.to_json(), 0, i, "cifar10", recipe, str(ckpts / f"{i}.pt"))
            for i, spec in enumerate(specs)]
    cache = DataCache(dev, data_dir=a.data, workers=2)
    out = []
    for phase in ("fresh", "resumed"):
        epochs: dict[int, list] = {j.result_id: [] for j in jobs}

        def emit(rid):
            return lambda kind, rec: epochs[rid].append(rec) if kind == "epoch" else None

        def stop(rid):
            return lambda: phase == "fresh" and len(epochs[rid]) >= 1

        running = [Running(j, cache, torch.cuda.Stream(dev) if cuda else None,
                           emit(j.result_id), stop(j.result_id), None) for j in jobs]
        while running:
            for model, final in step_round(running):
                rid = model.job.result_id
                out.append({"model": rid, "phase": phase, "status": final["status"],
                            "exec_path": final.get("exec_path"), "error": final.get("error"),
                            "train_loss": [e["train_loss"] for e in epochs[rid]],
                            "top1": [e["top1"] for e in epochs[rid]]})
                print(f"model {rid} {phase}: {final['status']} ({final.get('exec_path')}); "
                      f"train loss per epoch {[round(x, 4) for x in out[-1]['train_loss']]}; "
                      f"top1 {out[-1]['top1']}", flush=True)
        dump(a, "fault", out)
    return out


def cmd_resume(a) -> dict:
    """AnyNetXD #59-#66 of the study (all eight faulted on one GPU right after resuming) for
    --epochs, in `dsd train` rounds of --round seconds: each round ends with the models
    checkpointed mid-run and the next resumes them, as chunk boundaries do. A fault shows as a
    failed model (worker died) or an eager exec_path (CUDA error on the graph path, retried)."""
    import torch

    from dsd.sample import sample

    models = sample(dsd1("anynetxd"), 100, dataset="cifar10", seed=0).models[59:67]
    store = make_store(models, name="resume")
    mps = {"auto": None, "on": True, "off": False}[a.mps]
    rounds = []
    t0 = time.time()
    while store.results(status="pending").shape[0] or not rounds:
        s = train(store, data_dir=a.data, overrides={"epochs": a.epochs}, max_time=a.round,
                  mps=mps)
        df = store.results(status=None)
        rounds.append({"seconds": s.seconds, "counts": s.counts, "pending": s.pending,
                       "epochs_done": df["epochs_done"].tolist()})
        print(f"round {len(rounds)}: {s.seconds:.0f}s {s.counts} pending {s.pending}; epochs "
              f"{df['epochs_done'].tolist()}", flush=True)
        if time.time() - t0 > a.budget or (len(rounds) > 1 and not s.counts
                                           and rounds[-2]["epochs_done"] == rounds[-1][
                                               "epochs_done"]):
            break  # out of time, or no progress
    df = store.results(status=None)
    out = {"rounds": rounds, "status": df["status"].tolist(), "exec_path": df["exec_path"].tolist(),
           "error": df["error"].tolist(), "top1": df["top1"].tolist(),
           "faults": int((df["status"] == "failed").sum() + (torch.cuda.is_available() and (
               df["exec_path"] == "eager").sum()))}
    print(f"faults {out['faults']}: status {out['status']}, paths {out['exec_path']}", flush=True)
    dump(a, "resume", out)
    return out


def cmd_workspace(a) -> dict:
    """cuBLAS keys its workspace by (handle, stream), so graphs captured on one stream share it.
    Two graphs of `out = x @ w.T` (bf16; shapes of a classifier head and wider), captured on
    torch's shared default capture stream ("shared") or each on its own stream ("own"), replayed
    at once on two streams --steps×10 times: the largest error of their outputs against the
    product computed alone. A race on the shared workspace shows as a large error."""
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("workspace: needs a CUDA GPU")
    dev = torch.device("cuda")
    bf16 = torch.bfloat16
    out = []
    for m, k, n in [(128, 424, 10), (128, 1120, 10), (128, 4096, 10), (128, 4096, 1000),
                    (1000, 1024, 10)]:
        row = {"m": m, "k": k, "n": n}
        for scheme in ("shared", "own"):
            g = torch.Generator(device=dev).manual_seed(0)
            xs = [torch.randn(m, k, device=dev, dtype=bf16, generator=g) for _ in range(2)]
            ws = [torch.randn(n, k, device=dev, dtype=bf16, generator=g) for _ in range(2)]
            outs = [torch.empty(m, n, device=dev, dtype=bf16) for _ in range(2)]
            refs = [(x.float() @ w.float().T).to(bf16) for x, w in zip(xs, ws)]
            lanes = [torch.cuda.Stream(dev) for _ in range(2)]
            graphs = []
            for i in range(2):
                lane = lanes[i] if scheme == "own" else torch.cuda.Stream(dev)
                with torch.cuda.stream(lane):  # warm up where it will be captured
                    torch.matmul(xs[i], ws[i].T, out=outs[i])
                torch.cuda.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=lanes[i] if scheme == "own" else None):
                    torch.matmul(xs[i], ws[i].T, out=outs[i])
                graphs.append(graph)
            worst = 0.0
            for rep in range(a.steps * 10):
                for lane, graph in zip(lanes, graphs):
                    with torch.cuda.stream(lane):
                        graph.replay()
                if rep % 10 == 9:
                    torch.cuda.synchronize()
                    worst = max(worst, *[((o.float() - r.float()).abs().max()
                                          / r.float().abs().max()).item()
                                         for o, r in zip(outs, refs)])
            row[scheme] = worst
        print(json.dumps(row), flush=True)
        out.append(row)
        dump(a, "workspace", out)
    return out


def _us_per_call(fn, iters: int, cuda: bool) -> float:
    """Microseconds per call of `fn` (forward and backward) after a few warm-up calls; on a GPU
    `fn` is captured once as a CUDA graph and replayed, so this is GPU time, as in training,
    not the CPU's cost of launching small kernels one by one."""
    import torch

    if cuda:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        fn = graph.replay
        torch.cuda.synchronize()
    else:
        for _ in range(3):
            fn()
    t0 = time.time()
    for _ in range(iters):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return (time.time() - t0) / iters * 1e6


def cmd_convs(a) -> dict:
    """Where a deep, narrow-group model's step goes, layer kind by layer kind: for each stage of
    the picked compare models (default #5, the slowest), forward + backward of one block's 3×3
    grouped convolution (batch 128, bf16 autocast) under cuDNN heuristics and autotuning, in
    channels_last and NCHW, of a dense (groups=1) convolution of the same shape, and of its
    batch norm + ReLU (PyTorch's in both layouts, dsd's fused kernels); times the stage's
    depth: GPU µs per training step."""
    import torch
    from torch import nn

    from dsd.train.kernels.bn_relu import BatchNormReLU

    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    cl, nchw = torch.channels_last, torch.contiguous_format

    def bn_relu(wb):
        return nn.Sequential(nn.BatchNorm2d(wb), nn.ReLU(inplace=True))

    def conv(wb, groups):
        return nn.Conv2d(wb, wb, 3, padding=1, groups=groups, bias=False)

    models = cifar_models(a.n, a.seed)
    out = []
    for i in [int(i) for i in (a.pick or "5").split(",")]:
        spec, r = models[i].spec, 32 // models[i].spec.stem_stride
        for k, st in enumerate(spec.stages):
            r //= st.stride
            wb = st.w // st.b
            row = {"model": i, "stage": k + 1, "d": st.d, "w_b": wb, "g": st.g, "res": r}
            variants = {
                "grouped-cl-heur": (lambda: conv(wb, wb // st.g), cl, False),
                "grouped-cl-bench": (lambda: conv(wb, wb // st.g), cl, True),
                "grouped-nchw-heur": (lambda: conv(wb, wb // st.g), nchw, False),
                "dense-cl-heur": (lambda: conv(wb, 1), cl, False),
                "bn-relu-cl": (lambda: bn_relu(wb), cl, False),
                "bn-relu-nchw": (lambda: bn_relu(wb), nchw, False),
                "bn-relu-dsd": (lambda: BatchNormReLU(wb), cl, False)}
            for name, (make, fmt, bench) in variants.items():
                if name == "bn-relu-dsd" and not cuda:
                    continue
                torch.backends.cudnn.benchmark = bench
                mod = make().to(dev, memory_format=fmt)
                x = torch.randn(128, wb, r, r, device=dev).to(memory_format=fmt)
                x = x.to(torch.bfloat16 if cuda else torch.float32).requires_grad_()
                gy = torch.randn_like(x)

                def fn(mod=mod, x=x, gy=gy):
                    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
                        y = mod(x)
                    y.backward(gy)

                us = _us_per_call(fn, a.steps, cuda)
                row[name] = round(us * st.d, 1)
            out.append(row)
            print(json.dumps(row), flush=True)
            dump(a, "convs", out)
    return out


def cmd_scan(a) -> dict:
    models = cifar_models(a.n, a.seed)
    out = {}
    for k in a.k.split(","):  # "K" or "K/P" (K models in P processes), "+mps": under MPS
        layout, mps = k.removesuffix("+mps"), k.endswith("+mps")
        per_gpu, _, procs = layout.partition("/")
        out[k] = run_dsd(models, a.data, epochs=a.epochs, per_gpu=int(per_gpu),
                         procs_per_gpu=int(procs) if procs else None, mps=mps)
        print(f"per_gpu={k}: {out[k]['img_per_s']:.0f} img/s, "
              f"{out[k]['models_per_hour']:.1f} models/h, wall {out[k]['wall_s']:.1f}s, "
              f"paths {set(out[k]['exec_path'])}, statuses {out[k]['counts']}", flush=True)
        dump(a, "scan", out)
    return out


def cmd_collapse(a) -> dict:
    models = cifar_models(a.n, a.seed)
    out = {"flops": [m.flops for m in models], "epochs": a.epochs}
    for recipe in a.recipes.split(","):
        eager = recipe.endswith(":eager")
        name = recipe.split(":")[0]
        over = {"precision": "fp32"} if eager else {}
        r = run_dsd(models, a.data, epochs=a.epochs, recipe=name, eager=eager, overrides=over)
        out[recipe] = r
        bad = sum(s in ("collapsed", "diverged") for s in r["status"])
        print(f"{recipe}: collapsed/diverged {bad}/{len(models)}; statuses {r['counts']}; "
              f"mean top1 {r['mean_top1']:.2f}%; wall {r['wall_s']:.0f}s", flush=True)
        dump(a, "collapse", out)
    return out


def cmd_smoke(a) -> dict:
    """Graph bf16 vs eager fp32 on the same 2 models and a subset: paths, errors, no crash."""
    models = cifar_models(2, a.seed)
    out = {}
    for name, kw in (("graph", {}), ("eager-fp32", {"eager": True,
                                                    "overrides": {"precision": "fp32"}})):
        kw.setdefault("overrides", {}).update(subset=10_000)
        out[name] = r = run_dsd(models, a.data, epochs=a.epochs, per_gpu=2, **kw)
        print(f"{name}: top1 {r['top1']} status {r['status']} paths {r['exec_path']} "
              f"wall {r['wall_s']:.1f}s device {r['device']}", flush=True)
        dump(a, "smoke", out)
    return out


def cmd_zoo(a) -> dict:
    spec = zoo_spec("regnetx-400mf", "cifar10")
    c = complexity(spec)
    m = SimpleNamespace(index=0, spec=spec, params={}, flops=c["flops"], params_count=c["params"],
                        acts=c["acts"])
    r = run_dsd([m], a.data, epochs=a.epochs)
    r["flops"] = c["flops"]
    print(f"regnetx-400mf cifar10 ({c['flops'] / 1e6:.1f} MF): top1 {r['top1'][0]:.2f}%, "
          f"wall {r['wall_s']:.1f}s, {r['status'][0]} ({r['exec_path'][0]})", flush=True)
    dump(a, "zoo", {"zoo": r})
    return r


def _jpeg(args):
    import numpy as np
    from PIL import Image

    path, seed = args
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(small).resize((500, 375), Image.BILINEAR).save(path, quality=90)


def cmd_imagenet(a) -> dict:
    from multiprocessing import Pool

    root = Path(a.tree)
    jobs = []
    for split, n in (("train", a.images // 100), ("val", 10)):
        for c in range(100):
            d = root / split / f"n{c:04d}"
            d.mkdir(parents=True, exist_ok=True)
            jobs += [(d / f"{i}.JPEG", hash((split, c, i)) % 2**31) for i in range(n)]
    with Pool() as pool:
        pool.map(_jpeg, jobs, chunksize=64)
    spec = zoo_spec("regnetx-400mf", "imagenet")
    c = complexity(spec)
    m = SimpleNamespace(index=0, spec=spec, params={}, flops=c["flops"], params_count=c["params"],
                        acts=c["acts"])
    out = {}
    for ds, k in [(d, 1) for d in a.inputs.split(",")]:
        store = make_store([m], dataset="imagenet")
        t0 = time.time()
        train(store, dataset=ds, data_dir=str(root), per_gpu=k,
              overrides={"epochs": 2, "subset": a.images, "test_subset": 500})
        df = store.results(status=None, synthetic=True)
        ep = store.epochs()
        n = a.images // 128 * 128
        out[f"{ds}-k{k}"] = {"wall_s": time.time() - t0, "epoch_s": ep["seconds"].tolist(),
                             "img_per_s_epoch2": n / float(ep["seconds"].iloc[-1]),
                             "status": df["status"].tolist()}
        print(f"{ds} per_gpu={k}: {out[f'{ds}-k{k}']}", flush=True)
        dump(a, "imagenet", out)
    return out


def dump(a, name, obj) -> None:
    if a.out:
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / f"{name}.json").write_text(json.dumps(obj, indent=1, default=str))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["compare", "long", "scan", "collapse", "zoo", "imagenet",
                                    "smoke", "profile", "startup", "fault", "convs", "resume",
                                    "workspace"])
    p.add_argument("--data", default=None, help="data root holding cifar10/cifar-10-batches-py")
    p.add_argument("--out", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--long-epochs", type=int, default=0,
                   help="compare: also dsd for this many epochs; the baseline is extrapolated")
    p.add_argument("--long-gpu", type=int, default=None,
                   help="compare: run that long dsd run on this GPU, beside the baseline")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--k", default="1,2,4")
    p.add_argument("--steps", type=int, default=60,
                   help="profile, startup: timed steps per variant")
    p.add_argument("--mps", choices=["auto", "on", "off"], default="auto",
                   help="long, resume: MPS as `dsd train` gets it (auto), or insisted on / off")
    p.add_argument("--kernels", default=None,
                   help="long: train(kernels=…), dsd's own layers, e.g. bn,nchw or none "
                        "[dsd's default]")
    p.add_argument("--cudnn-bench", action="store_true",
                   help="fault, profile: with cuDNN autotuning (dsd train: heuristics)")
    p.add_argument("--pick", default=None, help="profile: indices of the --n models (0,2)")
    p.add_argument("--variants", default="all", help="profile: e.g. bf16-cl,fp16-cl")
    p.add_argument("--top", default="bf16,fp16", help="profile: kernel tables for these amps")
    p.add_argument("--recipes", default="nds-plain,nds")
    p.add_argument("--round", type=float, default=45.0,
                   help="resume: seconds per `dsd train` round (--max-time)")
    p.add_argument("--budget", type=float, default=400.0,
                   help="resume: start no round after this many seconds")
    p.add_argument("--images", type=int, default=12800)
    p.add_argument("--tree", default="/tmp/inet")
    p.add_argument("--inputs", default="synthetic,imagenet", help="imagenet mode: data sources")
    a = p.parse_args()
    globals()[f"cmd_{a.mode}"](a)


if __name__ == "__main__":
    main()
