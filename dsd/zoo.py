"""Named models: the 24 RegNetX/Y of the paper (DDS Figs. 15-16) and the baselines the paper
compares them with (§5: ResNet, ResNeXt, EfficientNet), as pycls's `configs/dds_baselines`
define them, plus pycls's CIFAR ResNet-56/110 and Vanilla-56 (`configs/archive/cifar`).

RegNet entries are (d, w0, wa, wm, g) with b = 1, stem 32; Y models add SE with ratio 0.25.
Complexities are pinned to pycls's own `dev/model_complexity.json` by tests/test_blocks.py
and tests/test_complexity.py.
"""
from __future__ import annotations

from .errors import DsdError
from .regnet import regnet_spec
from .spec import ModelSpec, make_spec

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


#: pycls `_IN_STAGE_DS`: ResNet stage depths by depth.
_RESNET_DS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
#: EfficientNet (pycls EN-B0…B5): stem width, depths, widths, head width, train resolution;
#: all share strides 1,2,2,2,1,2,1, expansion 1 then 6, kernels 3,3,5,3,5,5,3, SE 0.25, silu.
_EFFNETS = {
    "b0": (32, (1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320), 1280, 224),
    "b1": (32, (2, 3, 3, 4, 4, 5, 2), (16, 24, 40, 80, 112, 192, 320), 1280, 240),
    "b2": (32, (2, 3, 3, 4, 4, 5, 2), (16, 24, 48, 88, 120, 208, 352), 1408, 260),
    "b3": (40, (2, 3, 3, 5, 5, 6, 2), (24, 32, 48, 96, 136, 232, 384), 1536, 300),
    "b4": (48, (2, 4, 4, 6, 6, 8, 2), (24, 32, 56, 112, 160, 272, 448), 1792, 380),
    "b5": (48, (3, 5, 5, 7, 7, 9, 3), (24, 40, 64, 128, 176, 304, 512), 2048, 456),
}


def _resnet(depth: int, b: int, gs) -> ModelSpec:
    """pycls's R-/X- dds_baselines: res_stem_in 64, bottleneck blocks, strides 1,2,2,2."""
    return make_spec(_RESNET_DS[depth], [256, 512, 1024, 2048], [b] * 4, gs, block="x",
                     stem="res", stem_w=64, strides=[1, 2, 2, 2])


def _effnet(key: str) -> ModelSpec:
    stem_w, ds, ws, head_w, res = _EFFNETS[key]
    return make_spec(ds, ws, [1] + ["1/6"] * 6, [1] * 7, block="mbconv", se_ratio=0.25,
                     stem_w=stem_w, strides=[1, 2, 2, 2, 1, 2, 1], ks=[3, 3, 5, 3, 5, 5, 3],
                     head_w=head_w, activation="silu", resolution=res)


def _cifar_resnet(block: str, d: int) -> ModelSpec:
    """pycls's CIFAR R-56/110 and V-56 (configs/archive/cifar/anynet): res_stem_cifar 16,
    three stages of d blocks, widths 16, 32, 64."""
    return make_spec([d] * 3, [16, 32, 64], [1] * 3, [1] * 3, block=block, dataset="cifar10",
                     stem_w=16, strides=[1, 2, 2])


#: Baselines by name → (builder, the pycls config it reproduces).
BASELINES: dict[str, tuple] = {
    **{f"resnet{n}": (lambda n=n: _resnet(n, 4, [64, 128, 256, 512]),
                      f"configs/dds_baselines/resnet/R-{n}-1x64d_dds_8gpu.yaml")
       for n in (50, 101, 152)},
    **{f"resnext{n}-32x4d": (lambda n=n: _resnet(n, 2, [4, 8, 16, 32]),
                             f"configs/dds_baselines/resnext/X-{n}-32x4d_dds_8gpu.yaml")
       for n in (50, 101, 152)},
    **{f"effnet-{k}": (lambda k=k: _effnet(k),
                       f"configs/dds_baselines/effnet/EN-{k.upper()}_dds_8gpu.yaml")
       for k in _EFFNETS},
    "resnet56-cifar": (lambda: _cifar_resnet("basic", 9),
                       "configs/archive/cifar/anynet/R-56_nds_1gpu.yaml"),
    "resnet110-cifar": (lambda: _cifar_resnet("basic", 18),
                        "configs/archive/cifar/anynet/R-110_nds_1gpu.yaml"),
    "vanilla56-cifar": (lambda: _cifar_resnet("vanilla", 9),
                        "configs/archive/cifar/anynet/V-56_nds_1gpu.yaml"),
}


def model_names() -> list[str]:
    """Every named model: the RegNets, then the baselines."""
    return [*ZOO, *BASELINES]


def named_spec(name: str, dataset: str = "imagenet") -> ModelSpec:
    """A RegNet in the layout of `dataset`, or a baseline (its own layout: ImageNet, or
    CIFAR-10 for the -cifar ones), by case-insensitive name."""
    key = name.lower()
    if key in BASELINES:
        spec = BASELINES[key][0]()
        own = "cifar10" if spec.num_classes == 10 else "imagenet"
        if dataset != own:
            raise DsdError(f"{name} is defined for {own} only (pycls {BASELINES[key][1]})")
        return spec
    return zoo_spec(key, dataset)


def zoo_params(name: str) -> dict:
    """The RegNet parameters of a zoo model, by case-insensitive name."""
    key = name.lower()
    if key not in ZOO:
        raise DsdError(f"unknown zoo model {name!r}; known: {', '.join(model_names())}")
    d, w0, wa, wm, g = ZOO[key]
    return {"d": d, "w0": w0, "wa": wa, "wm": wm, "b": 1, "g": g}


def zoo_spec(name: str, dataset: str = "imagenet") -> ModelSpec:
    """A zoo model as a spec, in the layout of `dataset` (ImageNet or CIFAR-10)."""
    p = zoo_params(name)
    is_y = name.lower().startswith("regnety")
    spec, _ = regnet_spec(**p, block="y" if is_y else "x", se_ratio=0.25 if is_y else 0.0,
                          dataset=dataset)
    return spec
