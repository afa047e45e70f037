"""A pycls sweep config (`configs/sweeps/**.yaml`, read by pycls's tools/sweep_setup.py) as a
dsd design space: its SETUP's SAMPLERS and CONSTRAINTS become a space definition, window and
default n, drawn with the `pycls` sampler convention (identical distributions; dsd's own seeded
generator, so not pycls's exact configs).

Supported: `REGNET` with `regnet_sampler` (pycls's fixed samplers: DEPTH uniform q 1, W0
log_uniform q 8, WA log_uniform q 0.1, WM log_uniform q 0.001, GROUP_W power2_or_log_uniform
q 8, BOT_MUL power2_uniform q 1/128), `REGNET.<P>` scalar samplers, `ANYNET.<DEPTHS|WIDTHS|
BOT_MULS|GROUP_WS>` list samplers, CONSTRAINTS.CX on flops/params/acts (0 = that end open) and
CONSTRAINTS.REGNET.NUM_STAGES (one count). BASE_CFG fixes the model template (MODEL.TYPE
anynet|regnet, stem, block, SE, strides, dataset); its training keys are reported as ignored.
Anything else is an error naming the keys. (pycls's sweep_setup also snaps AnyNet group widths
above 5 to multiples of 8 through `scaler.scale_model`; regnet_sampler's values are unchanged
by it, AnyNet GROUP_WS samplers should give 1, 2, 4 or multiples of 8.)
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import DsdError
from .space import SpaceDef, Window

#: pycls's defaults (pycls/core/config.py, pycls/sweep/config.py) for what a config may omit.
REGNET_DEFAULTS = {"STEM_TYPE": "simple_stem_in", "STEM_W": 32,
                   "BLOCK_TYPE": "res_bottleneck_block", "STRIDE": 2, "SE_ON": False,
                   "SE_R": 0.25, "DEPTH": 10, "W0": 32, "WA": 5.0, "WM": 2.5, "GROUP_W": 16,
                   "BOT_MUL": 1.0, "HEAD_W": 0}
ANYNET_DEFAULTS = {"STEM_TYPE": "simple_stem_in", "STEM_W": 32,
                   "BLOCK_TYPE": "res_bottleneck_block", "DEPTHS": [], "WIDTHS": [],
                   "STRIDES": [], "BOT_MULS": [], "GROUP_WS": [], "HEAD_W": 0, "SE_ON": False,
                   "SE_R": 0.25}
REGNET_SAMPLER = {"DEPTH": [12, 28], "W0": [8, 256], "WA": [8.0, 256.0], "WM": [2.0, 3.0],
                  "GROUP_W": [8, 128], "BOT_MUL": [1.0, 1.0]}
#: regnet_sampler's fixed (dsd parameter, pycls rand type, q) per range.
REGNET_RANDS = {"DEPTH": ("d", "uniform", 1), "W0": ("w0", "log_uniform", 8),
                "WA": ("wa", "log_uniform", 0.1), "WM": ("wm", "log_uniform", 0.001),
                "GROUP_W": ("g", "power2_or_log_uniform", 8)}
ANYNET_LISTS = {"DEPTHS": "d", "WIDTHS": "w", "BOT_MULS": "b", "GROUP_WS": "g"}
STEMS = {"res_stem_cifar": ("cifar10", 1), "simple_stem_in": ("imagenet", 2)}
BLOCKS = ("res_bottleneck_block",)
#: BASE_CFG sections that only concern training (dsd trains with its own recipes).
TRAINING = ("OPTIM", "BN", "TRAIN", "TEST", "DATA_LOADER", "NUM_GPUS", "LOG_PERIOD",
            "VERBOSE", "RNG_SEED", "CUDNN", "PREC_TIME", "LAUNCH", "OUT_DIR", "LN", "MEM",
            "DESC", "LOG_DEST", "HOST", "PORT", "CFG_DEST")


@dataclass(frozen=True)
class PyclsSweep:
    """A pycls sweep config converted: the space, the dataset layout, window and defaults."""

    space: SpaceDef
    dataset: str
    window: Window
    n: int  # SETUP.NUM_CONFIGS
    seed: int  # SETUP.RNG_SEED (dsd's generator: same distribution, not pycls's configs)
    name: str  # NAME with '/' → '-'
    ignored: tuple[str, ...]  # BASE_CFG training sections dsd does not use


def _err(path, key: str, msg: str):
    raise DsdError(f"{path}: {key}: {msg}")


def _bot_mul(path, key: str, rand: str, low, high, q) -> dict | int:
    """pycls's bottleneck multiplier m ∈ (0, 1] → dsd's ratio b = 1/m (an integer)."""
    if rand == "constant":
        b = 1 / low
        if low <= 0 or low > 1 or not float(b).is_integer():
            _err(path, key, f"BOT_MUL {low}: dsd's bottleneck ratio 1/BOT_MUL must be an "
                 "integer >= 1")
        return int(b)
    if rand != "power2_uniform" or low <= 0 or high > 1 or q > low:
        _err(path, key, f"{rand}({low}, {high}, {q}) on BOT_MUL: supported is power2_uniform "
             "in (0, 1] (b = 1/BOT_MUL, powers of two)")
    return {"sampler": "power2_uniform", "low": int(round(1 / high)), "high": int(round(1 / low)),
            "q": 1}


def _scalar(path, key: str, s: dict, integer: bool):
    """A pycls int/float/value sampler as a dsd sampler dict."""
    t = s.get("TYPE")
    if t == "value_sampler":
        return {"sampler": "choice", "values": list(s.get("VALUES", []))}
    if t not in ("int_sampler", "float_sampler"):
        _err(path, key, f"sampler TYPE {t!r}: supported here are int_sampler, float_sampler, "
             "value_sampler")
    extra = sorted(set(s) - {"TYPE", "RAND_TYPE", "RANGE", "QUANTIZE"})
    if extra:
        _err(path, key, f"unknown keys {', '.join(extra)}")
    rand = s.get("RAND_TYPE", "uniform")
    low, high = s.get("RANGE", [0, 0])
    q = s.get("QUANTIZE", 1 if t == "int_sampler" else 0.00001)
    if integer and not all(isinstance(x, int) for x in (low, high, q)):
        _err(path, key, f"RANGE {[low, high]} and QUANTIZE {q} must be integers here")
    return {"sampler": rand, "low": low, "high": high, "q": q}


def load_pycls_sweep(path: str | Path) -> PyclsSweep:
    """Read a pycls sweep config and convert its SETUP to a dsd space (errors name the keys)."""
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DsdError(f"{path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise DsdError(f"{path}: YAML syntax error ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("SETUP"), dict):
        raise DsdError(f"{path}: SETUP: missing; not a pycls sweep config (needs SETUP with "
                       "SAMPLERS, CONSTRAINTS, BASE_CFG)")
    setup = cfg["SETUP"]
    unknown = sorted(set(setup) - {"NUM_CONFIGS", "NUM_SAMPLES", "CHUNK_SIZE", "RNG_SEED",
                                   "BASE_CFG", "SAMPLERS", "CONSTRAINTS"})
    if unknown:
        _err(path, "SETUP", f"unsupported keys {', '.join(unknown)}")
    base = setup.get("BASE_CFG") or {}
    model = (base.get("MODEL") or {})
    mtype = model.get("TYPE", "anynet")
    if mtype not in ("regnet", "anynet"):
        _err(path, "SETUP.BASE_CFG.MODEL.TYPE", f"{mtype!r}: dsd samples regnet and anynet")
    sec = mtype.upper()
    tmpl = {**(REGNET_DEFAULTS if mtype == "regnet" else ANYNET_DEFAULTS),
            **(base.get(sec) or {})}
    bad = sorted(set(tmpl) - set(REGNET_DEFAULTS if mtype == "regnet" else ANYNET_DEFAULTS))
    if bad:
        _err(path, f"SETUP.BASE_CFG.{sec}", f"unknown keys {', '.join(bad)}")
    other_model = sorted(k for k in base if k not in (sec, "MODEL", *TRAINING))
    if other_model:
        _err(path, "SETUP.BASE_CFG", f"unsupported keys {', '.join(other_model)} (dsd builds "
             f"{mtype} models from MODEL and {sec})")
    ignored = tuple(k for k in base if k in TRAINING)
    samplers = setup.get("SAMPLERS") or {}
    if not samplers:
        _err(path, "SETUP.SAMPLERS", "missing; nothing to sample")
    arch = (lambda k: k == "REGNET" or (k.startswith("REGNET.") and k[7:] in REGNET_RANDS)
            or k == "REGNET.BOT_MUL") if mtype == "regnet" else (
        lambda k: k.startswith("ANYNET.") and k[7:] in ANYNET_LISTS)
    other = [k for k in samplers if not arch(k)]
    if other:
        allowed = ("REGNET, REGNET.<DEPTH|W0|WA|WM|GROUP_W|BOT_MUL>" if mtype == "regnet"
                   else "ANYNET.<DEPTHS|WIDTHS|BOT_MULS|GROUP_WS>")
        _err(path, "SETUP.SAMPLERS", f"unsupported keys {', '.join(other)} (dsd samples "
             f"{mtype} architectures: {allowed})")
    cons = setup.get("CONSTRAINTS") or {}
    bad = sorted(set(cons) - {"CX", "REGNET"})
    if bad:
        _err(path, "SETUP.CONSTRAINTS", f"unsupported keys {', '.join(bad)}")

    # -- template: stem, block, SE, dataset, strides
    stem = tmpl["STEM_TYPE"]
    if stem not in STEMS:
        _err(path, f"SETUP.BASE_CFG.{sec}.STEM_TYPE", f"{stem!r}: supported {', '.join(STEMS)}")
    dataset, _ = STEMS[stem]
    train_ds = ((base.get("TRAIN") or {}).get("DATASET"))
    if train_ds is not None and train_ds != dataset:
        _err(path, "SETUP.BASE_CFG.TRAIN.DATASET", f"{train_ds!r} with STEM_TYPE {stem} "
             f"(dsd's layout for that stem is {dataset})")
    classes = model.get("NUM_CLASSES", 1000 if dataset == "imagenet" else 10)
    if classes != (1000 if dataset == "imagenet" else 10):
        _err(path, "SETUP.BASE_CFG.MODEL.NUM_CLASSES", f"{classes} with the {dataset} layout")
    if tmpl["BLOCK_TYPE"] not in BLOCKS:
        _err(path, f"SETUP.BASE_CFG.{sec}.BLOCK_TYPE", f"{tmpl['BLOCK_TYPE']!r}: dsd builds "
             f"{', '.join(BLOCKS)} (X/Y blocks)")
    if tmpl["HEAD_W"]:
        _err(path, f"SETUP.BASE_CFG.{sec}.HEAD_W", f"{tmpl['HEAD_W']}: dsd's head has no "
             "extra layer (0)")
    block = "y" if tmpl["SE_ON"] else "x"
    d: dict = {"name": re.sub(r"[^A-Za-z0-9_.-]", "-", str(cfg.get("NAME") or path.stem)),
               "description": " ".join(str(cfg.get("DESC", "")).split())
               or f"pycls sweep {path.name}",
               "samplers": "pycls", "block": block, "stem": {"w": tmpl["STEM_W"]}}
    if block == "y":
        d["se_ratio"] = tmpl["SE_R"]

    if mtype == "regnet":
        if tmpl["STRIDE"] != 2:
            _err(path, "SETUP.BASE_CFG.REGNET.STRIDE", f"{tmpl['STRIDE']}: dsd's stages "
                 "after the first have stride 2")
        d["first_stride"] = 2
        params = {"d": tmpl["DEPTH"], "w0": tmpl["W0"], "wa": tmpl["WA"], "wm": tmpl["WM"],
                  "b": _bot_mul(path, "SETUP.BASE_CFG.REGNET.BOT_MUL", "constant",
                                tmpl["BOT_MUL"], None, None), "g": tmpl["GROUP_W"]}
        for key, s in samplers.items():
            where = f"SETUP.SAMPLERS.{key}"
            if not isinstance(s, dict):
                _err(path, where, "must be a sampler mapping with TYPE")
            if key == "REGNET":
                if s.get("TYPE") != "regnet_sampler":
                    _err(path, where, f"TYPE {s.get('TYPE')!r}: REGNET takes regnet_sampler")
                bad = sorted(set(s) - {"TYPE", *REGNET_SAMPLER})
                if bad:
                    _err(path, where, f"unknown keys {', '.join(bad)}")
                rs = {**REGNET_SAMPLER, **s}
                for k, (p, rand, q) in REGNET_RANDS.items():
                    lo, hi = rs[k]
                    if p == "wa" or p == "wm":
                        lo, hi = float(lo), float(hi)
                    params[p] = {"sampler": rand, "low": lo, "high": hi, "q": q}
                lo, hi = rs["BOT_MUL"]
                params["b"] = (_bot_mul(path, f"{where}.BOT_MUL", "constant", lo, 0, 0)
                               if lo == hi else
                               _bot_mul(path, f"{where}.BOT_MUL", "power2_uniform", lo, hi,
                                        1 / 128))
            elif key.startswith("REGNET.") and key[7:] in REGNET_RANDS:
                p = REGNET_RANDS[key[7:]][0]
                params[p] = _scalar(path, where, s, p in ("d", "w0", "g"))
            elif key == "REGNET.BOT_MUL":
                sc = _scalar(path, where, s, False)
                if sc["sampler"] == "choice":
                    _err(path, where, "value_sampler on BOT_MUL: use power2_uniform")
                params["b"] = _bot_mul(path, where, sc["sampler"], sc["low"], sc["high"],
                                       sc["q"])
            else:
                _err(path, where, "unsupported: dsd samples model architectures (REGNET, "
                     "REGNET.<DEPTH|W0|WA|WM|GROUP_W|BOT_MUL>)")
        stages = (cons.get("REGNET") or {}).get("NUM_STAGES", [4, 4])
        bad = sorted(set(cons.get("REGNET") or {}) - {"NUM_STAGES"})
        if bad:
            _err(path, "SETUP.CONSTRAINTS.REGNET", f"unsupported keys {', '.join(bad)}")
        if len(stages) != 2 or stages[0] != stages[1]:
            _err(path, "SETUP.CONSTRAINTS.REGNET.NUM_STAGES", f"{stages}: dsd samples one "
                 "stage count [n, n]")
        d["stages"] = stages[0]
        d["regnet"] = params
    else:
        if "REGNET" in cons:
            _err(path, "SETUP.CONSTRAINTS.REGNET", "only for MODEL.TYPE regnet")
        lists = {k: tmpl[k] for k in ANYNET_LISTS}
        n_st = {s.get("LENGTH", 0) for s in samplers.values()
                if isinstance(s, dict) and s.get("TYPE") == "list_sampler"}
        n_st |= {len(v) for v in lists.values() if v}
        if len(n_st) != 1:
            _err(path, "SETUP.SAMPLERS", f"stage counts disagree ({sorted(n_st)}); every "
                 "ANYNET list needs the same LENGTH")
        S = n_st.pop()
        params = {}
        for key, s in samplers.items():
            where = f"SETUP.SAMPLERS.{key}"
            k = key[7:] if key.startswith("ANYNET.") else None
            if k not in ANYNET_LISTS or not isinstance(s, dict) or s.get("TYPE") != "list_sampler":
                _err(path, where, "unsupported: dsd samples ANYNET.<DEPTHS|WIDTHS|BOT_MULS|"
                     "GROUP_WS> with list_sampler")
            item = _scalar(path, f"{where}.ITEM_SAMPLER", s.get("ITEM_SAMPLER") or {},
                           k != "BOT_MULS")
            params[ANYNET_LISTS[k]] = (_bot_mul(path, where, item["sampler"], item["low"],
                                                item["high"], item["q"])
                                       if k == "BOT_MULS" else item)
        for k, p in ANYNET_LISTS.items():
            if p in params:
                continue
            vals = lists[k] or ([1] * S if k in ("BOT_MULS", "GROUP_WS") else [])  # pycls: 1
            if not vals or len(set(vals)) != 1:
                _err(path, f"SETUP.BASE_CFG.ANYNET.{k}", f"{vals}: neither sampled nor one "
                     "value for every stage")
            params[p] = (_bot_mul(path, f"SETUP.BASE_CFG.ANYNET.{k}", "constant", vals[0],
                                  None, None) if k == "BOT_MULS" else vals[0])
        strides = tmpl["STRIDES"] or None
        if strides is not None:
            if len(strides) != S or any(s != 2 for s in strides[1:]) or strides[0] not in (1, 2):
                _err(path, "SETUP.BASE_CFG.ANYNET.STRIDES", f"{strides}: dsd's stages are "
                     "[1 or 2, 2, 2, …]")
            d["first_stride"] = strides[0]
        d["stages"] = S
        d["stage_params"] = params
    window = _window(path, cons.get("CX") or {})
    d["window"] = {dataset: window.to_dict()} if window.to_dict() else {}
    space = SpaceDef.from_dict(d, source=str(path))
    n = setup.get("NUM_CONFIGS", 0)
    return PyclsSweep(space=space, dataset=dataset, window=window, n=int(n) if n else 100,
                      seed=int(setup.get("RNG_SEED", 0)), name=d["name"], ignored=ignored)


def _window(path, cx: dict) -> Window:
    bad = sorted(set(cx) - {"FLOPS", "PARAMS", "ACTS"})
    if bad:
        _err(path, "SETUP.CONSTRAINTS.CX", f"unsupported keys {', '.join(bad)}")
    ranges = {}
    for k, v in cx.items():
        if not (isinstance(v, list) and len(v) == 2):
            _err(path, f"SETUP.CONSTRAINTS.CX.{k}", f"{v!r}: must be [LOW, HIGH]")
        lo, hi = (int(round(float(x))) for x in v)
        if lo == hi == 0:
            continue  # pycls: not applied
        if hi == 0:
            _err(path, f"SETUP.CONSTRAINTS.CX.{k}", f"{v}: an open upper end (HIGH = 0) is "
                 "not supported; give HIGH")
        if lo > hi or not math.isfinite(hi):
            _err(path, f"SETUP.CONSTRAINTS.CX.{k}", f"{v}: must have LOW <= HIGH")
        ranges[k.lower()] = (lo, hi)
    return Window(**ranges)
