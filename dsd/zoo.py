"""The 24 RegNetX/Y models of the paper (DDS Figs. 15-16; pycls `configs/dds_baselines`).

Each entry is (d, w0, wa, wm, g) with b = 1, stem 32; Y models add SE with ratio 0.25.
Their ImageNet flops/params/acts are pinned exactly by `tests/test_complexity.py`.
"""
from __future__ import annotations

from .errors import DsdError
from .regnet import regnet_spec
from .spec import ModelSpec

ZOO: dict[str, tuple[int, int, float, float, int]] = {
    "regnetx-200mf": (13, 24, 36.44, 2.49, 8),
    "regnetx-400mf": (22, 24, 24.48, 2.54, 16),
    "regnetx-600mf": (16, 48, 36.97, 2.24, 24),
    "regnetx-800mf": (16, 56, 35.73, 2.28, 16),
    "regnetx-1.6gf": (18, 80, 34.01, 2.25, 24),
    "regnetx-3.2gf": (25, 88, 26.31, 2.25, 48),
    "regnetx-4.0gf": (23, 96, 38.65, 2.43, 40),
    "regnetx-6.4gf": (17, 184, 60.83, 2.07, 56),
    "regnetx-8.0gf": (23, 80, 49.56, 2.88, 120),
    "regnetx-12gf": (19, 168, 73.36, 2.37, 112),
    "regnetx-16gf": (22, 216, 55.59, 2.1, 128),
    "regnetx-32gf": (23, 320, 69.86, 2.0, 168),
    "regnety-200mf": (13, 24, 36.44, 2.49, 8),
    "regnety-400mf": (16, 48, 27.89, 2.09, 8),
    "regnety-600mf": (15, 48, 32.54, 2.32, 16),
    "regnety-800mf": (14, 56, 38.84, 2.4, 16),
    "regnety-1.6gf": (27, 48, 20.71, 2.65, 24),
    "regnety-3.2gf": (21, 80, 42.63, 2.66, 24),
    "regnety-4.0gf": (22, 96, 31.41, 2.24, 64),
    "regnety-6.4gf": (25, 112, 33.22, 2.27, 72),
    "regnety-8.0gf": (17, 192, 76.82, 2.19, 56),
    "regnety-12gf": (19, 168, 73.36, 2.37, 112),
    "regnety-16gf": (18, 200, 106.23, 2.48, 112),
    "regnety-32gf": (20, 232, 115.89, 2.53, 232),
}


def zoo_params(name: str) -> dict:
    """The RegNet parameters of a zoo model, by case-insensitive name."""
    key = name.lower()
    if key not in ZOO:
        raise DsdError(f"unknown zoo model {name!r}; known: {', '.join(ZOO)}")
    d, w0, wa, wm, g = ZOO[key]
    return {"d": d, "w0": w0, "wa": wa, "wm": wm, "b": 1, "g": g}


def zoo_spec(name: str, dataset: str = "imagenet") -> ModelSpec:
    """A zoo model as a spec, in the layout of `dataset` (ImageNet or CIFAR-10)."""
    p = zoo_params(name)
    is_y = name.lower().startswith("regnety")
    spec, _ = regnet_spec(**p, block="y" if is_y else "x", se_ratio=0.25 if is_y else 0.0,
                          dataset=dataset)
    return spec
