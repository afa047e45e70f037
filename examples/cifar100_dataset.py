"""CIFAR-100 (Krizhevsky 2009) as a dsd dataset, registered from outside the package: the shape
of CIFAR-10 (`dsd/datasets/cifar10.py`), 32×32 images held whole on the training device.

The data: the python-version files `train` and `test` in <data root>/cifar100/cifar-100-python
(what `torchvision.datasets.CIFAR100("<data root>/cifar100", download=True)` leaves there).
Labels are the 100 fine classes.

Use it: `DSD_DATASETS=examples/cifar100_dataset.py dsd sample --space regnetx --dataset cifar100
--flops-range 112MF 125MF`, then `dsd train` (workers load the file; `--executor ray` ships the
arrays once, as for CIFAR-10).
"""
import pickle

from dsd.datasets import Layout, cifar_like, register

FILES = ("train", "test")


def read(path):
    """(train_x, train_y, test_x, test_y): uint8 (n, 3, 32, 32) images and int64 fine labels."""
    import numpy as np

    out = []
    for name in FILES:
        with open(path / name, "rb") as f:
            d = pickle.load(f, encoding="latin1")
        out += [np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32),
                np.asarray(d["fine_labels"], dtype=np.int64)]
    return tuple(out)


register(cifar_like(
    "cifar100", description="CIFAR-100, the python-version files (fine labels)",
    layout=Layout(resolution=32, num_classes=100, stem_stride=1, first_stride=1),
    train_images=50_000, test_images=10_000,
    # per-channel mean and std of the training images as commonly published (not re-measured)
    mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
    folder="cifar100/cifar-100-python", files=FILES, read=read,
    expected="the python-version files (train, test)"))
