"""CIFAR-10 (Krizhevsky 2009), the python-version batches in <data root>/cifar10/
cifar-10-batches-py (downloaded through torchvision when absent and online): the NDS layout
(32², 10 classes, stem and first stage stride 1) and recipe (`nds`), held whole on the device."""
from __future__ import annotations

import pickle
from pathlib import Path

from ..errors import DsdError
from . import Dataset, Layout, cifar_like, register

FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
#: per-channel mean and std of the 50,000 training images
MEAN = (0.49139968, 0.48215841, 0.44653091)
STD = (0.24703223, 0.24348513, 0.26158784)


def read(path: Path):
    """(train_x, train_y, test_x, test_y) as uint8 NCHW and int64 arrays from the pickles."""
    import numpy as np

    xs, ys = [], []
    for name in FILES:
        with open(path / name, "rb") as f:
            d = pickle.load(f, encoding="latin1")
        xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(d["labels"], dtype=np.int64))
    return np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5]


def check(ds: Dataset, path: Path) -> None:
    """Read every batch file as training will (unpickle, images of 3×32×32 and their labels
    each): a truncated or foreign file is one error naming it, before any model starts."""
    for name in FILES:
        f = path / name
        try:
            with open(f, "rb") as fh:
                d = pickle.load(fh, encoding="latin1")
            n = len(d["labels"])
            ok = d["data"].shape == (n, 3 * 32 * 32) and n > 0
        except Exception as e:  # any unreadable file: name it and what failed
            raise DsdError(f"{f}: not a CIFAR-10 batch ({type(e).__name__}: {str(e)[:100]}); "
                           f"replace it with the official python-version file") from None
        if not ok:
            raise DsdError(f"{f}: not a CIFAR-10 batch (data of shape {d['data'].shape} for "
                           f"{n} labels; expected (n, 3072))")


def fetch(path: Path) -> None:
    """Download through torchvision into path's parent; a failed download leaves no empty
    folders behind and says why in one line."""
    made = [d for d in (path.parent.parent, path.parent) if not d.exists()]
    try:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(path.parent), train=True, download=True)
    except Exception as e:  # offline, read-only, bad checksum: say what failed
        for d in reversed(made):  # the folders this attempt created, if still empty
            try:
                d.rmdir()
            except OSError:
                pass
        raise DsdError(f"download failed: {type(e).__name__}: {str(e)[:120]}") from None


CIFAR10 = register(cifar_like(
    "cifar10", description="CIFAR-10, the python-version batches",
    layout=Layout(resolution=32, num_classes=10, stem_stride=1, first_stride=1),
    train_images=50_000, test_images=10_000, mean=MEAN, std=STD, recipe="nds",
    folder="cifar10/cifar-10-batches-py", files=FILES, read=read, check=check, fetch=fetch,
    expected="the python-version batches (data_batch_1..5, test_batch)"))
