"""A pycls sweep config (`configs/sweeps/**.yaml`, read by pycls's tools/sweep_setup.py) as a
dsd design space: its SETUP's SAMPLERS and CONSTRAINTS become a space definition, window and
default n, drawn with the `pycls` sampler convention (identical distributions; dsd's own seeded
generator, so not pycls's exact configs).

Sampled as pycls samples (issue 27):
  * duplicates are duplicate *parameter strings*: sweep_setup's `sample_cfgs` keys each draw by
    its "KEY value ..." string and skips a key it already kept (tools/sweep_setup.py 31-35, 55),
    so two draws that build the same network are both kept. `PyclsSweep.dedup` is "params"
    (`dsd.sample.sample(dedup="params")`); dsd's own spaces drop duplicate networks.
  * complexity is counted at TRAIN.IM_SIZE (pycls/core/net.py `complexity`; pycls's default
    224 when the config leaves it out), after the scaler's `round(IM_SIZE / 4) * 4`
    (pycls/models/scaler.py 97): the space's resolution is that constant, so the specs carry
    it and the window is checked at it.

Supported: `REGNET` with `regnet_sampler` (pycls's fixed samplers: DEPTH uniform q 1, W0
log_uniform q 8, WA log_uniform q 0.1, WM log_uniform q 0.001, GROUP_W power2_or_log_uniform
q 8, BOT_MUL power2_uniform q 1/128), `REGNET.<P>` scalar samplers, `ANYNET.<DEPTHS|WIDTHS|
BOT_MULS|GROUP_WS>` list samplers, CONSTRAINTS.CX on flops/params/acts (0 = that end open) and
CONSTRAINTS.REGNET.NUM_STAGES (one count). BASE_CFG fixes the model template: MODEL.TYPE
anynet|regnet, MODEL.ACTIVATION_FUN, BLOCK_TYPE (pycls's four AnyNet blocks), STEM_TYPE
(res_stem_cifar, simple_stem_in, res_stem_in), STEM_W, HEAD_W, SE, strides, BOT_MUL (b =
1/BOT_MUL; BOT_MUL > 1 is an inverted bottleneck), TRAIN.IM_SIZE and the dataset; its other
training keys are reported as ignored. Anything else is an error naming the keys. The blocks
without b and g (res_basic_block, vanilla_block) take GROUP_W 1 and BOT_MUL 1 only: pycls
still rounds their widths with those (blocks.adjust_block_compatibility). (pycls's
sweep_setup also snaps AnyNet group widths above 5 to multiples of 8 through
`scaler.scale_model`; regnet_sampler's values are unchanged by it, AnyNet GROUP_WS samplers
should give 1, 2, 4 or multiples of 8.)
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import yaml

from . import blocks
from .errors import DsdError
from .space import SpaceDef, Window
from .datasets import layouts
from .spec import ratio_json, ratio_of_bot_mul

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
#: pycls's AnyNet stems (anynet.get_stem_fun) → the layout a config without TRAIN.DATASET gets.
STEMS = {"res_stem_cifar": "cifar10", "simple_stem_in": "imagenet", "res_stem_in": "imagenet"}
#: pycls's AnyNet blocks (anynet.get_block_fun); dsd's registry knows them by these aliases.
BLOCKS = ("res_bottleneck_block", "res_bottleneck_linear_block", "res_basic_block",
          "vanilla_block")
#: BASE_CFG.MODEL keys: the architecture's, and those that do not change it.
MODEL_KEYS = ("TYPE", "NUM_CLASSES", "ACTIVATION_FUN", "ACTIVATION_INPLACE", "LOSS_FUN",
              "SCALING_TYPE", "SCALING_FACTOR")
#: pycls's TRAIN.IM_SIZE default (pycls/core/config.py): the resolution complexity is counted at.
IM_SIZE = 224
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
    #: TRAIN.IM_SIZE as pycls counts complexity at it (the space's constant resolution)
    resolution: int = 224
    #: what a duplicate is (`dsd.sample.sample`'s `dedup`): pycls's sweep_setup drops repeated
    #: parameter strings, not repeated networks
    dedup: str = "params"


def _err(path, key: str, msg: str):
    raise DsdError(f"{path}: {key}: {msg}")


def _ratio(path, key: str, m) -> int | str:
    """pycls's bottleneck multiplier m (m < 1 or an integer, as adjust_block_compatibility
    asserts) → dsd's exact ratio b = 1/m: an int, or "p/q"."""
    try:
        r = ratio_of_bot_mul(m)
    except (DsdError, ZeroDivisionError):
        r = None
    if r is None or (m > 1 and Fraction(r).numerator != 1):
        _err(path, key, f"BOT_MUL {m}: must be in (0, 1] or an integer > 1 (b = 1/BOT_MUL)")
    return ratio_json(r)


def _bot_mul(path, key: str, rand: str, low, high, q) -> dict | int | str:
    """A BOT_MUL constant or power2_uniform sampler → dsd's b = 1/BOT_MUL (the same powers of
    two, each as likely)."""
    if rand == "constant":
        return _ratio(path, key, low)
    if rand != "power2_uniform" or low <= 0 or q > low:
        _err(path, key, f"{rand}({low}, {high}, {q}) on BOT_MUL: supported is power2_uniform "
             "(b = 1/BOT_MUL, powers of two)")
    lo, hi = 1 / Fraction(str(high)), 1 / Fraction(str(low))
    as_num = (lambda r: int(r) if r.denominator == 1 else float(r))
    return {"sampler": "power2_uniform", "low": as_num(lo), "high": as_num(hi),
            "q": as_num(min(lo, Fraction(1)))}


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
    cfg = _read(path)
    setup = cfg["SETUP"]
    base = setup.get("BASE_CFG") or {}
    mtype = (base.get("MODEL") or {}).get("TYPE", "anynet")
    if mtype not in ("regnet", "anynet"):
        _err(path, "SETUP.BASE_CFG.MODEL.TYPE", f"{mtype!r}: dsd samples regnet and anynet")
    sec = mtype.upper()
    tmpl = _section(path, base, mtype)
    samplers, cons = _samplers(path, setup, mtype)
    d, dataset = _template(path, base, sec, tmpl)
    d["name"] = re.sub(r"[^A-Za-z0-9_.-]", "-", str(cfg.get("NAME") or path.stem))
    d["description"] = (" ".join(str(cfg.get("DESC", "")).split())
                        or f"pycls sweep {path.name}")
    if mtype == "regnet":
        d["stages"], d["regnet"], d["first_stride"] = _regnet(path, tmpl, samplers, cons)
    else:
        d["stages"], d["stage_params"], d["first_stride"] = _anynet(path, tmpl, samplers)
    _no_b_g(path, sec, d)
    window = _window(path, cons.get("CX") or {})
    d["window"] = {dataset: window.to_dict()} if window.to_dict() else {}
    space = SpaceDef.from_dict({k: v for k, v in d.items() if v is not None}, source=str(path))
    n = setup.get("NUM_CONFIGS", 0)
    return PyclsSweep(space=space, dataset=dataset, window=window, n=int(n) if n else 100,
                      seed=int(setup.get("RNG_SEED", 0)), name=d["name"],
                      ignored=tuple(k for k in base if k in TRAINING),
                      resolution=d["resolution"])


def _read(path: Path) -> dict:
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DsdError(f"{path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise DsdError(f"{path}: YAML syntax error ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("SETUP"), dict):
        raise DsdError(f"{path}: SETUP: missing; not a pycls sweep config (needs SETUP with "
                       "SAMPLERS, CONSTRAINTS, BASE_CFG)")
    unknown = sorted(set(cfg["SETUP"]) - {"NUM_CONFIGS", "NUM_SAMPLES", "CHUNK_SIZE",
                                          "RNG_SEED", "BASE_CFG", "SAMPLERS", "CONSTRAINTS"})
    if unknown:
        _err(path, "SETUP", f"unsupported keys {', '.join(unknown)}")
    return cfg


def _section(path, base: dict, mtype: str) -> dict:
    """BASE_CFG's REGNET/ANYNET section over pycls's defaults; other sections checked."""
    sec, defaults = mtype.upper(), REGNET_DEFAULTS if mtype == "regnet" else ANYNET_DEFAULTS
    tmpl = {**defaults, **(base.get(sec) or {})}
    bad = sorted(set(tmpl) - set(defaults))
    if bad:
        _err(path, f"SETUP.BASE_CFG.{sec}", f"unknown keys {', '.join(bad)}")
    other_model = sorted(k for k in base if k not in (sec, "MODEL", *TRAINING))
    if other_model:
        _err(path, "SETUP.BASE_CFG", f"unsupported keys {', '.join(other_model)} (dsd builds "
             f"{mtype} models from MODEL and {sec})")
    model = base.get("MODEL") or {}
    bad = sorted(set(model) - set(MODEL_KEYS))
    if bad:
        _err(path, "SETUP.BASE_CFG.MODEL", f"unsupported keys {', '.join(bad)}")
    if float(model.get("SCALING_FACTOR", 1.0)) != 1.0:
        _err(path, "SETUP.BASE_CFG.MODEL.SCALING_FACTOR", f"{model['SCALING_FACTOR']}: dsd "
             "samples unscaled models (1.0)")
    return tmpl


def _samplers(path, setup: dict, mtype: str) -> tuple[dict, dict]:
    """SETUP.SAMPLERS (architecture keys only) and SETUP.CONSTRAINTS, checked."""
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
    if mtype != "regnet" and "REGNET" in cons:
        _err(path, "SETUP.CONSTRAINTS.REGNET", "only for MODEL.TYPE regnet")
    return samplers, cons


def _template(path, base: dict, sec: str, tmpl: dict) -> tuple[dict, str]:
    """The space keys BASE_CFG fixes (block, SE, stem, head, activation, resolution) and the
    dataset layout."""
    stem, block = tmpl["STEM_TYPE"], tmpl["BLOCK_TYPE"]
    if stem not in STEMS:
        _err(path, f"SETUP.BASE_CFG.{sec}.STEM_TYPE", f"{stem!r}: unsupported; allowed: "
             f"{', '.join(STEMS)}")
    if block not in BLOCKS:
        _err(path, f"SETUP.BASE_CFG.{sec}.BLOCK_TYPE", f"{block!r}: unsupported; allowed: "
             f"{', '.join(BLOCKS)}")
    model, train = base.get("MODEL") or {}, base.get("TRAIN") or {}
    dataset = train.get("DATASET", STEMS[stem])
    known = layouts()
    if dataset not in known:
        _err(path, "SETUP.BASE_CFG.TRAIN.DATASET", f"{dataset!r}: dsd's layouts are "
             f"{', '.join(known)}")
    classes = model.get("NUM_CLASSES", known[dataset].num_classes)
    if classes != known[dataset].num_classes:
        _err(path, "SETUP.BASE_CFG.MODEL.NUM_CLASSES", f"{classes} with the {dataset} layout")
    se = tmpl["SE_R"] if tmpl["SE_ON"] else 0.0
    name = blocks.block_name(block, se)
    d = {"samplers": "pycls", "block": name, "stem": {"w": tmpl["STEM_W"], "type": stem},
         "head": {"w": tmpl["HEAD_W"]}, "resolution": _im_size(path, train),
         "activation": _activation(path, model),
         # pycls's basic and vanilla blocks take SE_R and ignore it
         "se_ratio": se if blocks.get_block(name).se != "never" and se else None}
    return d, dataset


def _im_size(path, train: dict) -> int:
    """TRAIN.IM_SIZE as pycls counts complexity at it: after scale_model's rounding to a
    multiple of 4 (scaler.py: round(IM_SIZE * 1.0 / 4) * 4)."""
    im = train.get("IM_SIZE", IM_SIZE)
    if isinstance(im, bool) or not isinstance(im, int) or im < 8:
        _err(path, "SETUP.BASE_CFG.TRAIN.IM_SIZE", f"{im!r}: must be an integer >= 8")
    return round(im / 4) * 4


def _activation(path, model: dict) -> str:
    act = str(model.get("ACTIVATION_FUN", "relu")).lower()  # pycls lowercases it
    try:
        return blocks.activation_name(act)
    except DsdError as e:
        _err(path, "SETUP.BASE_CFG.MODEL.ACTIVATION_FUN", str(e))


def _regnet(path, tmpl: dict, samplers: dict, cons: dict) -> tuple[int, dict, int]:
    """(stage count, the regnet parameters, first stride: pycls strides every stage, CIFAR
    too) of a regnet config."""
    if tmpl["STRIDE"] != 2:
        _err(path, "SETUP.BASE_CFG.REGNET.STRIDE", f"{tmpl['STRIDE']}: dsd's stages "
             "after the first have stride 2")
    params = {"d": tmpl["DEPTH"], "w0": tmpl["W0"], "wa": tmpl["WA"], "wm": tmpl["WM"],
              "b": _ratio(path, "SETUP.BASE_CFG.REGNET.BOT_MUL", tmpl["BOT_MUL"]),
              "g": tmpl["GROUP_W"]}
    for key, s in samplers.items():
        where = f"SETUP.SAMPLERS.{key}"
        if not isinstance(s, dict):
            _err(path, where, "must be a sampler mapping with TYPE")
        if key == "REGNET":
            params.update(_regnet_sampler(path, where, s))
        elif key == "REGNET.BOT_MUL":
            sc = _scalar(path, where, s, False)
            if sc["sampler"] == "choice":
                _err(path, where, "value_sampler on BOT_MUL: use power2_uniform")
            params["b"] = _bot_mul(path, where, sc["sampler"], sc["low"], sc["high"], sc["q"])
        else:
            p = REGNET_RANDS[key[7:]][0]
            params[p] = _scalar(path, where, s, p in ("d", "w0", "g"))
    stages = (cons.get("REGNET") or {}).get("NUM_STAGES", [4, 4])
    bad = sorted(set(cons.get("REGNET") or {}) - {"NUM_STAGES"})
    if bad:
        _err(path, "SETUP.CONSTRAINTS.REGNET", f"unsupported keys {', '.join(bad)}")
    if len(stages) != 2 or stages[0] != stages[1]:
        _err(path, "SETUP.CONSTRAINTS.REGNET.NUM_STAGES", f"{stages}: dsd samples one "
             "stage count [n, n]")
    return stages[0], params, 2


def _regnet_sampler(path, where: str, s: dict) -> dict:
    """regnet_sampler's ranges with its fixed rand types and q (pycls samplers.py 39-48)."""
    if s.get("TYPE") != "regnet_sampler":
        _err(path, where, f"TYPE {s.get('TYPE')!r}: REGNET takes regnet_sampler")
    bad = sorted(set(s) - {"TYPE", *REGNET_SAMPLER})
    if bad:
        _err(path, where, f"unknown keys {', '.join(bad)}")
    rs = {**REGNET_SAMPLER, **s}
    params = {}
    for k, (p, rand, q) in REGNET_RANDS.items():
        lo, hi = rs[k]
        if p in ("wa", "wm"):
            lo, hi = float(lo), float(hi)
        params[p] = {"sampler": rand, "low": lo, "high": hi, "q": q}
    lo, hi = rs["BOT_MUL"]
    params["b"] = (_ratio(path, f"{where}.BOT_MUL", lo) if lo == hi else
                   _bot_mul(path, f"{where}.BOT_MUL", "power2_uniform", lo, hi, 1 / 128))
    return params


def _anynet(path, tmpl: dict, samplers: dict) -> tuple[int, dict, int | None]:
    """(stage count, per-stage parameters, first stride or None) of an anynet config."""
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
        k = key[7:]
        if not isinstance(s, dict) or s.get("TYPE") != "list_sampler":
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
        params[p] = (_ratio(path, f"SETUP.BASE_CFG.ANYNET.{k}", vals[0])
                     if k == "BOT_MULS" else vals[0])
    strides = tmpl["STRIDES"] or None
    if strides is not None and (len(strides) != S or any(s != 2 for s in strides[1:])
                                or strides[0] not in (1, 2)):
        _err(path, "SETUP.BASE_CFG.ANYNET.STRIDES", f"{strides}: dsd's stages are "
             "[1 or 2, 2, 2, …]")
    return S, params, strides[0] if strides else None


def _no_b_g(path, sec: str, d: dict) -> None:
    """Blocks without b and g (res_basic_block, vanilla_block): pycls still rounds their widths
    with GROUP_W and BOT_MUL (adjust_block_compatibility), so those must be 1; then left out."""
    uses = blocks.get_block(d["block"]).uses
    params = d.get("regnet") or d["stage_params"]
    names = {"b": "BOT_MUL", "g": "GROUP_W"} if sec == "REGNET" else {
        "b": "BOT_MULS", "g": "GROUP_WS"}
    for p, key in names.items():
        if p in uses:
            continue
        if _single(params[p]) != 1:
            _err(path, f"{sec}.{key}", f"{params[p]!r} (as b = 1/BOT_MUL, g) with BLOCK_TYPE "
                 f"{d['block']}: must be 1 (pycls rounds that block's widths with it; dsd's "
                 f"{d['block']} block has no {p})")
        del params[p]


def _single(v):
    """The one value a dsd parameter can take (a constant, or a sampler over one value)."""
    if not isinstance(v, dict):
        return v
    if v.get("sampler") == "choice":
        return v["values"][0] if len(set(v["values"])) == 1 else None
    return v["low"] if v.get("low") == v.get("high") else None


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
