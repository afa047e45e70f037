"""Synthetic data: random images and labels generated on the device, for benchmarks and tests.

It has no layout of its own: `dsd train --dataset synthetic` trains any sweep's models (at the
spec's resolution and classes) on it, and its results are marked synthetic (never analysed).
An epoch has 50,000 images at resolutions up to 64 (CIFAR-sized) and 10,000 above, unless
`--subset` says how many."""
from __future__ import annotations

from . import Dataset, register


def epoch_images(resolution: int) -> int:
    """Images per epoch at `resolution` when --subset does not say."""
    return 50_000 if resolution <= 64 else 10_000


def _load(ds: Dataset, device, *, batch_size, resolution, num_classes, subset, test_subset,
          dtype, **_):
    from ..train.data import SyntheticData

    kw = {"dtype": dtype} if dtype is not None else {}
    return SyntheticData(device, batch_size=batch_size, resolution=resolution,
                         num_classes=num_classes, images=ds.images(resolution, subset),
                         test_subset=test_subset, **kw)


SYNTHETIC = register(Dataset(
    name="synthetic", description="random images and labels (benchmarks; never analysed)",
    layout=None, train_images=epoch_images, test_images=None, mean=None, std=None,
    recipe=None, load=_load, synthetic=True))
