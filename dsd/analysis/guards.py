"""Ways two compared sweeps were produced differently (issue 28's guards): sampler convention,
complexity window, dataset, recipe and the devices that trained them. `pair_warnings` gives
one line per difference (`dsd compare` prints them above its tables); `devices_imbalanced`
decides whether a pair gets a device-stratified sensitivity row (`effects.compare_data`).

Pure functions of a results frame (columns the frame lacks are not checked).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .tables import fmt_num


def _rows(df: pd.DataFrame, a: str, b: str, columns) -> pd.DataFrame:
    """The rows of sweeps a and b, with only the `columns` the frame has (and "sweep")."""
    return df.loc[df["sweep"].isin([a, b]), ["sweep", *(c for c in columns if c in df)]]


def device_labels(part: pd.DataFrame) -> np.ndarray:
    """The device of each row as text ("unrecorded" where none is recorded)."""
    if "device" not in part:
        return np.full(len(part), "unrecorded", dtype=object)
    col = part["device"]
    return np.where(col.isna(), "unrecorded", col.astype(str)).astype(object)


def device_mix(df: pd.DataFrame, a: str, b: str) -> dict[str, dict[str, float]]:
    """Per side, the share of its models trained on each device ({} without a device column)."""
    if "device" not in df:
        return {}
    part = _rows(df, a, b, ["device"])
    dev = pd.Series(device_labels(part), index=part.index)
    return {s: dev[part["sweep"] == s].value_counts(normalize=True).sort_index().to_dict()
            for s in (a, b)}


def _imbalanced(mix: dict, a: str, b: str) -> bool:
    if not mix:
        return False
    keys = set(mix[a]) | set(mix[b])
    return any(abs(mix[a].get(k, 0.0) - mix[b].get(k, 0.0)) > 1e-12 for k in keys)


def devices_imbalanced(df: pd.DataFrame, a: str, b: str) -> bool:
    """True when the two sweeps' device shares differ at all (any device, any amount)."""
    return _imbalanced(device_mix(df, a, b), a, b)


def _window_text(text) -> str:
    """'{"flops": [112500000, 125000000]}' → 'flops [112.5M, 125M]' (`tables.fmt_num`)."""
    try:
        w = json.loads(text)
    except (TypeError, ValueError):
        return str(text)
    if not isinstance(w, dict):
        return str(text)
    parts = [f"{k} [{fmt_num(v[0])}, {fmt_num(v[1])}]" for k, v in sorted(w.items())
             if isinstance(v, (list, tuple)) and len(v) == 2 and None not in v]
    return ", ".join(parts) or "none"


#: (column, what it is, how a value is shown)
GUARDS = (("samplers", "sampler convention", str), ("window", "complexity window", _window_text),
          ("dataset", "dataset", str), ("recipe_hash", "recipe (hash)", str))


def pair_warnings(df: pd.DataFrame, a: str, b: str) -> list[str]:
    """One line per way the two sweeps were produced differently: sampler convention
    (`samplers`, dsd.samplers), complexity window (`window`), dataset, recipe hash, device mix.
    Columns the frame lacks are not checked (a store's results carry no samplers/window: the
    CLI adds them from the sweeps)."""
    out = []
    part = _rows(df, a, b, [g[0] for g in GUARDS])
    for col, what, show in GUARDS:
        if col not in part:
            continue
        vals = {s: ", ".join(sorted({show(v) for v in pd.unique(part.loc[part["sweep"] == s,
                                                                         col])
                                     if v is not None and v == v})) or "unrecorded"
                for s in (a, b)}
        if vals[a] != vals[b]:
            out.append(f"{a} vs {b}: {what} differs ({a}: {vals[a]}; {b}: {vals[b]})")
    mix = device_mix(df, a, b)
    if _imbalanced(mix, a, b):
        text = "; ".join(f"{s}: " + ", ".join(f"{v:.0%} {d}" for d, v in mix[s].items())
                         for s in (a, b))
        out.append(f"{a} vs {b}: devices differ ({text}); see the device-stratified row")
    return out
