"""ImageNet input pipelines on a GPU (BENCHMARKS.md, issue 17): synthetic input, the `cpu` loader
(PIL in DataLoader workers) and the `gpu` loader (nvjpeg + crop kernels on a producer thread),
each with dsd's CUDA hardware queues per worker process (`engine.hardware_queues`) and, for the
sources ending in `-8`, with CUDA's default 8.

1. Writes an ImageNet-heavy tree: 1,000 classes, --images train JPEGs (500×375, 375×500 or
   500×333, detail at four scales, quality 90: about 108 KB each, ImageNet's typical size) and
   --val-per-class validation images per class.
2. The GPU loader's stages, its GPU kernel time, nvjpeg's decoding rate with 1–8 processes
   decoding at once, and how many MPS clients start with 8–32 hardware queues each. Loaders
   alone (no model): images/s of each pipeline for training and evaluation, and the GPU
   loader's peak memory.
3. Training with `dsd train` (2 epochs, epoch 2 timed per model): the zoo model regnetx-400mf
   alone (--per-gpu 1) and 8 sampled 400MF RegNetX models at the default layout (8 per GPU,
   4 processes; `sampled-3`: in 3), each with every source. Aggregate img/s = sum over models
   of their epoch-2 rate; `workers_lost` counts worker processes that could not start (the
   layout then shrank).

In three calls of a 10-minute limit, back to back on the same tree (keep each call's whole log,
`2>&1 | tee $OUT/log.txt`: a worker that cannot start prints its traceback there):

    python scripts/bench_imagenet.py --skip train --out /tmp/a                   # ~3 min
    python scripts/bench_imagenet.py --skip tree,check,profile,decode,queues,alone \
        --layouts zoo,sampled --out /tmp/b                                       # ~7 min
    python scripts/bench_imagenet.py --skip tree,check,profile,decode,queues,alone \
        --layouts sampled-3 --sources synthetic,gpu --out /tmp/c                 # ~2 min
"""
from __future__ import annotations

import argparse
import io
import json
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


#: CUDA's hardware work queues per process (CUDA's default 8; dsd's worker processes share 64 per
#: GPU, `engine.hardware_queues`): streams beyond them share queues, and work on one waits
#: behind another's
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


def _client(args) -> str:
    """Start a CUDA client (context, streams, an nvjpeg decode), wait until all have tried."""
    barrier = args
    try:
        import torch
        from torchvision.io import decode_jpeg, encode_jpeg

        torch.cuda.set_device(0)
        streams = [torch.cuda.Stream() for _ in range(4)]
        jpeg = encode_jpeg(torch.full((3, 64, 64), 99, dtype=torch.uint8))
        with torch.cuda.stream(streams[0]):
            decode_jpeg([jpeg] * 4, device="cuda")
        torch.cuda.synchronize()
        result = "ok"
    except Exception as e:  # noqa: BLE001 — reported
        result = str(e).splitlines()[0]
    try:
        barrier.wait(timeout=120)
    except Exception:  # noqa: BLE001 — a client that crashed outright: the others go on
        pass
    return result


def queues(cases=((8, 8), (16, 4), (16, 8), (32, 4), (32, 8))) -> dict:
    """Which of n MPS clients with c hardware queues each (CUDA_DEVICE_MAX_CONNECTIONS) start,
    all alive at once under dsd's MPS daemon: the budget `engine.QUEUES_PER_GPU` shares out."""
    import multiprocessing as mp

    from dsd.train.mps import mps

    ctx, out = mp.get_context("spawn"), {}
    with mps(None, print), ctx.Manager() as m:
        for c, n in cases:
            barrier = m.Barrier(n)
            with env(CONNECTIONS, str(c)), ctx.Pool(n) as pool:
                results = pool.map(_client, [barrier] * n)
            out[f"{c}x{n}"] = {"started": results.count("ok"), "of": n,
                               "errors": sorted(set(r for r in results if r != "ok"))}
    return out


def one_model(spec):
    from dsd import complexity

    c = complexity(spec)
    return SimpleNamespace(index=0, spec=spec, params={}, flops=c["flops"],
                           params_count=c["params"], acts=c["acts"])


def train_case(models, root: Path, source: str, per_gpu: int, procs: int | None, images: int,
               epochs: int) -> dict:
    """One `dsd train` of `models` with `source` input: synthetic or a loader name, with dsd's
    32 hardware queues per worker process, or CUDA's default 8 where it ends in `-8`."""
    from dsd.train import train

    store = make_store(models, dataset="imagenet")
    loader = source.removesuffix("-8")
    t0 = time.time()
    with env(CONNECTIONS, "8" if source.endswith("-8") else None):
        s = train(store, dataset="synthetic" if loader == "synthetic" else None,
                  data_dir=str(root), loader="auto" if loader == "synthetic" else loader,
                  per_gpu=per_gpu, procs_per_gpu=procs,
                  overrides={"epochs": epochs, "subset": images, "test_subset": 1000})
    wall = time.time() - t0
    df = store.results(status=None, synthetic=True)
    ep = store.epochs()
    n = images // 128 * 128
    last = ep[ep["epoch"] == epochs]
    rates = (n / last["seconds"]).tolist()
    return {"source": source, "per_gpu": per_gpu, "procs": procs, "models": len(models),
            "wall_s": wall,
            "counts": s.counts, "mps": s.mps, "workers_lost": s.workers_lost,
            "queues": sorted({json.loads(p).get("queues") for p in df["provenance"] if p},
                             key=str),
            "img_s": sum(rates), "per_model_img_s": rates,
            "top1": df["top1"].tolist(), "status": df["status"].tolist(),
            "errors": [e for e in df["error"].tolist() if e]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", default="/tmp/inet")
    p.add_argument("--images", type=int, default=12_800)
    p.add_argument("--val-per-class", type=int, default=5)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batches", type=int, default=40, help="loader-alone timed batches")
    p.add_argument("--sources", default="synthetic,synthetic-8,cpu,gpu,gpu-8")
    p.add_argument("--layouts", default="zoo,sampled", help="zoo: regnetx-400mf alone; "
                   "sampled: 8 sampled 400MF RegNetX models, 8 per GPU (4 processes); "
                   "sampled-3: the same in 3 processes (32 queues each)")
    p.add_argument("--skip", default="", help="parts to skip, comma-separated: tree, check, "
                   "profile, decode, queues, alone, train")
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
             # before any CUDA context in this process: beside one, MPS clients did not start
             ("queues", "MPS clients started by queues x clients", queues),
             ("check", "check (uint8 levels)", lambda: check(root)),
             ("profile", "profile (ms per batch of 128)", lambda: profile(root)),
             ("decode", "nvjpeg decode img/s by processes", lambda: decode_capacity(root))]
    for key, label, part in parts:
        if key not in a.skip:
            out[key] = part()
            print(label, out[key], flush=True)
            save()
    if "alone" not in a.skip:
        for loader in ("gpu", "cpu"):
            out[f"alone-{loader}"] = r = loader_alone(root, loader, a.batches)
            print(f"alone {loader}: {r}", flush=True)
            save()
    if "train" not in a.skip:
        from dsd import zoo_spec
        from dsd.sample import sample

        sampled = sample(dsd1("regnetx"), 8, dataset="imagenet", window="360MF-400MF",
                         seed=0).models
        layouts = {"zoo": ([one_model(zoo_spec("regnetx-400mf", "imagenet"))], 1, None),
                   "sampled": (sampled, 8, None), "sampled-3": (sampled, 8, 3)}
        for name in a.layouts.split(","):
            models, per_gpu, procs = layouts[name]
            for source in a.sources.split(","):
                key = f"{name}-{source}"
                out[key] = r = train_case(models, root, source, per_gpu, procs, a.images,
                                          a.epochs)
                print(f"{key}: {r['img_s']:.0f} img/s (epoch {a.epochs}), wall {r['wall_s']:.0f}s,"
                      f" {r['counts']}, mps {r['mps']}, queues {r['queues']}, workers lost"
                      f" {r['workers_lost']}"
                      f" {r['errors'][:1]}", flush=True)
                save()
        for name in a.layouts.split(","):
            syn = out.get(f"{name}-synthetic", {}).get("img_s")
            for source in ("cpu", "gpu", "gpu-8"):
                r = out.get(f"{name}-{source}")
                if syn and r:
                    print(f"{name:8s} {source}: {r['img_s']:7.0f} img/s = "
                          f"{r['img_s'] / syn:5.1%} of synthetic {syn:.0f}")
    save()


if __name__ == "__main__":
    main()
