"""Trained populations from elsewhere, as store rows (`dsd import`): a pycls sweep (`sweep.json`
as written by pycls's tools/sweep_collect.py: per job its cfg, complexity and per-epoch test
errors) and the NDS data release (per-space JSON files, e.g. ResNeXt-A.json, DARTS_in.json: per
model `net`, `flops`, `params`, `optim`, per-epoch `test_ep_top1`, `min_test_top1`; some files
hold {"top": [...], "mid": [...]}).

pycls: X-block AnyNets and RegNets (with or without SE) become ModelSpecs, kept only when dsd's
analytic complexity of the rebuilt spec equals the file's flops and params (so the spec is the
network that was trained). NDS: bottleneck, basic and vanilla AnyNets become ModelSpecs (x,
basic, vanilla) when dsd's params equal the file's and NDS's older flops count of the spec
(`nds_flops`) equals the file's; they carry dsd's own flops. Every other model (NAS cells, a
stem or block dsd lacks, a count that disagrees) is stored opaque, with the file's complexity
and errors, for analysis only. Results carry the source's recipe (the training settings every
model shares; per-model settings go to the result's provenance), so they never mix with
dsd-trained ones.
Errors name the file and the field.
"""
from __future__ import annotations

import hashlib
import json
import math
from fractions import Fraction
from dataclasses import dataclass, field
from pathlib import Path

from .complexity import complexity
from .errors import DsdError
from .regnet import regnet_spec
from .store import unique_hashes
from .blocks import block_name, get_block, stem_name
from .spec import layout, make_spec, ratio_of_bot_mul

#: Which final error a result gets: the last epoch's (dsd's definition) or the minimum over
#: epochs (NDS's `min_test_top1`, pycls's `min_top1_err`).
#: `ema` (pycls sweeps): the EMA model's best test error, `test_ema_epoch.min_top1_err`
#: minimized, which is the `error` metric of pycls's own sweep analysis (pycls/sweep/analysis.py).
ERRORS = ("final", "min", "ema")
#: pycls cfg sections that define training (the recipe of an imported sweep).
TRAINING = ("OPTIM", "TRAIN", "TEST", "BN", "RNG_SEED")


@dataclass
class Imported:
    """An imported population, ready for `Store.add_imported_sweep`."""

    name: str
    space: str
    dataset: str
    source: str  # "pycls" | "nds"
    source_info: dict
    recipe: str
    recipe_json: dict
    models: list[dict] = field(default_factory=list)

    @property
    def opaque(self) -> int:
        return sum(m["opaque"] for m in self.models)


class _Where:
    """The file and the field path of an error."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, msg: str):
        raise DsdError(f"{self.path}: {key}: {msg}")

    def get(self, d, key: str, where: str, kind=None):
        if not isinstance(d, dict) or key not in d:
            self.fail(f"{where}.{key}" if where else key, "missing")
        v = d[key]
        if kind is not None and (isinstance(v, bool) or not isinstance(v, kind)):
            self.fail(f"{where}.{key}", f"got {v!r}; must be {_kind_name(kind)}")
        return v


def _kind_name(kind) -> str:
    names = {list: "a list", dict: "a mapping", str: "a string"}
    if isinstance(kind, tuple):
        return "a number" if set(kind) <= {int, float} else " or ".join(map(_kind_name, kind))
    return names.get(kind, kind.__name__)


def _load_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DsdError(f"{path}: cannot read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DsdError(f"{path}: not JSON ({e})") from None


def _opaque(family: str, net: dict, reason: str) -> tuple[str, str, bool, str]:
    text = json.dumps({"opaque": family, **net}, sort_keys=True)
    return text, hashlib.sha1(text.encode()).hexdigest()[:12], True, reason


def _checked(spec, flops: int, params: int, family: str, net: dict):
    """(spec JSON, hash, opaque, note): the spec when dsd's count equals the file's."""
    cx = complexity(spec)
    if (cx["flops"], cx["params"]) != (flops, params):
        return _opaque(family, net, f"dsd's count of the rebuilt spec (flops {cx['flops']}, "
                                    f"params {cx['params']}) differs from the file's "
                                    f"({flops}, {params})")
    return spec.to_json(), spec.id, False, ""


def _finish(models: list[dict]) -> list[dict]:
    """Number models and make hashes unique (reruns of one network are separate models,
    `store.unique_hashes`; the k-th rerun also says so in its sampled values)."""
    for i, (m, h) in enumerate(zip(models, unique_hashes([m["hash"] for m in models]))):
        if h != m["hash"]:
            m["hash"], m["sampled"]["rerun"] = h, int(h.rsplit("-r", 1)[1])
        m["index"] = i
    return models


def _result(errors: list, *, error: str, epochs: list, complete: bool, why: str,
            top5: list | None = None, seconds=None, seed=None, provenance=None) -> dict:
    """A result from per-epoch test errors: done, diverged (non-finite) or failed (incomplete)."""
    base = {"epochs": epochs, "seed": seed, "seconds": seconds, "provenance": provenance or {}}
    if not errors or not complete:
        return {**base, "status": "failed", "error": f"incomplete in the source: {why}"}
    finite = [e for e in errors if isinstance(e, (int, float)) and math.isfinite(e)]
    if len(finite) != len(errors):
        return {**base, "status": "diverged", "error": "non-finite test error in the source"}
    i = len(errors) - 1 if error == "final" else min(range(len(errors)), key=errors.__getitem__)
    # min and ema (an EMA model's errors, pycls) both take the best epoch
    t5 = top5[i] if top5 and i < len(top5) else None
    train_loss = epochs[i][1] if epochs and i < len(epochs) else None
    return {**base, "status": "done", "top1": float(errors[i]), "top5": t5,
            "train_loss": train_loss}


def _shared(configs: list[dict]) -> tuple[dict, list[str]]:
    """(settings equal in every config, sorted keys that differ), on flattened keys."""
    flat = [_flatten(c) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    same = {k: flat[0].get(k) for k in keys if all(f.get(k) == flat[0].get(k) for f in flat)}
    return same, [k for k in keys if k not in same]


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# --------------------------------------------------------------------------------------------
# pycls sweep.json


def _pycls_model(w: _Where, cfg: dict, where: str, dataset: str, flops: int, params: int):
    model = w.get(cfg, "MODEL", where, dict)
    mtype = model.get("TYPE", "anynet")
    sec = cfg.get(mtype.upper()) or {}
    net = {"MODEL": model, mtype.upper(): sec}
    if mtype not in ("regnet", "anynet"):
        return _opaque(mtype, {"cfg": net}, f"MODEL.TYPE {mtype}")
    if mtype == "regnet":
        for key in ("DEPTH", "W0", "WA", "WM"):
            w.get(sec, key, f"{where}.REGNET")
    try:
        spec = _pycls_spec(mtype, sec, model, cfg.get("TRAIN") or {}, dataset)
    except (DsdError, ValueError, TypeError, ZeroDivisionError) as e:
        return _opaque(mtype, net, f"not a network dsd builds ({e})")
    return _checked(spec, flops, params, mtype, net)


def _pycls_spec(mtype: str, sec: dict, model: dict, train: dict, dataset: str):
    """The network of a pycls AnyNet or RegNet cfg section, with pycls's defaults for what it
    leaves out: any registered block and stem by pycls's name, SE, HEAD_W, ACTIVATION_FUN and
    TRAIN.IM_SIZE (pycls counts complexity there)."""
    se = float(sec.get("SE_R", 0.25)) if sec.get("SE_ON") else 0.0
    block = block_name(sec.get("BLOCK_TYPE", "res_bottleneck_block"), se)
    stem, stem_stride = stem_name(sec.get("STEM_TYPE", "simple_stem_in"))
    kw = dict(dataset=dataset, block=block, stem=stem, stem_stride=stem_stride,
              se_ratio=se if get_block(block).se != "never" else 0.0,
              stem_w=sec.get("STEM_W", 32), head_w=sec.get("HEAD_W", 0),
              activation=str(model.get("ACTIVATION_FUN", "relu")).lower(),
              resolution=train.get("IM_SIZE", layout(dataset).resolution))
    if mtype == "regnet":
        spec, _ = regnet_spec(sec["DEPTH"], sec["W0"], sec["WA"], sec["WM"],
                              ratio_of_bot_mul(sec.get("BOT_MUL", 1.0)), sec.get("GROUP_W", 16),
                              first_stride=sec.get("STRIDE", 2), **kw)
        return spec  # a STRIDE other than 2 gives other flops than the file's: opaque
    ds, ws = sec.get("DEPTHS") or [], sec.get("WIDTHS") or []
    n = len(ds)
    bs = [ratio_of_bot_mul(m) for m in (sec.get("BOT_MULS") or [1.0] * n)]
    gs = sec.get("GROUP_WS") or [1] * n
    return make_spec(ds, ws, bs, gs, strides=sec.get("STRIDES") or [2] * n, **kw)


def read_pycls_sweep(path: str | Path, *, name: str | None = None, error: str = "final"
                     ) -> Imported:
    """A pycls `sweep.json` (a list of jobs: cfg, complexity, train_epoch, test_epoch)."""
    path, w = Path(path), _Where(Path(path))
    jobs = _load_json(path)
    if not isinstance(jobs, list) or not jobs:
        w.fail("(top level)", "must be a non-empty list of jobs (pycls tools/sweep_collect.py)")
    cfgs, datasets = [], set()
    for i, job in enumerate(jobs):
        cfg = w.get(job, "cfg", f"[{i}]", dict)
        cfgs.append(cfg)
        datasets.add((cfg.get("TRAIN") or {}).get("DATASET", "imagenet"))
    if len(datasets) != 1 or not datasets <= {"cifar10", "imagenet"}:
        w.fail("[*].cfg.TRAIN.DATASET", f"got {sorted(map(str, datasets))}; one of cifar10, "
               "imagenet for the whole sweep")
    dataset = datasets.pop()
    models = []
    for i, (job, cfg) in enumerate(zip(jobs, cfgs)):
        where = f"[{i}]"
        cx = w.get(job, "complexity", where, dict)
        flops = int(w.get(cx, "flops", f"{where}.complexity", (int, float)))
        params = int(w.get(cx, "params", f"{where}.complexity", (int, float)))
        acts = int(w.get(cx, "acts", f"{where}.complexity", (int, float)))
        spec, h, opaque, note = _pycls_model(w, cfg, f"{where}.cfg", dataset, flops, params)
        test = job.get("test_epoch") or {}
        if error == "ema":
            test = w.get(job, "test_ema_epoch", where, dict)
        train = job.get("train_epoch") or {}
        errs = test.get("top1_err") or []
        if errs and not isinstance(errs, list):
            w.fail(f"{where}.test_epoch.top1_err", f"got {errs!r}; must be a list")
        ind = test.get("epoch_ind") or list(range(1, len(errs) + 1))
        mx = (test.get("epoch_max") or [cfg.get("OPTIM", {}).get("MAX_EPOCH", len(errs))])[-1]
        by_ep = {e: k for k, e in enumerate(train.get("epoch_ind") or [])}
        epochs = []
        for k, (e, err) in enumerate(zip(ind, errs)):
            t = by_ep.get(e)
            epochs.append((int(e), _at(train.get("loss"), t), err,
                           _at(test.get("top5_err"), k), _at(train.get("lr"), t),
                           _at(train.get("time_epoch"), t)))
        secs = [s for s in (train.get("time_epoch") or []) if isinstance(s, (int, float))]
        complete = bool(ind) and ind[-1] == mx
        res = _result(errs, error=error, epochs=epochs, complete=complete,
                      why=f"{ind[-1] if ind else 0}/{mx} epochs", top5=test.get("top5_err"),
                      seconds=sum(secs) if secs else None, seed=cfg.get("RNG_SEED"),
                      provenance={"source": "pycls", "file": path.name,
                                  "log_file": job.get("log_file"),
                                  "train": _flatten({k: cfg[k] for k in TRAINING if k in cfg}),
                                  **({"opaque": note} if opaque else {})})
        sampled = {"source_cfg": {k: cfg.get(k) for k in ("MODEL", "REGNET", "ANYNET")
                                  if k in cfg}}
        models.append({"hash": h, "spec": spec, "sampled": sampled, "flops": flops,
                       "params": params, "acts": acts, "opaque": opaque, "result": res})
    same, varies = _shared([{k: c[k] for k in TRAINING if k in c} for c in cfgs])
    base = path.parent.name if path.stem == "sweep" else path.stem
    recipe_json = {"source": "pycls", "error": error, "shared": same, "varies": varies}
    info = {"format": "pycls-sweep", "file": path.name, "sha1": _sha1(path), "jobs": len(jobs),
            "error": error}
    return Imported(name=name or f"pycls-{base}", space=f"pycls:{base}", dataset=dataset,
                    source="pycls", source_info=info, recipe="pycls", recipe_json=recipe_json,
                    models=_finish(models))


def _at(xs, k):
    return xs[k] if isinstance(xs, list) and k is not None and k < len(xs) else None


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12]


# --------------------------------------------------------------------------------------------
# NDS data release
#
# A record's `net` (NDS's AnyNet, as trained with the 2019 pycls; issue 27):
# the lists ds, ws, ss, bot_muls, num_gs begin with the **stem** (ws[0] = stem width, ss[0] =
# stem stride, ds[0] = 1, bot_muls[0] = 0, num_gs[0] = 1); entries 1.. are the stages. num_gs
# is a group **count** (pycls 996cb1d: `groups=num_gs`), so dsd's group width is w_b // num_gs,
# with w_b = int(round(w · bot_mul)). The head is pool + fc (bias). The files' flops are an
# older count than pycls's and dsd's today: see `nds_flops`.


#: NDS block types: (NNI's model family, dsd's registry block). NNI's db_gen.py matches the
#: prefix (res_bottleneck*, res_basic*, double_plain*); dsd builds only these exact names.
NDS_BLOCKS = {"res_bottleneck_block": ("residual_bottleneck", "x"),
              "res_basic_block": ("residual_basic", "basic"),
              "double_plain_block": ("vanilla", "vanilla")}
#: Flops NDS's count adds per BatchNorm output element (found by reproducing real records).
NDS_BN_FLOPS = 5
#: Stems tried for a record, per dataset: (dsd stem, its stride, or None for the record's ss[0]).
#: CIFAR-10: pycls res_stem_cifar = 3×3 conv at the record's stride (1). ImageNet (`_in` files):
#: no real record seen; ResNet's 7×7 + max-pool stem, then the 3×3 stem, whichever reproduces
#: the file's params and flops exactly.
NDS_STEMS = {"cifar10": (("simple", None),), "imagenet": (("res", 2), ("simple", None))}


def nds_flops(spec) -> int:
    """The flops the NDS data release records for `spec`: dsd's (today's pycls) flops plus
    `NDS_BN_FLOPS` = 5 per BatchNorm output element.

    Found from real records (NNI's printout of ResNeXt-A, ResNet and Vanilla CIFAR-10 records:
    69,890,986 = 61,044,906 + 5·1,769,216; 184,519,578 = 180,277,658 + 5·848,384;
    208,363,930 = 204,042,650 + 5·864,256), with params equal to dsd's (issue 27; fvcore's
    norm-layer flops use the same 5 per element). Defined for NDS's blocks (x without SE,
    basic, vanilla), the simple and res stems, and no head conv; anything else raises
    DsdError."""
    from .blocks.bottleneck import bottleneck_width

    if spec.block not in ("x", "basic", "vanilla") or spec.se_ratio or spec.head_w:
        raise DsdError(f"nds_flops: NDS's count is known for blocks x, basic, vanilla without "
                       f"SE or head conv, not {spec.block} (se {spec.se_ratio}, head_w "
                       f"{spec.head_w})")
    h = (spec.resolution - 1) // spec.stem_stride + 1          # stem conv, then its BN
    bn = spec.stem_w * h * h
    if spec.stem == "res":
        h = (h - 1) // 2 + 1                                     # max-pool: no BN
    w_in = spec.stem_w
    for st in spec.stages:
        for j in range(st.d):
            s = st.stride if j == 0 else 1
            h_out = (h - 1) // s + 1
            if spec.block == "x":
                w_b = bottleneck_width(st.w, st.b)
                bn += w_b * h * h + w_b * h_out * h_out + st.w * h_out * h_out
            else:
                bn += 2 * st.w * h_out * h_out
            if spec.block != "vanilla" and (w_in != st.w or s != 1):
                bn += st.w * h_out * h_out                        # projection's BN
            w_in, h = st.w, h_out
    return complexity(spec)["flops"] + NDS_BN_FLOPS * bn


def _nds_ratio(bm) -> int | Fraction | None:
    """NDS's bot_mul → dsd's b = 1/bot_mul, exact (None when not a positive number)."""
    try:
        return ratio_of_bot_mul(bm)
    except (DsdError, ZeroDivisionError):
        return None


def _nds_spec(net: dict, block: str, dataset: str, stem: str, stem_stride: int | None):
    """(ModelSpec, None) for one stem choice, or (None, why dsd cannot express the net)."""
    from .blocks.bottleneck import bottleneck_width
    from .spec import ModelSpec, Stage, layout

    ds, ws, ss = net["ds"], net["ws"], net["ss"]
    n = len(ds)
    bms = net.get("bot_muls") or [1.0] * n
    ngs = net.get("num_gs") or [1] * n
    stages = []
    for i in range(1, n):
        if block == "x":
            b = _nds_ratio(bms[i])
            if b is None or not isinstance(ngs[i], int) or ngs[i] < 1:
                return None, f"stage {i}: bot_mul {bms[i]!r} / num_gs {ngs[i]!r}"
            w_b = int(round(ws[i] * bms[i]))                     # pycls's bottleneck width
            if bottleneck_width(ws[i], b) != w_b or w_b % ngs[i]:
                return None, (f"stage {i}: bottleneck width {w_b} and {ngs[i]} groups are not "
                              f"a dsd stage")
            b, g = (int(b) if b.denominator == 1 else b), w_b // ngs[i]
        else:
            if any(v not in (None, 0, 1) for v in (bms[i], ngs[i])):
                return None, f"stage {i}: {block} block with bot_mul {bms[i]} num_gs {ngs[i]}"
            b, g = 1, 1
        stages.append(Stage(ds[i], ws[i], b, g, ss[i]))
    lay = layout(dataset)
    try:
        spec = ModelSpec(block=block, stages=tuple(stages), stem_w=ws[0],
                         stem_stride=stem_stride or ss[0], num_classes=lay.num_classes,
                         resolution=lay.resolution, stem=stem)
    except DsdError as e:
        return None, str(e)
    return spec, None


def _nds_model(w: _Where, net: dict, where: str, dataset: str, flops: int, params: int):
    """(spec JSON, hash, opaque, note, dsd's complexity or None) of one record's net."""
    if "genotype" in net:
        return (*_opaque("nas_cell", net, "NAS cell"), None)
    bt = w.get(net, "block_type", where, str)
    family, block = next(((f, b if bt == p else None) for p, (f, b) in NDS_BLOCKS.items()
                          if bt.startswith(p.rsplit("_", 1)[0])), (None, None))
    if family is None:
        w.fail(f"{where}.block_type", f"got {bt!r}; known: {', '.join(NDS_BLOCKS)} (or a "
               "cell genotype)")
    lists = {k: w.get(net, k, where, list) for k in ("ds", "ws", "ss")}
    lists.update({k: net[k] for k in ("bot_muls", "num_gs") if net.get(k)})
    for k, v in lists.items():
        if not isinstance(v, list) or len(v) != len(lists["ds"]):
            w.fail(f"{where}.{k}", f"ds, ws, ss (and bot_muls, num_gs when given) must be lists "
                   f"of one length, got {', '.join(f'{a} {_len(b)}' for a, b in lists.items())}")
        if k in ("ds", "ws", "ss") and any(isinstance(x, bool) or not isinstance(x, int)
                                           for x in v):
            w.fail(f"{where}.{k}", f"got {v!r}; must be integers")
    if len(lists["ds"]) < 2:
        w.fail(f"{where}.ds", "needs the stem entry and at least one stage")
    if block is None:
        return (*_opaque(family, net, f"block_type {bt}: no dsd block"), None)
    if net.get("se_r"):
        return (*_opaque(family, net, f"se_r {net['se_r']}: NDS's count of SE is unknown"),
                None)
    why = f"no stem of {dataset} fits"
    for stem, stride in NDS_STEMS[dataset]:
        spec, bad = _nds_spec(net, block, dataset, stem, stride)
        if spec is None:
            why = bad
            continue
        cx = complexity(spec)
        nf = nds_flops(spec)
        if (nf, cx["params"]) == (flops, params):
            return spec.to_json(), spec.id, False, "", cx
        why = (f"stem {stem}: NDS's count of the rebuilt spec (flops {nf}, params "
               f"{cx['params']}) differs from the file's ({flops}, {params})")
    return (*_opaque(family, net, why), None)


def _len(v) -> str:
    return str(len(v)) if isinstance(v, list) else repr(v)


def read_nds(path: str | Path, *, name: str | None = None, dataset: str | None = None,
             error: str = "final") -> Imported:
    """An NDS per-space file: a list of models, or {"top": [...], "mid": [...]}; ImageNet when
    the file name ends in `_in` (as NNI's db_gen.py), else CIFAR-10, unless `dataset` is given.

    Bottleneck, basic and vanilla nets become ModelSpecs when dsd's params equal the file's and
    `nds_flops` of the spec equals the file's flops; the model then carries dsd's own flops,
    params and acts, the file's numbers staying in `sampled` (file_flops, file_params). NAS
    cells and nets dsd cannot express are opaque, with the file's numbers. The error is the
    final epoch's (`error="final"`, dsd's definition and the default) or NDS's
    `min_test_top1` (`error="min"`, the error every figure of the NDS notebooks uses). A `null`
    epoch error is an epoch the source did not record (skipped; the final one must be there)."""
    path, w = Path(path), _Where(Path(path))
    data = _load_json(path)
    if isinstance(data, dict) and set(data) >= {"top", "mid"}:
        parts = [(p, data[p]) for p in ("top", "mid")]
    elif isinstance(data, list):
        parts = [("", data)]
    else:
        w.fail("(top level)", "must be a list of models or {\"top\": [...], \"mid\": [...]}")
    stem = path.stem
    dataset = dataset or ("imagenet" if stem.endswith("_in") or "_in_" in stem else "cifar10")
    if dataset not in NDS_STEMS:
        raise DsdError(f"--dataset {dataset!r}: allowed {', '.join(NDS_STEMS)}")
    models, optims = [], []
    for part, items in parts:
        if not isinstance(items, list):
            w.fail(part or "(top level)", "must be a list of models")
        for i, item in enumerate(items):
            where = f"{part}[{i}]" if part else f"[{i}]"
            net = w.get(item, "net", where, dict)
            flops = int(w.get(item, "flops", where, (int, float)))
            params = int(w.get(item, "params", where, (int, float)))
            optim = w.get(item, "optim", where, dict)
            errs = w.get(item, "test_ep_top1", where, list)
            if error == "min":
                w.get(item, "min_test_top1", where, (int, float))
            spec, h, opaque, note, cx = _nds_model(w, net, f"{where}.net", dataset, flops,
                                                   params)
            loss = item.get("train_ep_loss") or []
            kept = [k for k, e in enumerate(errs) if e is not None]
            epochs = [(k + 1, _at(loss, k), errs[k], None, None, None) for k in kept]
            max_ep = optim.get("max_ep", len(errs))
            complete = len(errs) == max_ep and bool(errs) and errs[-1] is not None
            why = (f"{len(errs)}/{max_ep} epochs" if len(errs) != max_ep
                   else "the final epoch's error is not recorded")
            prov = {"source": "nds", "file": path.name, "part": part or None,
                    "job_id": item.get("job_id"), "optim": optim,
                    **({"opaque": note} if opaque else {}),
                    **({"epochs_unrecorded": len(errs) - len(kept)} if len(kept) < len(errs)
                       else {})}
            res = _result([errs[k] for k in kept], error=error, epochs=epochs,
                          complete=complete, why=why, seed=item.get("rng_seed"),
                          provenance=prov)
            if res["status"] == "done" and error == "min":
                res["top1"] = float(item["min_test_top1"])
            sampled = {"net": net, **({"part": part} if part else {})}
            if opaque:
                sampled["acts_unrecorded"] = True
                cx = {"flops": flops, "params": params, "acts": 0}
            else:   # the file's numbers (NDS's older flops count) beside dsd's own
                sampled.update(file_flops=flops, file_params=params, flops_count="nds")
            models.append({"hash": h, "spec": spec, "sampled": sampled, "flops": cx["flops"],
                           "params": cx["params"], "acts": cx["acts"], "opaque": opaque,
                           "result": res})
            optims.append({"optim": optim})
    if not models:
        w.fail("(top level)", "no models")
    same, varies = _shared(optims)
    recipe_json = {"source": "nds", "file": path.name, "error": error, "shared": same,
                   "varies": varies}
    info = {"format": "nds", "file": path.name, "sha1": _sha1(path), "models": len(models),
            "parts": [p for p, _ in parts if p], "error": error,
            "flops": "dsd's count for specs; the file's (NDS's older count) for opaque models"}
    return Imported(name=name or f"nds-{stem}", space=f"nds:{stem}", dataset=dataset,
                    source="nds", source_info=info, recipe="nds-release",
                    recipe_json=recipe_json, models=_finish(models))


def complexity_acts(spec_json: str) -> int:
    """Activations of a rebuilt spec (the NDS files record flops and params only)."""
    from .spec import ModelSpec

    return complexity(ModelSpec.from_json(spec_json))["acts"]


def read(path: str | Path, fmt: str, **kw) -> Imported:
    """`fmt` "pycls" (sweep.json) or "nds" (a data release file)."""
    if kw.get("error", "final") not in ERRORS:
        raise DsdError(f"--error {kw['error']!r}: allowed {', '.join(ERRORS)}")
    if kw.get("error") == "ema" and fmt != "pycls":
        raise DsdError("--error ema: only pycls sweeps record an EMA model (test_ema_epoch)")
    if fmt == "pycls":
        kw.pop("dataset", None)
        return read_pycls_sweep(path, **kw)
    if fmt == "nds":
        return read_nds(path, **kw)
    raise DsdError(f"unknown import format {fmt!r}; allowed: pycls, nds")
