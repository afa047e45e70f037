"""The pycls side of the pycls cross-check (issue 27): run ONLY in a venv that has pycls.

Not part of dsd and never imported by it. `scripts/crosscheck_pycls.py` (dsd's venv) starts
this as a subprocess and talks to it over stdin/stdout, one JSON object per line each way, so
the two environments never mix:

    PYTHONPATH=<pycls checkout> <pycls venv>/bin/python scripts/pycls_oracle.py

A model description ("desc") is in pycls's own terms:

    {"type": "anynet" | "effnet",
     "params": <AnyNet.get_params() / EffNet.get_params() dict>,
     "activation": "relu" | "silu" | "gelu",     # cfg.MODEL.ACTIVATION_FUN
     "im_size": 32}                               # square input resolution

Requests (one per line; answers carry the same "id" when given):

    {"op": "complexity", "descs": [desc, ...]}
        -> {"cx": [{"flops", "params", "acts"}, ...]}   Model.complexity({h, w, 0, 0, 0})
    {"op": "describe", "desc": desc}
        -> {"params": [[name, shape], ...], "state": [[name, shape], ...]}
           parameters and floating state_dict entries in creation order
    {"op": "forward", "desc": desc, "state": [b64 float64, ...] | "formula",
     "x": b64 float64, "x_shape": [n, 3, h, w]}
        -> {"logits": b64 float64, "shape": [n, classes], "state": [[name, shape], ...]}
           float64, eval mode, with the floating state_dict entries set, in pycls's order,
           to the given arrays (or to `formula_tensor(i, key, shape)`)
    {"op": "config", "path": "<pycls yaml>", "im_size": 224}
        -> {"desc": desc, "cx": {...}, "train_im_size": n, "train_cx": {...}}
    {"op": "adjust", "wbg": [[w, bot_mul, g], ...]}
        -> {"wbg": [[w, bot_mul, g] | "AssertionError: ...", ...]}  adjust_block_compatibility
    {"op": "quit"}

Arrays travel as base64 of little-endian float64 bytes (exact). Errors come back as
{"error": "..."} and the process keeps serving.
"""
from __future__ import annotations

import base64
import json
import math
import sys
import traceback

import numpy as np

from pycls_formula import formula_input, formula_tensor  # noqa: E402,F401
import torch

from pycls.core.config import cfg
from pycls.models.anynet import AnyNet
from pycls.models.effnet import EffNet

torch.set_num_threads(1)
_DEFAULTS = cfg.clone()


def encode(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def decode(s: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype="<f8").reshape(shape).copy()


def _configure(desc: dict) -> None:
    cfg.defrost()
    cfg.merge_from_other_cfg(_DEFAULTS)
    cfg.MODEL.ACTIVATION_FUN = desc.get("activation", "relu")
    cfg.freeze()


def _model_cls(desc: dict):
    return {"anynet": AnyNet, "effnet": EffNet}[desc["type"]]


def _params(desc: dict) -> dict:
    p = dict(desc["params"])
    if desc["type"] == "anynet":  # pycls stores these as lists (yacs); keep them lists
        for k in ("depths", "widths", "strides", "bot_muls", "group_ws"):
            p[k] = list(p[k])
    return p


def complexity(desc: dict) -> dict:
    _configure(desc)
    s = desc["im_size"]
    cx = {"h": s, "w": s, "flops": 0, "params": 0, "acts": 0}
    cx = _model_cls(desc).complexity(cx, _params(desc))
    return {k: int(cx[k]) for k in ("flops", "params", "acts")}


def build(desc: dict):
    _configure(desc)
    return _model_cls(desc)(_params(desc))


def _float_state(model):
    return [(k, v) for k, v in model.state_dict().items() if v.is_floating_point()]


def describe(desc: dict) -> dict:
    model = build(desc)
    return {"params": [[k, list(v.shape)] for k, v in model.named_parameters()],
            "state": [[k, list(v.shape)] for k, v in _float_state(model)]}


def forward(req: dict) -> dict:
    desc = req["desc"]
    model = build(desc).double().eval()
    entries = _float_state(model)
    state = req["state"]
    if state != "formula" and len(state) != len(entries):
        raise ValueError(f"got {len(state)} state arrays, model has {len(entries)}")
    with torch.no_grad():
        for i, (k, v) in enumerate(entries):
            shape = list(v.shape)
            a = formula_tensor(i, k, shape) if state == "formula" else decode(state[i], shape)
            v.copy_(torch.from_numpy(a))
        x = torch.from_numpy(decode(req["x"], req["x_shape"]))
        y = model(x)
    return {"logits": encode(y.numpy()), "shape": list(y.shape),
            "state": [[k, list(v.shape)] for k, v in entries]}


def adjust(req: dict) -> dict:
    """pycls's adjust_block_compatibility on single (w, bot_mul, g) triples."""
    from pycls.models.blocks import adjust_block_compatibility

    out = []
    for w, b, g in req["wbg"]:
        try:
            ws, bs, gs = adjust_block_compatibility([w], [b], [g])
            out.append([int(ws[0]), bs[0], int(gs[0])])
        except AssertionError as e:
            out.append(f"AssertionError: {e}")
    return {"wbg": out}


def config(req: dict) -> dict:
    """A pycls config file read by pycls itself: its model description, complexity at
    `im_size` (and at its TRAIN.IM_SIZE)."""
    cfg.defrost()
    cfg.merge_from_other_cfg(_DEFAULTS)
    cfg.merge_from_file(req["path"])
    kind = cfg.MODEL.TYPE
    params = _model_cls({"type": kind}).get_params()
    params = json.loads(json.dumps(params))  # yacs lists → plain lists
    train = int(cfg.TRAIN.IM_SIZE)
    desc = {"type": kind, "params": params, "activation": cfg.MODEL.ACTIVATION_FUN,
            "im_size": int(req["im_size"])}
    return {"desc": desc, "cx": complexity(desc), "train_im_size": train,
            "train_cx": complexity({**desc, "im_size": train})}


def handle(req: dict) -> dict:
    op = req["op"]
    if op == "complexity":
        return {"cx": [complexity(d) for d in req["descs"]]}
    if op == "describe":
        return describe(req["desc"])
    if op == "forward":
        return forward(req)
    if op == "adjust":
        return adjust(req)
    if op == "config":
        return config(req)
    if op == "ping":
        return {"torch": torch.__version__}
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but answers on the protocol stream
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("op") == "quit":
            break
        try:
            ans = handle(req)
        except Exception as e:  # noqa: BLE001 - reported to the caller, which decides
            ans = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
        if "id" in req:
            ans["id"] = req["id"]
        out.write(json.dumps(ans) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
