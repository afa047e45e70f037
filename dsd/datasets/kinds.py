"""The two shapes a dataset comes in, as functions that make its `Dataset` (no torch here).

- `image_folder`: a tree train/<class>/<image>, val/<class>/<image> (torchvision's ImageFolder
  convention; ImageNet's), read by dsd's image loaders (`dsd.train.imagenet`: decoded on the
  GPU or by PIL workers, random-resized crop + flip for training, resize to 256/224 of the
  resolution and centre crop for testing, at the spec's resolution).
- `cifar_like`: 32×32 uint8 images held whole on the training device (`dsd.train.data.CifarData`:
  pad-4 random crop + flip per sample, an epoch at a time; resampled when a spec's resolution
  is not 32), read from files by a function of the dataset's own.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..errors import DsdError
from . import Dataset, Layout

TREE = "an ImageFolder tree (train/<class>/<image>, val/<class>/<image>)"


def image_folder(name: str, *, layout: Layout, train_images: int, mean, std,
                 test_images: int | None = None, recipe: str = "dds", description: str = "",
                 folder: str | None = None,
                 locations: Callable[[Path], tuple[Path, ...]] | None = None) -> Dataset:
    """A dataset stored as an ImageFolder tree in <data root>/<folder> (default: its name), or
    in the `locations` given. `train_images` is the full training set's size (the cost model's
    count; the tree may hold fewer); the tree may hold fewer classes than the layout, not more.
    `recipe` is the default recipe (`dds`: the DDS ImageNet recipe)."""
    sub = folder or name
    return Dataset(name=name, description=description, layout=layout,
                   train_images=train_images, test_images=test_images, mean=tuple(mean),
                   std=tuple(std), recipe=recipe, load=_load_tree,
                   locations=locations or (lambda root: (root / sub,)), present=_has_tree,
                   expected=TREE, check=_check_tree)


def cifar_like(name: str, *, layout: Layout, train_images: int, test_images: int, mean, std,
               files: tuple[str, ...], read: Callable[[Path], tuple], expected: str,
               recipe: str = "nds", description: str = "", folder: str | None = None,
               check: Callable[[Dataset, Path], None] | None = None,
               fetch: Callable[[Path], None] | None = None) -> Dataset:
    """A dataset of 32×32 images in `files` of <data root>/<folder> (default: its name).
    `read(path)` returns (train_x, train_y, test_x, test_y): uint8 arrays of shape (n, 3, 32,
    32) and integer labels; the files hold exactly `train_images` training images (checked).
    `check(dataset, path)` replaces the default check (read everything; shapes, counts and
    labels as defined)."""
    sub = folder or name
    return Dataset(name=name, description=description, layout=layout,
                   train_images=train_images, test_images=test_images, mean=tuple(mean),
                   std=tuple(std), recipe=recipe, load=_load_arrays,
                   locations=lambda root: (root / sub,),
                   present=lambda p: all((p / f).is_file() for f in files), expected=expected,
                   check=check or _check_arrays, fetch=fetch, read_arrays=read,
                   fixed_size=True)


# --------------------------------------------------------------------------------------------
# ImageFolder trees

def _has_tree(path: Path) -> bool:
    return (path / "train").is_dir() and (path / "val").is_dir()


def _classes(split: Path) -> list[str]:
    """The class folders of a split, in the order that gives their labels (ImageFolder's)."""
    return sorted(e.name for e in os.scandir(split) if e.is_dir())


def _check_tree(ds: Dataset, path: Path) -> None:
    """Class folders: some, the same in train/ and val/ (a label is a folder's index, so a
    missing one would shift the others), none empty, no more than the layout's classes."""
    train, val = _classes(path / "train"), _classes(path / "val")
    if not train:
        raise DsdError(f"{path / 'train'}: no class folders; expected {TREE}")
    if train != val:
        odd = sorted(set(train) ^ set(val))
        raise DsdError(f"{path}: train/ and val/ must have the same class folders (a label is "
                       f"a folder's index); {len(set(train) - set(val))} only in train/, "
                       f"{len(set(val) - set(train))} only in val/, e.g. {odd[0] if odd else ''}"
                       f"{'(same names, other order)' if not odd else ''}")
    if len(train) > ds.layout.num_classes:
        raise DsdError(f"{path / 'train'}: {len(train)} class folders, more than the "
                       f"{ds.layout.num_classes} classes of the {ds.name} layout")
    for split in ("train", "val"):
        for c in train:
            with os.scandir(path / split / c) as it:
                if next(it, None) is None:
                    raise DsdError(f"{path / split / c}: an empty class folder")


def _load_tree(ds: Dataset, device, *, data_dir, loader, workers, dtype, arrays, num_classes,
               **kw):
    from ..train.imagenet import image_data

    if dtype is not None:
        kw["dtype"] = dtype
    return image_data(device, loader=loader, workers=workers, root=ds.find(data_dir),
                      mean=ds.mean, std=ds.std, **kw)


# --------------------------------------------------------------------------------------------
# 32×32 arrays in memory

def _check_arrays(ds: Dataset, path: Path) -> None:
    """Read the files as training will; shapes, counts and labels as the definition says."""
    try:
        tx, ty, vx, vy = ds.read_arrays(path)
    except DsdError:
        raise
    except Exception as e:  # noqa: BLE001 — a damaged or foreign file: say where and what
        raise DsdError(f"{path}: cannot read {ds.name} ({type(e).__name__}: {str(e)[:100]})") \
            from None
    for split, x, y in (("training", tx, ty), ("test", vx, vy)):
        if getattr(x, "dtype", None) != "uint8" or tuple(x.shape[1:]) != (3, 32, 32) or \
                len(y) != len(x):
            raise DsdError(f"{path}: {ds.name}'s {split} images must be uint8 of shape "
                           f"(n, 3, 32, 32) with n labels, got {getattr(x, 'dtype', '?')} "
                           f"{tuple(getattr(x, 'shape', ()))} and {len(y)} labels")
        if len(y) and not 0 <= int(y.min()) <= int(y.max()) < ds.layout.num_classes:
            raise DsdError(f"{path}: {ds.name}'s {split} labels must lie in 0.."
                           f"{ds.layout.num_classes - 1}, got {int(y.min())}..{int(y.max())}")
    if len(tx) != ds.train_images:
        raise DsdError(f"{path}: {len(tx):,} training images, the {ds.name} definition says "
                       f"{ds.train_images:,}")


def _load_arrays(ds: Dataset, device, *, data_dir, arrays, dtype, loader, workers, num_classes,
                 **kw):
    from ..train.data import CifarData

    if dtype is not None:
        kw["dtype"] = dtype
    if arrays is None:
        arrays = ds.read_arrays(ds.find(data_dir))
    return CifarData(device, arrays=arrays, mean=ds.mean, std=ds.std,
                     num_classes=ds.layout.num_classes, **kw)
