"""Training data sources: CIFAR-10-like arrays kept on the device as uint8, synthetic data, and
`make_data`, which makes the source of a dataset name through its registry entry
(`dsd.datasets`; ImageFolder trees load through `imagenet.py`).

CIFAR-10 (NDS): a whole epoch is augmented at once on the device (per-sample pad-4 random crop
and horizontal flip as one gather, then per-channel normalization), so the input pipeline costs a
few kernels per epoch. ImageNet (DDS): random-resized crop + flip, test resize 256 / centre crop
224, decoded on the device or by PIL in worker processes (`imagenet.py`). Every source yields
fixed-size training batches (the last partial batch is dropped, as pycls does), which CUDA graphs
need, and names its input pipeline in `loader` (stored with each result).
"""
from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

from ..datasets import get_dataset
from ..datasets.cifar10 import MEAN as CIFAR_MEAN, STD as CIFAR_STD, read as read_cifar
from ..errors import DsdError

Batch = tuple[torch.Tensor, torch.Tensor]


def _epoch_generator(device: torch.device, seed: int, epoch: int) -> torch.Generator:
    """Data order of an epoch depends only on (seed, epoch): resumed runs see the same batches."""
    g = torch.Generator(device=device)
    g.manual_seed(seed * 1009 + epoch)
    return g


def augment_cifar(x: torch.Tensor, g: torch.Generator, mean, std, dtype) -> torch.Tensor:
    """Pad-4 random 32×32 crop + random flip + normalize, per sample, as one gather (NCHW out)."""
    n, dev = x.shape[0], x.device
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, 4, 4, 4, 4))  # (n, 40, 40, 3) zero padded
    oy = torch.randint(0, 9, (n, 1), generator=g, device=dev)
    ox = torch.randint(0, 9, (n, 1), generator=g, device=dev)
    flip = torch.randint(0, 2, (n, 1), generator=g, device=dev).bool()
    ar = torch.arange(32, device=dev)
    rows = oy + ar
    cols = torch.where(flip, ox + 31 - ar, ox + ar)
    out = padded[torch.arange(n, device=dev)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return normalize(out, mean, std, dtype)


def normalize(hwc: torch.Tensor, mean, std, dtype) -> torch.Tensor:
    """uint8 NHWC → normalized NCHW view (channels_last memory) in `dtype`."""
    out = hwc.to(torch.float32).div_(255).sub_(mean).div_(std)
    return out.to(dtype).permute(0, 3, 1, 2)


def resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """A normalized NCHW batch resampled to resolution² (bilinear, antialiased when shrinking),
    kept channels_last: CIFAR-10 for a spec whose sampled resolution is not 32."""
    if x.shape[-1] == resolution:
        return x
    out = F.interpolate(x.float(), size=(resolution, resolution), mode="bilinear",
                        align_corners=False, antialias=resolution < x.shape[-1])
    return out.to(x.dtype).contiguous(memory_format=torch.channels_last)


class CifarData:
    """32×32 images held on `device` (CIFAR-10's `arrays` (train_x, train_y, test_x, test_y),
    or a dataset of the same shape with its own mean, std and classes; without `arrays`,
    CIFAR-10 read from `data_dir`); `subset` keeps the first N training images. A `resolution`
    other than 32 resamples every augmented batch (and the test set) to it: the spec's own
    input size, at which its complexity was counted (a sampled resolution, DDS §4)."""

    synthetic = False

    def __init__(self, device, *, batch_size: int, data_dir=None, subset=None, test_subset=None,
                 dtype=torch.float32, arrays=None, resolution: int = 32, mean=CIFAR_MEAN,
                 std=CIFAR_STD, num_classes: int = 10):
        self.resolution = resolution
        self.loader = "device" if resolution == 32 else f"device, resized 32→{resolution}"
        if arrays is None:
            arrays = read_cifar(get_dataset("cifar10").find(data_dir))
        tx, ty, vx, vy = arrays
        tx, ty, vx, vy = tx[:subset], ty[:subset], vx[:test_subset], vy[:test_subset]
        self.device, self.batch_size, self.dtype = torch.device(device), batch_size, dtype
        self.train_x = torch.from_numpy(tx).to(self.device)
        self.train_y = torch.from_numpy(ty).to(self.device)
        self.mean = torch.tensor(mean, device=self.device)
        self.std = torch.tensor(std, device=self.device)
        self.test_x = resize(normalize(torch.from_numpy(vx).to(self.device).permute(0, 2, 3, 1),
                                       self.mean, self.std, dtype), resolution)
        self.test_y = torch.from_numpy(vy).to(self.device)
        self.num_classes, self.test_size = num_classes, len(vx)
        self.steps_per_epoch = len(tx) // batch_size
        if self.steps_per_epoch == 0:
            raise DsdError(f"batch size {batch_size} exceeds the {len(tx)} training images")

    seeks = True  # train_epoch(start=…): a resumed epoch starts at its step, same batches

    def train_epoch(self, seed: int, epoch: int, start: int = 0) -> Iterator[Batch]:
        g = _epoch_generator(self.device, seed, epoch)
        n, b = self.steps_per_epoch * self.batch_size, self.batch_size
        order = torch.randperm(len(self.train_x), generator=g, device=self.device)[:n]
        xs = torch.cat([resize(augment_cifar(self.train_x[idx], g, self.mean, self.std,
                                             self.dtype), self.resolution)
                        for idx in order.split(8192)])
        ys = self.train_y[order]
        for i in range(start, self.steps_per_epoch):
            yield xs[i * b:(i + 1) * b], ys[i * b:(i + 1) * b]

    def test(self, batch_size: int = 1000) -> Iterator[Batch]:
        for i in range(0, len(self.test_x), batch_size):
            yield self.test_x[i:i + batch_size], self.test_y[i:i + batch_size]


class SyntheticData:
    """Random images and labels generated on the device (benchmarks, tests; never analysed)."""

    synthetic = True
    loader = "synthetic"

    def __init__(self, device, *, batch_size: int, resolution: int, num_classes: int,
                 images: int, test_subset=None, dtype=torch.float32):
        self.device, self.batch_size, self.dtype = torch.device(device), batch_size, dtype
        self.shape, self.num_classes = (3, resolution, resolution), num_classes
        self.steps_per_epoch = max(1, images // batch_size)   # images: dsd.datasets.synthetic
        self.test_size = test_subset or 1000

    def _batches(self, g, n_batches, b) -> Iterator[Batch]:
        for _ in range(n_batches):
            x = torch.randn((b, *self.shape), generator=g, device=self.device, dtype=self.dtype)
            y = torch.randint(0, self.num_classes, (b,), generator=g, device=self.device)
            yield x.contiguous(memory_format=torch.channels_last), y

    def train_epoch(self, seed: int, epoch: int) -> Iterator[Batch]:
        yield from self._batches(_epoch_generator(self.device, seed, epoch),
                                 self.steps_per_epoch, self.batch_size)

    def test(self, batch_size: int = 500) -> Iterator[Batch]:
        yield from self._batches(_epoch_generator(self.device, 0, -1),
                                 max(1, self.test_size // batch_size), batch_size)


def make_data(dataset: str, device, *, batch_size: int, resolution: int, num_classes: int,
              data_dir=None, subset=None, test_subset=None, dtype=torch.float32,
              workers: int = 4, arrays=None, loader: str = "auto"):
    """The data source of a dataset name (its registry entry's `load`; an unknown name is an
    error); `loader` chooses an image tree's pipeline (auto, gpu, cpu: `imagenet.image_data`),
    `arrays` are in-memory data shipped by Ray."""
    return get_dataset(dataset).data(device, batch_size=batch_size, resolution=resolution,
                                     num_classes=num_classes, data_dir=data_dir, subset=subset,
                                     test_subset=test_subset, dtype=dtype, workers=workers,
                                     arrays=arrays, loader=loader)
