"""ImageNet input pipelines on a GPU (BENCHMARKS.md, issue 17): synthetic input, the `cpu` loader
(PIL in DataLoader workers) and the `gpu` loader (nvjpeg + crop kernels in a decode process per
worker process, writing into buffers the trainer shares with it).

1. Writes an ImageNet-heavy tree (unless --tree holds one): 1,000 classes, --images train JPEGs
   (500×375, 375×500 or 500×333, detail at four scales, quality 90: about 108 KB each,
   ImageNet's typical size) and --val-per-class validation images per class.
2. The GPU loader against the CPU pipeline (pixels), its stages and GPU kernel time per batch;
   the loaders alone (no model): images/s for training and evaluation, the GPU loader's peak
   memory in the trainer and its decode process's GPU memory.
3. Training with `dsd train` (--epochs of --images, evaluating on 3.9 % as many images, as
   ImageNet's 50k val to 1.28M train): the zoo model regnetx-400mf alone (--per-gpu 1) and 8
   sampled 400MF RegNetX models at the default layout (8 per GPU, 4 processes), each with
   every source. The rate is that of all models together over the window in which each is past
   its first epoch and none has ended (`window_rate`); the sampled models differ 3× in speed,
   so a few epochs are needed for that window to be long.

In two calls of a 10-minute limit, back to back (the tree in /tmp survives between them only
while the machine stays warm; otherwise the second call writes it again, ~1 min). Keep each
call's whole log, `2>&1 | tee $OUT/log.txt`:

    python scripts/bench_imagenet.py --layouts zoo --out /tmp/a               # ~5 min
    python scripts/bench_imagenet.py --skip check,profile,alone --layouts sampled --out /tmp/b
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import dsd1, dump, machine, make_store  # noqa: E402

VAL_SHARE = 50_000 / 1_281_167   # ImageNet's val images per train image
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
    decoder = getattr(data, "decoder", None)
    return {"loader": data.loader, "train_img_s": train_rate, "eval_img_s": n / (time.time() - t0),
            "eval_images": n, "peak_mib": (torch.cuda.max_memory_allocated() - base) / 2**20,
            "decode_process_mib": gpu_mib(decoder.proc.pid) if decoder else None}


def gpu_mib(pid: int) -> float | None:
    """GPU memory of process `pid` as nvidia-smi reports it (its CUDA context included)."""
    import subprocess

    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
    used = [float(m) for p, m in (line.split(",") for line in out.splitlines() if "," in line)
            if int(p) == pid]
    return used[0] if used else None


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
    g = GpuImageData("cuda", **kw)   # in its decode process
    c = GpuImageData("cpu", **kw)
    items = g.train[:64]
    loaded = [_load(p) for p, _ in items]
    ig = GpuImageData("cuda", process=False, **kw).pipeline._decode(items, loaded)
    ic = c.pipeline._decode(items, loaded)
    dec = max((a.cpu().int() - b.int()).abs().max().item() for a, b in zip(ig, ic))
    dec_mean = float(np.mean([(a.cpu().float() - b.float()).abs().mean().item()
                              for a, b in zip(ig, ic)]))
    geo = train_geometry(np.array([im.shape[1:] for im in ic]), np.random.default_rng(0), 224)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    kern = K.crops([im.cuda() for im in ic], geo, 224, IMAGENET_MEAN, IMAGENET_STD,
                   dtype=torch.float32).cpu()
    rs = (kern * std + mean - resized_crops(ic, geo, 224)).abs()
    xg, yg = (t.clone() for t in next(iter(g.train_epoch(3, 1))))  # a slot: valid until
    xc, yc = next(iter(c.train_epoch(3, 1)))                        # the next request
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
                     dtype=torch.bfloat16, process=False).pipeline
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


def one_model(spec):
    from dsd import complexity

    c = complexity(spec)
    return SimpleNamespace(index=0, spec=spec, params={}, flops=c["flops"],
                           params_count=c["params"], acts=c["acts"])


def train_case(models, root: Path, source: str, per_gpu: int, images: int, epochs: int) -> dict:
    """One `dsd train` of `models` with `source` input (synthetic or a loader name), timed two
    ways: `img_s`, the sum of the models' last-epoch rates (the earlier runs' metric, which
    counts a model's epoch at the pace it ran once its neighbours had finished), and
    `window_img_s`, images trained by all models together while every one of them was past its
    first epoch and none had finished, from the progress records' arrival times."""
    from dsd.train import train
    from dsd.train.coordinator import Coordinator

    store = make_store(models, dataset="imagenet")
    log, handle = [], Coordinator.handle

    def logged(self, kind, rid, payload):
        log.append((time.monotonic(), kind, rid, payload))
        return handle(self, kind, rid, payload)

    t0 = time.time()
    Coordinator.handle = logged
    try:
        s = train(store, dataset="synthetic" if source == "synthetic" else None,
                  data_dir=str(root), loader="auto" if source == "synthetic" else source,
                  per_gpu=per_gpu, overrides={"epochs": epochs, "subset": images,
                                              "test_subset": round(images * VAL_SHARE)})
    finally:
        Coordinator.handle = handle
    wall = time.time() - t0
    df = store.results(status=None, synthetic=True)
    ep = store.epochs()
    last = ep[ep["epoch"] == epochs]
    n = images // 128 * 128
    rates = (n / last["seconds"]).tolist()
    return {"source": source, "per_gpu": per_gpu, "models": len(models), "epochs": epochs,
            "wall_s": wall, "counts": s.counts, "mps": s.mps, "workers_lost": s.workers_lost,
            "queues": sorted({json.loads(p).get("queues") for p in df["provenance"] if p},
                             key=str),
            **window_rate(log), "img_s": sum(rates), "per_model_img_s": rates,
            "eval_s": ep["eval_seconds"].tolist(),
            "top1": df["top1"].tolist(), "status": df["status"].tolist(),
            "errors": [e for e in df["error"].tolist() if e]}


def window_rate(log: list) -> dict:
    """Aggregate img/s over the window in which every model is past its first epoch and none has
    ended: each model's images are its progress records summed, interpolated linearly in time."""
    import numpy as np

    curves, first, ended = {}, {}, {}
    for t, kind, rid, payload in log:
        if kind == "images":
            ts, ns = curves.setdefault(rid, ([], []))
            ts.append(t)
            ns.append((ns[-1] if ns else 0) + payload["n"])
        elif kind == "epoch" and payload["epoch"] == 1:
            first[rid] = t
        elif kind == "final":
            ended[rid] = t
    if not first or set(first) != set(ended):
        return {"window_img_s": None, "window_s": 0.0}
    t0, t1 = max(first.values()), min(ended.values())
    if t1 <= t0:
        return {"window_img_s": None, "window_s": 0.0}
    images = sum(np.interp(t1, ts, ns) - np.interp(t0, ts, ns) for ts, ns in curves.values())
    return {"window_img_s": float(images / (t1 - t0)), "window_s": t1 - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", default="/tmp/inet")
    p.add_argument("--images", type=int, default=12_800)
    p.add_argument("--val-per-class", type=int, default=5)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batches", type=int, default=40, help="loader-alone timed batches")
    p.add_argument("--sources", default="synthetic,cpu,gpu")
    p.add_argument("--layouts", default="zoo,sampled", help="zoo: regnetx-400mf alone; "
                   "sampled: 8 sampled 400MF RegNetX models, 8 per GPU (4 processes)")
    p.add_argument("--skip", default="", help="parts to skip, comma-separated: tree, check, "
                   "profile, alone, train (tree: also skipped where --tree holds one)")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("bench_imagenet.py needs a CUDA GPU (torch sees none)")
    root, out = Path(a.tree), {"machine": machine()}

    def save():
        if a.out:
            dump(Path(a.out) / "imagenet.json", out)

    skip = set(a.skip.split(",")) | ({"tree"} if (root / "val").is_dir() else set())
    parts = [("tree", "tree", lambda: make_tree(root, a.images, a.val_per_class)),
             ("check", "check (uint8 levels)", lambda: check(root)),
             ("profile", "profile (ms per batch of 128)", lambda: profile(root))]
    for key, label, part in parts:
        if key not in skip:
            out[key] = part()
            print(label, out[key], flush=True)
            save()
    if "alone" not in skip:
        for loader in ("gpu", "cpu"):
            out[f"alone-{loader}"] = r = loader_alone(root, loader, a.batches)
            print(f"alone {loader}: {r}", flush=True)
            save()
    if "train" in skip:
        return
    from dsd import zoo_spec
    from dsd.sample import sample

    sampled = sample(dsd1("regnetx"), 8, dataset="imagenet", window="360MF-400MF",
                     seed=0).models
    layouts = {"zoo": ([one_model(zoo_spec("regnetx-400mf", "imagenet"))], 1),
               "sampled": (sampled, 8)}
    for name in a.layouts.split(","):
        models, per_gpu = layouts[name]
        for source in a.sources.split(","):
            key = f"{name}-{source}"
            out[key] = r = train_case(models, root, source, per_gpu, a.images, a.epochs)
            rate = r["window_img_s"] or float("nan")
            print(f"{key}: {rate:.0f} img/s over {r['window_s']:.1f} s in which all train "
                  f"(sum of last-epoch rates {r['img_s']:.0f}), wall {r['wall_s']:.0f}s, "
                  f"{r['counts']}, mps {r['mps']}, queues {r['queues']}, workers lost "
                  f"{r['workers_lost']} {r['errors'][:1]}", flush=True)
            save()
    for name in a.layouts.split(","):
        syn = out.get(f"{name}-synthetic", {})
        for source in ("cpu", "gpu"):
            r = out.get(f"{name}-{source}")
            if syn.get("window_img_s") and r and r["window_img_s"]:
                print(f"{name:8s} {source}: {r['window_img_s']:7.0f} img/s = "
                      f"{r['window_img_s'] / syn['window_img_s']:5.1%} of synthetic "
                      f"{syn['window_img_s']:.0f} (last-epoch sums: "
                      f"{r['img_s'] / syn['img_s']:5.1%})")
        if out.get(f"{name}-gpu", {}).get("window_img_s") and \
                out.get(f"{name}-cpu", {}).get("window_img_s"):
            print(f"{name:8s} gpu / cpu: "
                  f"{out[name + '-gpu']['window_img_s'] / out[name + '-cpu']['window_img_s']:.2f}x")
    save()


if __name__ == "__main__":
    main()
