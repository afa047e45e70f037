"""ImageNet-style trees (train/<class>/*, val/<class>/*): two loaders with the same semantics.

- `gpu` (default on CUDA): reader threads only read file bytes; the training device decodes a
  whole batch with nvjpeg (torchvision) and crops, resizes, flips and normalizes it with two
  Triton kernels (`resample_kernel`; the batched tensor ops of `resample` where Triton is
  missing and on the CPU). On CUDA this pipeline runs in a decode process of its own
  (`decoder.py`), a few batches ahead of training, so decoding overlaps training.
  Files nvjpeg cannot batch (grayscale, CMYK, PNG under a .JPEG name, arithmetic coding, no end
  marker) are decoded by PIL on the host and join the same batch.
- `cpu`: torchvision's ImageFolder transforms (PIL) in DataLoader worker processes.

Both read the same epoch order for the same (seed, epoch), so a resumed run sees the same batches,
and both name the file when one cannot be decoded (the model fails, not the sweep).
"""
from __future__ import annotations

import io
import multiprocessing as mp
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..datasets import get_dataset
from ..datasets.imagenet import MEAN as IMAGENET_MEAN, STD as IMAGENET_STD
from ..errors import DsdError
from ..store import IMAGE_LOADERS
from . import resample_kernel
from .resample import eval_geometry, resized_crops, to_device, train_geometry

READ_THREADS = 6    # threads reading file bytes per data source
LOADERS = ("auto", *IMAGE_LOADERS)
Batch = tuple[torch.Tensor, torch.Tensor]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The sample order of an epoch; depends only on (seed, epoch): resumed runs see the same."""
    g = torch.Generator()
    g.manual_seed(seed * 1009 + epoch)
    return torch.randperm(n, generator=g).tolist()


def spread(n_all: int, n: int | None) -> list[int]:
    """n evenly spaced indices of n_all: a tree is sorted by class, so its first n would not do."""
    if n is None or n >= n_all:
        return list(range(n_all))
    return np.linspace(0, n_all - 1, n).round().astype(int).tolist()


def samples(split_dir) -> tuple[list[tuple[str, int]], int]:
    """(path, class index) of every image under split_dir/<class>/, and the number of classes."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    classes, to_idx = find_classes(str(split_dir))
    return make_dataset(str(split_dir), to_idx, extensions=IMG_EXTENSIONS), len(classes)


def pil_rgb(path: str, data: bytes | None = None):
    """The image as RGB through PIL (grayscale, CMYK, PNG included); a clear error naming the
    file when it is truncated or not an image."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as im:
            return im.convert("RGB")
    except Exception as e:  # noqa: BLE001 — PIL raises OSError, SyntaxError, ValueError…
        raise DsdError(f"cannot decode image {path}: {type(e).__name__}: {e}") from None


def batchable_jpeg(data: bytes) -> bool:
    """True for a complete 3-component Huffman JPEG (baseline, extended or progressive) in
    YCbCr: what nvjpeg decodes in a batch. Everything else goes to PIL."""
    if len(data) < 12 or data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
        return False
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return False
        m = data[i + 1]
        if m == 0xFF:
            i += 1
            continue
        size = int.from_bytes(data[i + 2:i + 4], "big")
        if m == 0xEE and data[i + 4:i + 9] == b"Adobe" and i + 15 < len(data):
            if data[i + 15] == 0:   # Adobe transform 0: RGB or CMYK samples, not YCbCr
                return False
        elif m in (0xC0, 0xC1, 0xC2):
            return i + 9 < len(data) and data[i + 9] == 3
        elif 0xC3 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC) or m == 0xDA:
            return False        # lossless, arithmetic or hierarchical frames; scan before frame
        i += 2 + size
    return False


def _load(path: str) -> tuple[bytes, torch.Tensor, bool]:
    """A file's bytes, the same as a uint8 tensor, and whether nvjpeg can take it in a batch
    (done in the reader threads, off the producer's critical path)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DsdError(f"cannot read image {path}: {e.strerror or e}") from None
    with warnings.catch_warnings():   # bytes are read-only; the decoders only read them
        warnings.simplefilter("ignore")
        t = torch.frombuffer(data, dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)
    return data, t, batchable_jpeg(data)


def _decode_jpeg(datas: list[torch.Tensor], device) -> list[torch.Tensor]:
    """torchvision's decoder as RGB: nvjpeg on a CUDA device (one batched call), else libjpeg."""
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():  # torchvision >= 0.29 marks its decoders deprecated
        warnings.simplefilter("ignore")
        return decode_jpeg(datas, mode=ImageReadMode.RGB, device=device)


def nvjpeg_available(device: torch.device) -> bool:
    """Whether torchvision can decode JPEGs on `device` (a tiny image, decoded once)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 60)).save(buf, format="JPEG")
    try:
        out = _decode_jpeg([torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)],
                           device)
        return out[0].shape == (3, 16, 16)
    except Exception:  # noqa: BLE001 — not compiled with nvjpeg, no hardware, no library…
        return False


class Pipeline:
    """Batches of an ImageNet-style list decoded and augmented on `device`, in order (see
    module doc): what the decode process runs on CUDA, and the `gpu` loader itself on the CPU,
    where torchvision's CPU decoder stands in for nvjpeg (that is how the tests check it)."""

    def __init__(self, device, train: list, val: list, *, batch_size: int, resolution: int,
                 dtype=torch.float32, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.train, self.val = train, val
        self.norm = (tuple(mean), tuple(std))   # the dataset's, of [0, 1] pixels
        self.device, self.batch_size, self.dtype = torch.device(device), batch_size, dtype
        self.size, self.resize = resolution, round(resolution * 256 / 224)
        self.cuda = self.device.type == "cuda"
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1) * 255
        self.pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="dsd-read")
        self.decode_stream = torch.cuda.Stream(self.device) if self.cuda else None

    # -- one batch: bytes → decoded images → crops → normalized tensor ------------------------
    def _decode(self, items, loaded) -> list[torch.Tensor]:
        """(3, H, W) uint8 images on the device, in order; nvjpeg for the batchable JPEGs.

        nvjpeg decodes on a stream of its own; its outputs are allocated on `decode_stream`,
        where nothing else runs, and marked as used by the current stream, so the allocator
        never hands nvjpeg memory that queued work still reads."""
        out: list[torch.Tensor | None] = [None] * len(loaded)
        fast = [i for i, (_, _, ok) in enumerate(loaded) if self.cuda and ok]
        if fast:
            current = torch.cuda.current_stream(self.device)
            with torch.cuda.stream(self.decode_stream):
                tensors = [loaded[i][1] for i in fast]
                try:
                    decoded = _decode_jpeg(tensors, self.device)
                except RuntimeError:  # one bad file fails the whole call: find it alone
                    decoded = []
                    for t in tensors:
                        try:
                            decoded.append(_decode_jpeg([t], self.device)[0])
                        except RuntimeError:
                            decoded.append(None)
            current.wait_stream(self.decode_stream)
            for i, im in zip(fast, decoded):
                if im is not None:
                    im.record_stream(current)
                out[i] = im
        for i, im in enumerate(out):
            if im is None:
                out[i] = self._host_decode(items[i][0], loaded[i][0])
        return out

    def _host_decode(self, path: str, data: bytes) -> torch.Tensor:
        if not self.cuda and batchable_jpeg(data):
            try:
                return _decode_jpeg([torch.frombuffer(bytearray(data), dtype=torch.uint8)],
                                    self.device)[0]
            except RuntimeError:
                pass  # PIL below names the file if it cannot decode it either
        arr = np.asarray(pil_rgb(path, data))
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous().to(self.device)

    def _batch(self, items, loaded, geometry) -> Batch:
        images = self._decode(items, loaded)
        sizes = np.array([im.shape[1:] for im in images], dtype=np.int64)
        geo = geometry(sizes)
        y = to_device(np.array([c for _, c in items], dtype=np.int64), self.device)
        if resample_kernel.available(self.device):
            return resample_kernel.crops(images, geo, self.size, *self.norm, self.dtype), y
        x = resized_crops(images, geo, self.size)
        x = x.sub_(self.mean).div_(self.std).to(self.dtype)
        layout = torch.channels_last if self.cuda else torch.contiguous_format  # CPU: see _to
        return x.contiguous(memory_format=layout), y

    # -- a request: ("train", seed, epoch) or ("test", batch_size) -----------------------------
    def batches(self, kind: str, *args) -> Iterator[Batch]:
        """The batches of a request in order; file bytes are read a batch ahead by the reader
        threads. Training: the epoch order and crops depend only on (seed, epoch)."""
        if kind == "train":
            seed, epoch = args
            rng = np.random.default_rng([seed, epoch])
            items = [self.train[i] for i in epoch_order(len(self.train), seed, epoch)]
            size, stop = self.batch_size, len(items) - len(items) % self.batch_size
            geometry = lambda sizes: train_geometry(sizes, rng, self.size)
        else:
            (size,), items = args, self.val
            stop = len(items)
            geometry = lambda sizes: eval_geometry(sizes, self.size, self.resize)
        chunks = [items[i:i + size] for i in range(0, stop, size)]
        paths = lambda c: [p for p, _ in c]
        ahead = self.pool.map(_load, paths(chunks[0])) if chunks else None
        for k, chunk in enumerate(chunks):
            loaded = list(ahead)
            if k + 1 < len(chunks):
                ahead = self.pool.map(_load, paths(chunks[k + 1]))
            yield self._batch(chunk, loaded, geometry)


class GpuImageData:
    """The `gpu` loader: an ImageNet-style tree through `Pipeline`, which on CUDA runs in a
    decode process of its own (`decoder.DecodeProcess`), a few batches ahead of training; on
    the CPU (and with process=False) inline."""

    synthetic = False
    loader = "gpu"

    def __init__(self, device, *, batch_size: int, resolution: int, data_dir=None, subset=None,
                 test_subset=None, dtype=torch.float32, process: bool | None = None, root=None,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        root = _tree(root, data_dir)
        train, self.num_classes = samples(root / "train")
        val, _ = samples(root / "val")
        self.train = [train[i] for i in spread(len(train), subset)]
        self.val = [val[i] for i in spread(len(val), test_subset)]
        self.device, self.batch_size = torch.device(device), batch_size
        self.steps_per_epoch = len(self.train) // batch_size
        if self.steps_per_epoch == 0:
            raise DsdError(f"batch size {batch_size} exceeds the {len(self.train)} training "
                           f"images in {root / 'train'}")
        kw = {"batch_size": batch_size, "resolution": resolution, "dtype": dtype,
              "mean": tuple(mean), "std": tuple(std)}
        if self.device.type == "cuda" if process is None else process:
            from .decoder import DecodeProcess

            self.decoder, self.pipeline = DecodeProcess(self.device, self.train, self.val,
                                                        **kw), None
        else:
            self.decoder, self.pipeline = None, Pipeline(self.device, self.train, self.val,
                                                         **kw)

    def _batches(self, request: tuple, capacity: int) -> Iterator[Batch]:
        if self.decoder is not None:
            return self.decoder.batches(request, capacity)
        return self.pipeline.batches(*request)

    def train_epoch(self, seed: int, epoch: int) -> Iterator[Batch]:
        """The epoch's batches; with a decode process each is valid until the next is asked for
        (it lives in a ring of shared buffers), as a CUDA graph's static input would be."""
        return self._batches(("train", seed, epoch), self.batch_size)

    def test(self, batch_size: int = 100) -> Iterator[Batch]:
        return self._batches(("test", batch_size), batch_size)

    def close(self) -> None:
        """Stop the decode process (if any); the data source cannot be iterated afterwards."""
        if self.decoder is not None:
            self.decoder.close()


class CpuImageData:
    """The same tree through torchvision's ImageFolder transforms (PIL) in DataLoader workers,
    which send uint8 tensors; the float conversion and normalization run on the device."""

    synthetic = False
    loader = "cpu"

    def __init__(self, device, *, batch_size: int, resolution: int, data_dir=None, subset=None,
                 test_subset=None, dtype=torch.float32, workers: int = 4, root=None,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        from torchvision import datasets, transforms as T

        root = _tree(root, data_dir)
        train = datasets.ImageFolder(str(root / "train"), T.Compose(
            [T.RandomResizedCrop(resolution), T.RandomHorizontalFlip(), T.PILToTensor()]),
            loader=pil_rgb)
        val = datasets.ImageFolder(str(root / "val"), T.Compose(
            [T.Resize(round(resolution * 256 / 224)), T.CenterCrop(resolution), T.PILToTensor()]),
            loader=pil_rgb)
        self.num_classes = len(train.classes)
        sub = torch.utils.data.Subset
        self.train = sub(train, spread(len(train), subset))
        self.val = sub(val, spread(len(val), test_subset))
        self.device, self.batch_size, self.dtype = torch.device(device), batch_size, dtype
        self.mean = torch.tensor(mean, device=self.device)
        self.std = torch.tensor(std, device=self.device)
        self.workers, self.pin = workers, self.device.type == "cuda"
        self.steps_per_epoch = len(self.train) // batch_size
        if self.steps_per_epoch == 0:
            raise DsdError(f"batch size {batch_size} exceeds the {len(self.train)} training "
                           f"images in {root / 'train'}")

    def _loader(self, ds, batch_size, **kw):
        # fork, also inside a spawned dsd worker (whose default would be spawn: slow start-up)
        ctx = "fork" if self.workers and "fork" in mp.get_all_start_methods() else None
        return torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=self.workers,
                                           pin_memory=self.pin, multiprocessing_context=ctx, **kw)

    def _to(self, x, y) -> Batch:
        from .data import normalize

        x = x.to(self.device, non_blocking=True).permute(0, 2, 3, 1)
        x = normalize(x, self.mean, self.std, self.dtype)
        if self.device.type == "cpu":  # channels_last input crashed conv backward on the CPU
            x = x.contiguous()         # (torch 2.14.1, 224² input); the CPU model is NCHW
        return x, y.to(self.device, non_blocking=True)

    def train_epoch(self, seed: int, epoch: int) -> Iterator[Batch]:
        g = torch.Generator()
        g.manual_seed(seed * 1009 + epoch)   # workers' augmentation seeds
        order = epoch_order(len(self.train), seed, epoch)
        for x, y in self._loader(self.train, self.batch_size, sampler=order, generator=g,
                                 drop_last=True):
            yield self._to(x, y)

    def test(self, batch_size: int = 100) -> Iterator[Batch]:
        for x, y in self._loader(self.val, batch_size):
            yield self._to(x, y)


def _tree(root, data_dir) -> Path:
    """The tree to read: `root` (a dataset's, found by its registry entry), else ImageNet's
    under the data root (mean and std default to ImageNet's too)."""
    return Path(root) if root is not None else get_dataset("imagenet").find(data_dir)


def image_data(device, *, loader: str = "auto", workers: int = 4, **kw):
    """The loader for an image tree (`root`, else ImageNet's under `data_dir`): `gpu` on CUDA
    where nvjpeg works (auto), else `cpu`; `mean` and `std` are the dataset's."""
    if loader not in LOADERS:
        raise DsdError(f"unknown loader {loader!r}; allowed: {', '.join(LOADERS)}")
    device = torch.device(device)
    if loader == "auto":
        loader = "gpu" if device.type == "cuda" and nvjpeg_available(device) else "cpu"
    elif loader == "gpu" and device.type == "cuda" and not nvjpeg_available(device):
        raise DsdError(f"--loader gpu: torchvision cannot decode JPEGs on {device} (no nvjpeg); "
                       f"use --loader cpu")
    if loader == "gpu":
        return GpuImageData(device, **kw)
    return CpuImageData(device, workers=workers, **kw)
