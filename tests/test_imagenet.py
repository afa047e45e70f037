"""ImageNet loaders on CPU: the GPU pipeline's crop distribution and pixels against torchvision's,
real odd files (grayscale, CMYK, PNG named .JPEG, truncated), epoch order, end-to-end training.

The `gpu` loader runs on a CPU device with torchvision's CPU decoder: the same geometry, batching
and resampling code as on CUDA, only the decoder differs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from test_train import add_sweep

from dsd import Store
from dsd.errors import DsdError
from dsd.train import train
from dsd.train.imagenet import CpuImageData, GpuImageData, batchable_jpeg, epoch_order
from dsd.train.resample import (WASTE, eval_geometry, groups, resized_crops, rrc_params,
                                train_geometry)


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    """Detail at several scales (not a smooth blob), uint8 HWC."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    a = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC)).astype(np.int16)
    return np.clip(a + rng.integers(-50, 50, (h, w, 3)), 0, 255).astype(np.uint8)


def _crop_ref(arr: np.ndarray, i, j, h, w, flip: bool, size=224):
    """torchvision's RandomResizedCrop pixels for fixed parameters: PIL and tensor paths."""
    import torchvision.transforms.functional as TF

    pil = TF.resized_crop(Image.fromarray(arr), i, j, h, w, [size, size])
    pil = torch.from_numpy(np.array(pil)).permute(2, 0, 1).float()
    ten = TF.resized_crop(torch.from_numpy(arr).permute(2, 0, 1).float(), i, j, h, w,
                          [size, size], antialias=True)
    return (pil.flip(-1), ten.flip(-1)) if flip else (pil, ten)


# ---- crop parameters: torchvision's distribution ----------------------------------------
@pytest.mark.parametrize("hw", [(375, 500), (500, 333), (100, 600)])
def test_crop_parameters_follow_torchvision(hw):
    """20,000 draws of ours against 20,000 of RandomResizedCrop.get_params (KS on h, w, top,
    left and the fallback rate); the last size forces the central-crop fallback often."""
    import torchvision.transforms as T

    n = 20_000
    torch.manual_seed(0)
    img = torch.empty(3, *hw)
    ref = np.array([T.RandomResizedCrop.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3))
                    for _ in range(n)])
    top, left, h, w = rrc_params(np.tile(hw, (n, 1)), np.random.default_rng(1))
    ours = np.stack([top, left, h, w], axis=1)
    for k, name in enumerate(("top", "left", "h", "w")):
        p = stats.ks_2samp(ours[:, k], ref[:, k]).pvalue
        assert p > 1e-3, (name, p)
    full = lambda a: np.mean((a[:, 2] == hw[0]) | (a[:, 3] == hw[1]))
    assert abs(full(ours) - full(ref)) < 0.02
    assert (ours[:, 0] + ours[:, 2] <= hw[0]).all() and (ours[:, 1] + ours[:, 3] <= hw[1]).all()


def test_crop_fallback_is_torchvisions_central_crop():
    # a 10×1000 strip: no try fits (h ≥ 10·√(0.08·…) fails rarely): every fallback is central
    top, left, h, w = rrc_params(np.array([[10, 1000]] * 500), np.random.default_rng(0))
    fb = w == 13   # round(10 · 4/3)
    assert fb.mean() > 0.5
    assert (h[fb] == 10).all() and (top[fb] == 0).all() and (left[fb] == (1000 - 13) // 2).all()


# ---- pixels: batched resampling against torchvision --------------------------------------
def test_resized_crops_equal_torchvision_pixels():
    """Fixed crops of differently sized images in one batch: equal to torchvision's tensor path
    (antialias=True) to float rounding, and to its PIL path within PIL's uint8 rounding."""
    shapes = [(375, 500), (500, 375), (333, 500), (90, 120), (640, 480), (375, 500)]
    arrs = [_photo(h, w, i) for i, (h, w) in enumerate(shapes)]
    images = [torch.from_numpy(a).permute(2, 0, 1).contiguous() for a in arrs]
    geo = train_geometry(np.array(shapes), np.random.default_rng(3), 224)
    out = resized_crops(images, geo, 224)
    assert out.shape == (6, 3, 224, 224)
    flips = set()
    for k, a in enumerate(arrs):
        box = int(geo.top[k]), int(geo.left[k]), int(geo.height[k]), int(geo.width[k])
        pil, ten = _crop_ref(a, *box, bool(geo.flip[k]))
        flips.add(bool(geo.flip[k]))
        assert (out[k] - ten).abs().max() < 0.01, k
        assert (out[k] - pil).abs().max() <= 1.01 and (out[k] - pil).abs().mean() < 0.4, k
    assert flips == {True, False}


def test_eval_resize_and_center_crop_equal_torchvision():
    import torchvision.transforms as T

    shapes = [(375, 500), (500, 333), (256, 256), (300, 1000)]
    arrs = [_photo(h, w, 10 + i) for i, (h, w) in enumerate(shapes)]
    out = resized_crops([torch.from_numpy(a).permute(2, 0, 1).contiguous() for a in arrs],
                        eval_geometry(np.array(shapes), 224, 256), 224)
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.PILToTensor()])
    for k, a in enumerate(arrs):
        ref = tf(Image.fromarray(a)).float()
        assert (out[k] - ref).abs().max() <= 1.01 and (out[k] - ref).abs().mean() < 0.4, k


_KERNEL_CHECK = """
import numpy as np, torch
from dsd.train import resample_kernel as K
from dsd.train.resample import eval_geometry, resized_crops, train_geometry
rng = np.random.default_rng(0)
shapes = [(90, 120), (37, 50), (200, 150), (20, 30), (64, 64)]   # down- and upscaled windows
ims = [torch.from_numpy(rng.integers(0, 256, (3, h, w), dtype=np.uint8)) for h, w in shapes]
sizes = np.array(shapes)
mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
M, S = torch.tensor(mean).view(1, 3, 1, 1) * 255, torch.tensor(std).view(1, 3, 1, 1) * 255
for geo in (train_geometry(sizes, rng, 32), eval_geometry(sizes, 32, 36)):
    ref = (resized_crops(ims, geo, 32) - M) / S
    for fmt in (torch.contiguous_format, torch.channels_last):
        got = K.crops(ims, geo, 32, mean, std, dtype=torch.float32, memory_format=fmt)
        assert got.is_contiguous(memory_format=fmt)
        print(float(((got - ref) * S).abs().max()), int(geo.flip.sum()))
"""


def test_triton_kernel_equals_tensor_path():
    """The CUDA crop kernels, run by Triton's interpreter on the CPU, give the tensor path's
    normalized pixels for train crops (flips included, windows down- and upscaled) and eval."""
    import os
    import subprocess
    import sys

    pytest.importorskip("triton")
    out = subprocess.run([sys.executable, "-c", _KERNEL_CHECK], capture_output=True, text=True,
                         env={**os.environ, "TRITON_INTERPRET": "1"}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split() for line in out.stdout.split("\n") if line]
    assert len(rows) == 4
    assert all(float(d) < 1e-3 for d, _ in rows), rows   # uint8 levels
    assert int(rows[0][1]) > 0   # the train batch has flipped crops


def test_groups_cover_the_batch_with_bounded_padding():
    rng = np.random.default_rng(0)
    sizes = np.stack([rng.integers(60, 900, 128), rng.integers(60, 900, 128)], axis=1)
    parts = groups(sizes)
    assert sorted(np.concatenate(parts).tolist()) == list(range(128))
    for g in parts:
        canvas = sizes[g, 0].max() * sizes[g, 1].max() * len(g)
        assert len(g) == 1 or canvas <= WASTE * (sizes[g, 0] * sizes[g, 1]).sum()
    assert len(groups(np.array([[375, 500]] * 100 + [[500, 375]] * 28))) == 1  # ≤ 1.35× waste
    assert len(groups(np.array([[375, 500]] * 64 + [[1000, 1500]] * 64))) == 2


# ---- real files ---------------------------------------------------------------------------
def _save(path: Path, arr: np.ndarray, kind: str = "rgb") -> None:
    im = Image.fromarray(arr)
    if kind == "gray":
        im.convert("L").save(path, format="JPEG", quality=90)
    elif kind == "cmyk":
        im.convert("CMYK").save(path, format="JPEG", quality=90)
    elif kind == "png":
        im.save(path, format="PNG")   # a PNG under a .JPEG name, as ImageNet has
    elif kind == "progressive":
        im.save(path, format="JPEG", quality=90, progressive=True)
    else:
        im.save(path, format="JPEG", quality=90)


def _tree(root: Path, classes=3, train=12, val=4, odd=True) -> None:
    """Real JPEG files whose class is their dominant colour; the first images of class 0 are a
    grayscale JPEG, a CMYK JPEG, a PNG named .JPEG and a progressive JPEG."""
    rng = np.random.default_rng(0)
    kinds = ["gray", "cmyk", "png", "progressive"] if odd else []
    for split, n in (("train", train), ("val", val)):
        for c in range(classes):
            (root / split / f"n{c:04d}").mkdir(parents=True)
            for i in range(n):
                h, w = (60, 80) if i % 2 else (80, 56)
                img = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)
                img[..., c] += 160
                kind = kinds[i] if c == 0 and i < len(kinds) else "rgb"
                _save(root / split / f"n{c:04d}" / f"{i}.JPEG", img, kind)


def test_batchable_jpeg_sends_odd_files_to_the_host(tmp_path):
    arr = _photo(40, 50, 0)
    expect = {"rgb": True, "progressive": True, "gray": False, "cmyk": False, "png": False}
    for kind, ok in expect.items():
        _save(tmp_path / f"{kind}.JPEG", arr, kind)
        assert batchable_jpeg((tmp_path / f"{kind}.JPEG").read_bytes()) is ok, kind
    data = (tmp_path / "rgb.JPEG").read_bytes()
    assert not batchable_jpeg(data[: len(data) // 2])   # truncated: no end marker
    assert not batchable_jpeg(b"")


def test_gpu_pipeline_decodes_odd_files_in_whole_batches(tmp_path):
    _tree(tmp_path)
    data = GpuImageData("cpu", batch_size=12, resolution=64, data_dir=tmp_path)
    batches = list(data.train_epoch(seed=0, epoch=0))
    assert len(batches) == 3 and data.loader == "gpu"
    for x, y in batches:
        assert x.shape == (12, 3, 64, 64) and y.shape == (12,) and torch.isfinite(x).all()
    test = list(data.test(batch_size=5))
    assert [len(y) for _, y in test] == [5, 5, 2]   # evaluation keeps the last partial batch
    # the CMYK file decodes to the same colours as PIL's RGB conversion of it
    path = str(tmp_path / "train" / "n0000" / "1.JPEG")
    img = data.pipeline._host_decode(path, Path(path).read_bytes())
    ref = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(img.permute(1, 2, 0).numpy(), ref)


def test_truncated_file_names_itself(tmp_path):
    _tree(tmp_path, odd=False)
    bad = tmp_path / "train" / "n0001" / "3.JPEG"
    bad.write_bytes(bad.read_bytes()[:200])
    for cls, kw in ((GpuImageData, {}), (CpuImageData, {"workers": 0})):
        data = cls("cpu", batch_size=36, resolution=32, data_dir=tmp_path, **kw)
        with pytest.raises(DsdError, match=r"cannot decode image .*n0001/3\.JPEG"):
            list(data.train_epoch(seed=0, epoch=0))


def test_both_loaders_read_the_same_epoch_order(tmp_path):
    _tree(tmp_path, odd=False)
    gpu = GpuImageData("cpu", batch_size=6, resolution=32, data_dir=tmp_path)
    cpu = CpuImageData("cpu", batch_size=6, resolution=32, data_dir=tmp_path, workers=0)
    for epoch in (0, 1):
        labels = [torch.cat([y for _, y in d.train_epoch(7, epoch)]).tolist()
                  for d in (gpu, cpu)]
        assert labels[0] == labels[1]
    assert epoch_order(36, 7, 0) == epoch_order(36, 7, 0) != epoch_order(36, 7, 1)
    # the same (seed, epoch) gives the same pixels: a resumed epoch sees the same batches
    a, b = (next(iter(gpu.train_epoch(7, 1)))[0] for _ in range(2))
    assert torch.equal(a, b)


@pytest.mark.parametrize("loader", ["gpu", "cpu"])
def test_train_imagenet_end_to_end(tmp_path, loader):
    """`dsd train` on a tiny tree with odd files; the loader that ran is in the training line,
    the result's provenance and `dsd status`."""
    import io

    from rich.console import Console
    from typer.testing import CliRunner

    import dsd.cli.train  # noqa: F401  (registers the commands)
    from dsd.cli import app

    _tree(tmp_path / "data", train=16)
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=1, dataset="imagenet")
    out = io.StringIO()
    summary = train(store, overrides={"epochs": 2, "batch_size": 8}, data_dir=tmp_path / "data",
                    loader=loader, console=Console(file=out, width=120))
    df = store.results(status=None)
    assert summary.counts == {"done": 1}, df["error"].tolist()
    assert df["top1"].iloc[0] < 100 * 2 / 3   # below chance with 3 classes
    assert f"{loader} loader" in out.getvalue()
    assert store.loader_counts() == {"tiny": {loader: 1}}
    r = CliRunner().invoke(app, ["status", "--store", str(tmp_path / "s.sqlite")])
    assert r.exit_code == 0 and f"tiny: 1 with the {loader} loader" in r.output, r.output


def test_benchmark_tree_is_imagenet_heavy(tmp_path):
    """bench_imagenet.py's generator: ImageNet-sized, ImageNet-heavy JPEGs (~100-130 KB)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from bench_imagenet import make_tree

    info = make_tree(tmp_path, images=20, val_per_class=1, classes=2)
    assert info["files"] == 22 and 90 <= info["mean_kb"] <= 130
    sizes = {Image.open(p).size for p in tmp_path.rglob("*.JPEG")}
    assert (500, 375) in sizes and sizes <= {(500, 375), (375, 500), (500, 333)}


def test_decode_process_serves_the_inline_pipelines_batches(tmp_path):
    """The `gpu` loader's decode process (run here on the CPU, buffers in shared memory) gives
    the inline pipeline's batches: two channels at once, a stopped epoch, a reused ring, a
    truncated file named in the trainer, and a process that died replaced by the next request."""
    _tree(tmp_path, odd=False)
    kw = {"batch_size": 6, "resolution": 32, "data_dir": tmp_path}
    inline = GpuImageData("cpu", **kw)
    proc = GpuImageData("cpu", process=True, **kw)
    assert proc.decoder is not None and proc.decoder.proc.is_alive()
    ref = [(x.clone(), y.clone()) for x, y in inline.train_epoch(3, 1)]
    # two models of one worker read their epochs interleaved, each from its own ring
    a, b = proc.train_epoch(3, 1), proc.train_epoch(3, 2)
    got, other = [], []
    for (xa, ya), (xb, yb) in zip(a, b):
        got.append((xa.clone(), ya.clone()))   # a slot: valid until the next batch
        other.append(yb.clone())
    assert len(got) == len(ref) == 6
    for (x, y), (rx, ry) in zip(got, ref):
        assert torch.equal(x, rx) and torch.equal(y, ry)
    assert torch.equal(torch.cat(other), torch.cat([y for _, y in inline.train_epoch(3, 2)]))
    # an epoch stopped after one batch, then evaluation (a partial last batch) on a ring again
    it = iter(proc.train_epoch(3, 1))
    next(it)
    it.close()
    assert [len(y) for _, y in proc.test(batch_size=5)] == [5, 5, 2]
    vx = torch.cat([x.clone() for x, _ in proc.test(batch_size=5)])
    assert torch.equal(vx, torch.cat([x for x, _ in inline.test(batch_size=5)]))
    bad = tmp_path / "train" / "n0001" / "3.JPEG"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(DsdError, match=r"cannot decode image .*n0001/3\.JPEG"):
        list(proc.train_epoch(3, 1))
    # the process dies while a model is mid-epoch: that model fails, the next one gets a new
    # process, and the old epoch's iterator fails too instead of reading the new one's batches
    old = iter(proc.train_epoch(3, 1))
    next(old)
    proc.decoder.proc.kill()
    proc.decoder.proc.join()
    with pytest.raises(DsdError, match="died"):
        for _ in old:   # the batches written before it died, at most three, then the error
            pass
    old = iter(proc.train_epoch(3, 1))
    next(old)
    proc.decoder.proc.kill()
    proc.decoder.proc.join()
    new = iter(proc.test(batch_size=5))
    assert len(next(new)[1]) == 5   # a new process
    with pytest.raises(DsdError, match="died under another model"):
        next(old)
    assert [len(y) for _, y in new] == [5, 2]
    proc.close()
    with pytest.raises(DsdError, match="closed"):
        next(iter(proc.test()))
