"""ImageNet input pipelines on a GPU (BENCHMARKS.md, issue 17): synthetic input, the `cpu` loader
(PIL in DataLoader workers), the `gpu` loader (nvjpeg + crop kernels, producer thread), `gpu-32`
(the same with 32 CUDA hardware queues per process) and `gpu-process` (producer process).

1. Writes an ImageNet-heavy tree: 1,000 classes, --images train JPEGs (500×375, 375×500 or
   500×333, detail at four scales, quality 90: about 108 KB each, ImageNet's typical size) and
   --val-per-class validation images per class.
2. The GPU loader's stages, its GPU kernel time, and nvjpeg's decoding rate with 1–8 processes
   decoding at once; its decode and crop times while a Python thread, a GPU-load thread (8 or
   32 hardware queues) or a GPU load in another process runs. Loaders alone (no model):
   images/s of each pipeline for training and evaluation, and the GPU loader's peak memory.
3. Training with `dsd train` (2 epochs, epoch 2 timed per model): the zoo model regnetx-400mf
   alone (--per-gpu 1) and 8 sampled 400MF RegNetX models at the default layout (8 per GPU,
   4 processes), each with every source. Aggregate img/s = sum over models of their epoch-2
   rate (the models run side by side through epoch 2).

All of it takes about 10 minutes; in two calls of a 10-minute limit, on the same tree:

    python scripts/bench_imagenet.py --skip train --out /tmp/a                   # ~4 min
    python scripts/bench_imagenet.py --skip tree,check,profile,decode,contention,alone \
        --out /tmp/b                                                             # ~6.5 min
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from contextlib import contextmanager
from multiprocessing import Pool
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import dsd1, dump, machine, make_store  # noqa: E402

SHAPES = [(375, 500)] * 7 + [(500, 375)] * 2 + [(333, 500)]   # (height, width), ImageNet's mix


def photo(seed: int, h: int, w: int):
    """An image with detail at four scales (6, 24, 96 and 375 cells), so its JPEG is as heavy
    as a photograph's (~108 KB at 500×375, quality 90), not a smooth blob (~36 KB)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    acc = np.zeros((h, w, 3), np.float32)
    for cells, amp in zip((6, 24, 96, 375), (70, 45, 30, 18)):
        small = rng.normal(0, 1, (max(1, cells * h // 375), max(1, cells * w // 375), 3))
        small = Image.fromarray((small * 40 + 128).clip(0, 255).astype(np.uint8))
        acc += (np.asarray(small.resize((w, h), Image.BICUBIC), np.float32) - 128) * amp / 40
    return (acc + rng.uniform(60, 190, 3)).clip(0, 255).astype(np.uint8)


def _write(job) -> int:
    from PIL import Image

    path, seed = job
    h, w = SHAPES[seed % len(SHAPES)]
    buf = io.BytesIO()
    Image.fromarray(photo(seed, h, w)).save(buf, format="JPEG", quality=90)
    Path(path).write_bytes(buf.getvalue())
    return len(buf.getvalue())


def make_tree(root: Path, images: int, val_per_class: int, classes: int = 1000) -> dict:
    jobs, seed = [], 0
    for split, per in (("train", -(-images // classes)), ("val", val_per_class)):
        for c in range(classes):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per):
                jobs.append((str(d / f"{split}_{c}_{i}.JPEG"), seed))
                seed += 1
    t0 = time.time()
    with Pool() as pool:
        sizes = pool.map(_write, jobs, chunksize=64)
    return {"files": len(jobs), "mean_kb": sum(sizes) / len(sizes) / 1e3,
            "min_kb": min(sizes) / 1e3, "max_kb": max(sizes) / 1e3, "write_s": time.time() - t0}


def loader_alone(root: Path, loader: str, batches: int) -> dict:
    """img/s of one data source for training (--batches batches after 3 warm ones) and for one
    evaluation pass, with nothing else on the GPU; the GPU loader's peak memory."""
    import torch

    from dsd.train.imagenet import image_data

    dev = torch.device("cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    data = image_data(dev, loader=loader, workers=os.cpu_count(), batch_size=128,
                      resolution=224, data_dir=root, dtype=torch.bfloat16)
    it = data.train_epoch(0, 0)
    for _ in range(3):
        next(it)
    torch.cuda.synchronize()
    t0 = time.time()
    for _ in range(batches):
        x, _ = next(it)
    torch.cuda.synchronize()
    train_rate = batches * 128 / (time.time() - t0)
    it.close()
    t0, n = time.time(), 0
    for x, y in data.test(batch_size=100):
        n += len(y)
    torch.cuda.synchronize()
    return {"loader": data.loader, "train_img_s": train_rate, "eval_img_s": n / (time.time() - t0),
            "eval_images": n, "peak_mib": (torch.cuda.max_memory_allocated() - base) / 2**20}


def check(root: Path) -> dict:
    """The GPU loader on CUDA against the same pipeline on the CPU (same seed, so the same crops):
    pixel differences from nvjpeg's IDCT against libjpeg's, and of the crop kernels (CUDA)
    against the tensor path (CPU, float32) on the same decoded images."""
    import numpy as np
    import torch

    from dsd.train import resample_kernel as K
    from dsd.train.imagenet import IMAGENET_MEAN, IMAGENET_STD, GpuImageData, _load
    from dsd.train.resample import resized_crops, train_geometry

    kw = {"batch_size": 128, "resolution": 224, "data_dir": root, "subset": 1024}
    g = GpuImageData("cuda", **kw)
    c = GpuImageData("cpu", **kw)
    items = g.train[:64]
    loaded = [_load(p) for p, _ in items]
    ig, ic = g._decode(items, loaded), c._decode(items, loaded)
    dec = max((a.cpu().int() - b.int()).abs().max().item() for a, b in zip(ig, ic))
    dec_mean = float(np.mean([(a.cpu().float() - b.float()).abs().mean().item()
                              for a, b in zip(ig, ic)]))
    geo = train_geometry(np.array([im.shape[1:] for im in ic]), np.random.default_rng(0), 224)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    kern = K.crops([im.cuda() for im in ic], geo, 224, IMAGENET_MEAN, IMAGENET_STD,
                   dtype=torch.float32).cpu()
    rs = (kern * std + mean - resized_crops(ic, geo, 224)).abs()
    xg, yg = next(iter(g.train_epoch(3, 1)))
    xc, yc = next(iter(c.train_epoch(3, 1)))
    d = (xg.float().cpu() - xc) * std
    vg = next(iter(g.test(100)))[0].float().cpu()
    vc = next(iter(c.test(100)))[0]
    dv = (vg - vc) * std
    return {"decode_max_abs": dec, "decode_mean_abs": dec_mean,
            "kernel_vs_cpu_max": rs.max().item(), "kernel_vs_cpu_mean": rs.mean().item(),
            "labels_equal": bool(torch.equal(yg.cpu(), yc)), "train_max_abs": d.abs().max().item(),
            "train_mean_abs": d.abs().mean().item(), "eval_max_abs": dv.abs().max().item(),
            "eval_mean_abs": dv.abs().mean().item()}


def profile(root: Path, batches: int = 20) -> dict:
    """ms per batch of 128 of each stage of the GPU loader, each synchronized (no overlap), and
    the loader's GPU kernel time per batch under the PyTorch profiler (decoding included)."""
    import numpy as np
    import torch

    from dsd.train import resample as R
    from dsd.train import resample_kernel as K
    from dsd.train.imagenet import IMAGENET_MEAN, IMAGENET_STD, GpuImageData, _decode_jpeg, _load

    g = GpuImageData("cuda", batch_size=128, resolution=224, data_dir=root,
                     dtype=torch.bfloat16)
    t = dict.fromkeys(("read", "decode", "crops_kernel", "crops_tensor_ops", "whole_batch"), 0.0)
    rng = np.random.default_rng(0)
    geometry = lambda s: R.train_geometry(s, rng, 224)

    def clock(key, fn):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        r = fn()
        torch.cuda.synchronize()
        t[key] += (time.perf_counter() - t0) * 1e3 / batches
        return r

    chunk = lambda b: g.train[b * 128:(b + 1) * 128]
    for b in range(batches + 2):
        if b == 2:
            t = dict.fromkeys(t, 0.0)
        items = chunk(b)
        loaded = clock("read", lambda: list(g.pool.map(_load, [p for p, _ in items])))
        ims = clock("decode", lambda: _decode_jpeg([t for _, t, _ in loaded], g.device))
        geo = geometry(np.array([im.shape[1:] for im in ims]))
        clock("crops_kernel", lambda: K.crops(ims, geo, 224, IMAGENET_MEAN, IMAGENET_STD))
        clock("crops_tensor_ops", lambda: R.resized_crops(ims, geo, 224))
        clock("whole_batch", lambda: g._batch(items, loaded, geometry))
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile as torch_profile

    n = 10
    batch = [list(g.pool.map(_load, [p for p, _ in chunk(b)])) for b in range(n)]
    torch.cuda.synchronize()
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for b in range(n):
            g._batch(chunk(b), batch[b], geometry)
        torch.cuda.synchronize()
    kinds = {"crop_kernels": 0.0, "copies": 0.0, "other_kernels": 0.0}
    for e in prof.events():   # device events only: each kernel or copy once
        if e.device_type != DeviceType.CUDA:
            continue
        us, name = e.time_range.elapsed_us(), e.name.lower()
        kinds["crop_kernels" if name.startswith(("_rows", "_cols")) else
              "copies" if "memcpy" in name or "memset" in name else "other_kernels"] += us
    t.update({f"gpu_{k}_ms": v / n / 1e3 for k, v in kinds.items()})
    t["gpu_ms_per_batch"] = sum(kinds.values()) / n / 1e3
    return t


def _decode_worker(args) -> float:
    """Decode `batches` batches of 128 of a tree's files with nvjpeg after two warm ones, all
    workers starting together; returns the seconds taken."""
    root, k, batches, barrier = args
    import torch

    from dsd.train.imagenet import _decode_jpeg, _load, samples

    train, _ = samples(Path(root) / "train")
    data = [[_load(p)[1] for p, _ in train[(k * batches + b) * 128 % 12_800:][:128]]
            for b in range(batches)]
    for b in range(2):
        _decode_jpeg(data[b], "cuda")
    torch.cuda.synchronize()
    barrier.wait()
    t0 = time.perf_counter()
    for b in range(batches):
        _decode_jpeg(data[b], "cuda")
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def decode_capacity(root: Path, procs=(1, 2, 4, 8), batches: int = 20) -> dict:
    """img/s of nvjpeg decoding alone (no crops, no training) summed over 1–8 processes that
    decode at once: where the shared JPEG decoder saturates."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    out = {}
    for n in procs:
        with ctx.Manager() as m:
            barrier = m.Barrier(n)
            with ctx.Pool(n) as pool:
                secs = pool.map(_decode_worker, [(str(root), k, batches, barrier)
                                                 for k in range(n)])
        out[str(n)] = n * batches * 128 / max(secs)
    return out


def _gpu_load(stop, ready, ahead: int = 3) -> None:
    """A training-like GPU load: a CUDA graph of 700 bf16 2048² matrix products (~17 ms on an
    H200) replayed on a stream of its own, at most `ahead` replays queued, until `stop`."""
    import collections

    import torch

    a = torch.randn(2048, 2048, device="cuda", dtype=torch.bfloat16)
    c, s = torch.empty_like(a), torch.cuda.Stream()
    with torch.cuda.stream(s):
        torch.matmul(a, a, out=c)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g, stream=s, capture_error_mode="thread_local"):
        for _ in range(700):
            torch.matmul(a, a, out=c)
    ready.set()
    queued = collections.deque()
    with torch.cuda.stream(s):
        while not stop.is_set():
            g.replay()
            queued.append(torch.cuda.Event())
            queued[-1].record(s)
            if len(queued) > ahead:
                queued.popleft().synchronize()
    torch.cuda.synchronize()


def _spin(stop, ready) -> None:
    ready.set()
    while not stop.is_set():
        sum(range(1000))


def _contention_case(args) -> dict:
    """Median ms per batch of 128 of the GPU loader's decode and crops (in this process, on a
    stream of its own) while `load` runs: nothing, a Python thread, a GPU-load thread in this
    process, or a GPU load in another process (already running: `ready` is set)."""
    root, load, stop, ready = args
    import threading

    import numpy as np
    import torch

    from dsd.train import resample as R
    from dsd.train import resample_kernel as K
    from dsd.train.imagenet import IMAGENET_MEAN, IMAGENET_STD, GpuImageData, _decode_jpeg, _load

    g = GpuImageData("cuda", batch_size=128, resolution=224, data_dir=root)
    loaded = [list(g.pool.map(_load, [p for p, _ in g.train[b * 128:(b + 1) * 128]]))
              for b in range(14)]
    rng, stream = np.random.default_rng(0), torch.cuda.Stream(priority=-1)

    def batch(b):
        with torch.cuda.stream(stream):
            t0 = time.perf_counter()
            ims = _decode_jpeg([t for _, t, _ in loaded[b]], g.device)
            t1 = time.perf_counter()
            K.crops(ims, R.train_geometry(np.array([im.shape[1:] for im in ims]), rng, 224),
                    224, IMAGENET_MEAN, IMAGENET_STD)
            stream.synchronize()
            return (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3

    batch(0), batch(1)
    here = threading.Event()
    if load in ("python-thread", "gpu-thread"):
        threading.Thread(target=_spin if load == "python-thread" else _gpu_load,
                         args=(here, threading.Event() if load == "python-thread" else ready),
                         daemon=True).start()
    ready.wait()
    time.sleep(0.3)
    ms = np.median([batch(b) for b in range(2, 14)], axis=0)
    here.set()
    stop.set()
    return {"decode_ms": float(ms[0]), "crops_ms": float(ms[1])}


#: CUDA's hardware work queues per process (default 8): streams beyond them share queues, and
#: work on one can wait behind another's (a likely cause of the in-process slow-down, untested)
CONNECTIONS = "CUDA_DEVICE_MAX_CONNECTIONS"


@contextmanager
def env(name: str, value: str | None):
    """`name`=`value` in os.environ for processes spawned inside (None: unchanged)."""
    old = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if value is not None and old is None:
            del os.environ[name]
        elif value is not None:
            os.environ[name] = old


def contention(root: Path) -> dict:
    """Where the GPU loader's time goes when it shares its process (`_contention_case`), under
    dsd's MPS daemon as in `dsd train`; run in fresh spawned processes. `gpu-thread-32`: the
    GPU-load thread with 32 hardware queues per process instead of 8."""
    import multiprocessing as mp

    from dsd.train.mps import mps

    ctx, out = mp.get_context("spawn"), {}
    cases = [("none", None), ("python-thread", None), ("gpu-thread", None),
             ("gpu-thread-32", "32"), ("gpu-process", None)]
    with mps(None, print), ctx.Manager() as m:
        for case, connections in cases:
            load = case.removesuffix("-32")
            stop, ready = m.Event(), m.Event()
            if load in ("none", "python-thread"):
                ready.set()
            other = None
            if load == "gpu-process":
                other = ctx.Process(target=_gpu_load, args=(stop, ready))
                other.start()
            with env(CONNECTIONS, connections), ctx.Pool(1) as pool:
                out[case] = pool.apply(_contention_case, ((str(root), load, stop, ready),))
            if other:
                other.join()
    return out


def one_model(spec):
    from dsd import complexity

    c = complexity(spec)
    return SimpleNamespace(index=0, spec=spec, params={}, flops=c["flops"],
                           params_count=c["params"], acts=c["acts"])


def train_case(models, root: Path, source: str, per_gpu: int, images: int, epochs: int) -> dict:
    """One `dsd train` of `models` with `source` input: synthetic, a loader name, or
    `gpu-32`: the gpu loader with 32 hardware queues per worker process (CONNECTIONS)."""
    from dsd.train import train

    store = make_store(models, dataset="imagenet")
    loader = source.removesuffix("-32")
    t0 = time.time()
    with env(CONNECTIONS, "32" if source.endswith("-32") else None):
        s = train(store, dataset="synthetic" if source == "synthetic" else None,
                  data_dir=str(root), loader="auto" if source == "synthetic" else loader,
                  per_gpu=per_gpu,
                  overrides={"epochs": epochs, "subset": images, "test_subset": 1000})
    wall = time.time() - t0
    df = store.results(status=None, synthetic=True)
    ep = store.epochs()
    n = images // 128 * 128
    last = ep[ep["epoch"] == epochs]
    rates = (n / last["seconds"]).tolist()
    return {"source": source, "per_gpu": per_gpu, "models": len(models), "wall_s": wall,
            "counts": s.counts, "mps": s.mps, "img_s": sum(rates), "per_model_img_s": rates,
            "top1": df["top1"].tolist(), "status": df["status"].tolist(),
            "errors": [e for e in df["error"].tolist() if e]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", default="/tmp/inet")
    p.add_argument("--images", type=int, default=12_800)
    p.add_argument("--val-per-class", type=int, default=5)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batches", type=int, default=40, help="loader-alone timed batches")
    p.add_argument("--sources", default="synthetic,cpu,gpu,gpu-32,gpu-process")
    p.add_argument("--layouts", default="zoo,sampled", help="zoo: regnetx-400mf alone; "
                   "sampled: 8 sampled 400MF RegNetX models, 8 per GPU")
    p.add_argument("--skip", default="", help="parts to skip, comma-separated: tree, check, "
                   "profile, decode, contention, alone, train")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("bench_imagenet.py needs a CUDA GPU (torch sees none)")
    root, out = Path(a.tree), {"machine": machine()}

    def save():
        if a.out:
            dump(Path(a.out) / "imagenet.json", out)

    parts = [("tree", "tree", lambda: make_tree(root, a.images, a.val_per_class)),
             ("check", "check (uint8 levels)", lambda: check(root)),
             ("profile", "profile (ms per batch of 128)", lambda: profile(root)),
             ("decode", "nvjpeg decode img/s by processes", lambda: decode_capacity(root)),
             ("contention", "gpu loader ms per batch under loads", lambda: contention(root))]
    for key, label, part in parts:
        if key not in a.skip:
            out[key] = part()
            print(label, out[key], flush=True)
            save()
    if "alone" not in a.skip:
        for loader in ("gpu", "gpu-process", "cpu"):
            out[f"alone-{loader}"] = r = loader_alone(root, loader, a.batches)
            print(f"alone {loader}: {r}", flush=True)
            save()
    if "train" not in a.skip:
        from dsd import zoo_spec
        from dsd.sample import sample

        layouts = {"zoo": ([one_model(zoo_spec("regnetx-400mf", "imagenet"))], 1),
                   "sampled": (sample(dsd1("regnetx"), 8, dataset="imagenet",
                                      window="360MF-400MF", seed=0).models, 8)}
        for name in a.layouts.split(","):
            models, per_gpu = layouts[name]
            for source in a.sources.split(","):
                key = f"{name}-{source}"
                out[key] = r = train_case(models, root, source, per_gpu, a.images, a.epochs)
                print(f"{key}: {r['img_s']:.0f} img/s (epoch {a.epochs}), wall {r['wall_s']:.0f}s,"
                      f" {r['counts']}, mps {r['mps']} {r['errors'][:1]}", flush=True)
                save()
        for name in a.layouts.split(","):
            syn = out.get(f"{name}-synthetic", {}).get("img_s")
            for source in ("cpu", "gpu", "gpu-32", "gpu-process"):
                r = out.get(f"{name}-{source}")
                if syn and r:
                    print(f"{name:8s} {source}: {r['img_s']:7.0f} img/s = "
                          f"{r['img_s'] / syn:5.1%} of synthetic {syn:.0f}")
    save()


if __name__ == "__main__":
    main()
