"""The dataset registry: one frozen `Dataset` per dataset, with everything dsd knows of it.

A definition holds the dataset's layout (the template a sampled spec gets: input resolution,
classes, stem and first-stage strides), its image counts, normalization mean and std, the
default training recipe of sweeps sampled for it, where it is looked for under the data root
(`--data-dir`, else $DSD_DATA, else ~/.cache/dsd), how it is checked before training and how a
training data source is made of it. Sampling (`dsd.spec.layout`), the spaces' per-dataset
windows and resolutions, training (`dsd.train`: recipes, checks, cost, loaders, Ray) read it
here; a name not registered is one `DsdError` listing the known ones, never a fallback.

The built-ins are a module each (`imagenet`, `cifar10`, `synthetic`). A dataset of your own is
one Python file that calls `register` (usually with `image_folder` or `cifar_like`); name the
file in $DSD_DATASETS (paths, `os.pathsep`-separated: every dsd command and its worker
processes load it) or register it from an installed package's `dsd.datasets` entry point,
as blocks do (`dsd.blocks`). Importing this package never imports torch; making a data source
(`Dataset.data`) does.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import DsdError
from ..plugins import Plugins


@dataclass(frozen=True)
class Layout:
    """Dataset-dependent template: input resolution, classes, stem and first-stage strides."""

    resolution: int
    num_classes: int
    stem_stride: int
    first_stride: int

    def __post_init__(self) -> None:
        if not (isinstance(self.resolution, int) and self.resolution >= 8):
            raise DsdError(f"layout resolution must be an integer >= 8, got {self.resolution!r}")
        if not (isinstance(self.num_classes, int) and self.num_classes >= 2):
            raise DsdError(f"layout num_classes must be an integer >= 2, got "
                           f"{self.num_classes!r}")
        for key in ("stem_stride", "first_stride"):
            if getattr(self, key) not in (1, 2):
                raise DsdError(f"layout {key} must be 1 or 2, got {getattr(self, key)!r}")


@dataclass(frozen=True)
class Dataset:
    """One dataset. The callables are plain functions of the module that defines it; `load`
    imports torch inside, so that defining (and listing) datasets stays torch-free.

    `locations(root)` gives the folders, under the data root, where the data may be (in order),
    `present(path)` whether one holds it (cheap: files exist), `fetch(path)` downloads it there
    when none does (or None), `check(dataset, path)` reads what training will read and raises
    a DsdError naming a bad file, before any model starts. `load(dataset, device, **kw)`
    returns the data source (what `dsd.train.engine` reads: train_epoch, test, num_classes,
    steps_per_epoch…); its keywords are `Dataset.data`'s. A dataset without `locations` reads nothing (synthetic).
    """

    name: str
    description: str
    #: the template of specs sampled for it; None: no layout of its own (trains any sweep's)
    layout: Layout | None
    #: training images of the full dataset; a function of the resolution for generated data
    train_images: int | Callable[[int], int]
    test_images: int | None
    mean: tuple[float, float, float] | None   # per-channel normalization of [0, 1] pixels
    std: tuple[float, float, float] | None
    recipe: str | None            # default recipe (dsd.train.recipes) of sweeps sampled for it
    load: Callable[..., Any]
    locations: Callable[[Path], tuple[Path, ...]] | None = None
    present: Callable[[Path], bool] | None = None
    expected: str = ""            # what a location must hold (said when none does)
    check: Callable[["Dataset", Path], None] | None = None
    fetch: Callable[[Path], None] | None = None
    #: (train_x, train_y, test_x, test_y) uint8/int64 arrays for datasets held whole in memory:
    #: `--executor ray` reads them once and ships them to every node
    read_arrays: Callable[[Path], tuple] | None = None
    fixed_size: bool = False      # the files always hold exactly train_images (CIFAR's batches)
    synthetic: bool = False       # generated data: results are marked and never analysed

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*",
                                                               self.name):
            raise DsdError(f"dataset name {self.name!r}: must be lower-case letters, digits, "
                           f"_ . - (it is stored with every sweep)")
        if self.layout is not None and not isinstance(self.layout, Layout):
            raise DsdError(f"dataset {self.name}: layout must be a dsd.datasets.Layout")
        if not callable(self.train_images) and not (
                isinstance(self.train_images, int) and self.train_images >= 1):
            raise DsdError(f"dataset {self.name}: train_images must be an integer >= 1, got "
                           f"{self.train_images!r}")
        for key in ("mean", "std"):
            v = getattr(self, key)
            if v is not None and not (len(v) == 3 and all(isinstance(x, (int, float)) for x in v)
                                      and (key == "mean" or min(v) > 0)):
                raise DsdError(f"dataset {self.name}: {key} must be three numbers (RGB)"
                               f"{', each > 0' if key == 'std' else ''}, got {v!r}")
        if (self.locations is None) != (self.present is None):
            raise DsdError(f"dataset {self.name}: give both locations and present, or neither")
        if not callable(self.load):
            raise DsdError(f"dataset {self.name}: load must be a function")

    def images(self, resolution: int, subset: int | None = None) -> int:
        """Training images of an epoch at `resolution` on the first `subset` of them (all when
        None), as the loaders count them; generated data has as many as asked."""
        full = self.train_images(resolution) if callable(self.train_images) else self.train_images
        if self.synthetic:
            return subset or full
        return min(subset or full, full)

    def candidates(self, data_dir=None) -> tuple[Path, ...]:
        """Where the data is looked for under the data root (none for generated data)."""
        return () if self.locations is None else tuple(self.locations(data_root(data_dir)))

    def find(self, data_dir=None, *, download: bool = True) -> Path | None:
        """The folder holding the data (None for generated data); downloaded into the first
        location when absent and the dataset can fetch itself. One clear error otherwise."""
        places = self.candidates(data_dir)
        if not places:
            return None
        for p in places:
            if self.present(p):
                return p
        reason = ""
        if download and self.fetch is not None:
            try:
                self.fetch(places[0])
            except DsdError as e:
                reason = f" ({e})"
            else:
                if self.present(places[0]):
                    return places[0]
        where = " or ".join(map(str, places))
        raise DsdError(f"{self.name} not found at {where}{reason}; put {self.expected} there, or "
                       f"pass --data-dir / set DSD_DATA to the root that holds it")

    def verify(self, data_dir=None) -> None:
        """Find the data (downloading it if the dataset can) and check it: what `dsd train`
        does before any model starts, so a missing or damaged file is one error naming it."""
        path = self.find(data_dir)
        if path is not None and self.check is not None:
            self.check(self, path)

    def data(self, device, *, batch_size: int, resolution: int, num_classes: int,
             data_dir=None, subset=None, test_subset=None, dtype=None, workers: int = 4,
             arrays=None, loader: str = "auto"):
        """The training data source on `device` (imports torch): `resolution` and
        `num_classes` are the spec's, `loader` the image pipeline (auto, gpu, cpu), `arrays`
        the in-memory data shipped by Ray (else read from `data_dir`)."""
        return self.load(self, device, batch_size=batch_size, resolution=resolution,
                         num_classes=num_classes, data_dir=data_dir, subset=subset,
                         test_subset=test_subset, dtype=dtype, workers=workers, arrays=arrays,
                         loader=loader)


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else `DSD_DATA`, else ~/.cache/dsd."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("DSD_DATA"):
        return Path(os.environ["DSD_DATA"]).expanduser()
    return Path.home() / ".cache" / "dsd"


# --------------------------------------------------------------------------------------------
# The registry

DATASETS: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    """Add a dataset; a name registered already is an error (a file loaded twice is not)."""
    if not isinstance(dataset, Dataset):
        raise DsdError(f"register takes a dsd.datasets.Dataset, got {type(dataset).__name__}")
    if dataset.name in DATASETS:
        raise DsdError(f"dataset {dataset.name!r} is already registered")
    DATASETS[dataset.name] = dataset
    return dataset


def known_datasets() -> list[str]:
    """Every registered name, built-ins first ($DSD_DATASETS and entry points loaded)."""
    _load_plugins()
    return list(DATASETS)


def get_dataset(name: str) -> Dataset:
    """The definition of a dataset name, or one line naming the known ones."""
    if name in DATASETS:   # the common case: nothing to load
        return DATASETS[name]
    _load_plugins()
    if name not in DATASETS:
        raise DsdError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)} (a dataset "
                       f"of your own: name its file in $DSD_DATASETS; `dsd datasets` lists "
                       f"them)")
    return DATASETS[name]


def layouts() -> dict[str, Layout]:
    """The datasets specs can be sampled for (those with a layout), by name."""
    _load_plugins()
    return {n: d.layout for n, d in DATASETS.items() if d.layout is not None}


def layout(name: str) -> Layout:
    """The layout of a dataset name; an unknown name, or one without a layout (synthetic), is
    one line naming those that have one."""
    d = DATASETS.get(name)
    if d is None:
        _load_plugins()
        d = DATASETS.get(name)
    if d is not None and d.layout is not None:
        return d.layout
    allowed = ", ".join(layouts())
    if d is not None:
        raise DsdError(f"dataset {name!r} has no layout of its own (it trains any sweep's); "
                       f"allowed: {allowed}")
    raise DsdError(f"unknown dataset {name!r}; allowed: {allowed} (a dataset of your own: "
                   f"name its file in $DSD_DATASETS)")


def dataset_rows(data_dir=None) -> list[dict]:
    """One plain (JSON-able) row per registered dataset, as `dsd datasets` lists them: layout,
    images (generated data: per layout resolution), normalization, default recipe, where its
    data is looked for and where it was found (None: not found; nothing is downloaded)."""
    rows = []
    for name in known_datasets():
        d = DATASETS[name]
        if callable(d.train_images):
            train = {r: d.images(r) for r in sorted({x.resolution for x in layouts().values()})}
        else:
            train = d.train_images
        places = d.candidates(data_dir)
        found = next((p for p in places if d.present(p)), None)
        rows.append({"name": name, "description": d.description,
                     "layout": None if d.layout is None else dataclasses.asdict(d.layout),
                     "train_images": train, "test_images": d.test_images,
                     "mean": d.mean and list(d.mean), "std": d.std and list(d.std),
                     "recipe": d.recipe, "locations": [str(p) for p in places],
                     "found": None if found is None else str(found),
                     "downloads": d.fetch is not None, "synthetic": d.synthetic})
    return rows


# --------------------------------------------------------------------------------------------
# Datasets from outside the repository (as dsd.blocks loads blocks)

_plugins = Plugins("dataset", "DSD_DATASETS", "dsd.datasets")


def load_dataset_file(path: str | Path) -> list[str]:
    """Import a Python file that registers datasets; returns the names it added."""
    return _plugins.load_file(path, lambda: list(DATASETS))


def _load_plugins() -> None:
    """Datasets named by $DSD_DATASETS and by installed packages' `dsd.datasets` entry points."""
    _plugins.load_all(lambda: list(DATASETS))


from .kinds import cifar_like, image_folder  # noqa: E402  (the two shapes of a dataset file)
from . import imagenet, cifar10, synthetic  # noqa: E402,F401  (register the built-ins, in order)

__all__ = ["DATASETS", "Dataset", "Layout", "cifar_like", "data_root", "dataset_rows",
           "get_dataset", "image_folder", "known_datasets", "layout", "layouts",
           "load_dataset_file", "register"]
