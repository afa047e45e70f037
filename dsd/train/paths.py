"""Where datasets live: `--data-dir`, else `DSD_DATA`, else ~/.cache/dsd (no torch here)."""
from __future__ import annotations

import os
import pickle
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
    """<root>/cifar10/cifar-10-batches-py, downloaded through torchvision when absent and online.
    A failed download leaves no empty folders behind."""
    root = data_root(data_dir) / "cifar10"
    path = root / "cifar-10-batches-py"
    if all((path / f).is_file() for f in CIFAR_FILES):
        return path
    if download:
        made = [d for d in (root.parent, root) if not d.exists()]
        try:
            from torchvision.datasets import CIFAR10

            CIFAR10(str(root), train=True, download=True)
        except Exception as e:  # offline, read-only, bad checksum: say what to do instead
            reason = f" (download failed: {type(e).__name__}: {str(e)[:120]})"
            for d in reversed(made):  # the folders this attempt created, if still empty
                try:
                    d.rmdir()
                except OSError:
                    pass
        else:
            return path
    else:
        reason = ""
    raise DsdError(f"CIFAR-10 not found at {path}{reason}; put the python-version batches there "
                   f"(data_batch_1..5, test_batch), or pass --data-dir / set DSD_DATA to a root "
                   f"that holds cifar10/cifar-10-batches-py")


def check_cifar10(path: Path) -> None:
    """Read every batch file as training will (unpickle, 10,000 images of 3×32×32 and their
    labels each): a truncated or foreign file is one error naming it, before any model starts."""
    for name in CIFAR_FILES:
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


def imagenet_dir(data_dir=None) -> Path:
    """An ImageFolder tree with train/ and val/: the data dir itself, or <root>/imagenet."""
    root = data_root(data_dir)
    for cand in (root, root / "imagenet"):
        if (cand / "train").is_dir() and (cand / "val").is_dir():
            return cand
    raise DsdError(f"no ImageNet tree at {root} or {root / 'imagenet'}: expected train/<class>/"
                   f"*.JPEG and val/<class>/*.JPEG; pass --data-dir or set DSD_DATA")
