"""Where datasets live: `--data-dir`, else `DSD_DATA`, else ~/.cache/dsd (no torch here)."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import DsdError

CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else `DSD_DATA`, else ~/.cache/dsd."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("DSD_DATA"):
        return Path(os.environ["DSD_DATA"]).expanduser()
    return Path.home() / ".cache" / "dsd"


def cifar10_dir(data_dir=None, *, download: bool = True) -> Path:
    """<root>/cifar10/cifar-10-batches-py, downloaded through torchvision when absent and online."""
    root = data_root(data_dir) / "cifar10"
    path = root / "cifar-10-batches-py"
    if all((path / f).is_file() for f in CIFAR_FILES):
        return path
    if download:
        try:
            from torchvision.datasets import CIFAR10

            CIFAR10(str(root), train=True, download=True)
        except Exception as e:  # offline, read-only, bad checksum: say what to do instead
            reason = f" (download failed: {type(e).__name__}: {str(e)[:120]})"
        else:
            return path
    else:
        reason = ""
    raise DsdError(f"CIFAR-10 not found at {path}{reason}; put the python-version batches there "
                   f"(data_batch_1..5, test_batch), or pass --data-dir / set DSD_DATA to a root "
                   f"that holds cifar10/cifar-10-batches-py")


def imagenet_dir(data_dir=None) -> Path:
    """An ImageFolder tree with train/ and val/: the data dir itself, or <root>/imagenet."""
    root = data_root(data_dir)
    for cand in (root, root / "imagenet"):
        if (cand / "train").is_dir() and (cand / "val").is_dir():
            return cand
    raise DsdError(f"no ImageNet tree at {root} or {root / 'imagenet'}: expected train/<class>/"
                   f"*.JPEG and val/<class>/*.JPEG; pass --data-dir or set DSD_DATA")
