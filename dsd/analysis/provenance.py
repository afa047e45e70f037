"""Warnings when compared sweeps were produced differently (dsd version, torch/CUDA/cuDNN,
device, execution path, dsd's layers, precision, loader, MPS; `dsd.provenance`). The recipe hash
decides comparability; these only say that the numbers may carry a difference of setup."""
from __future__ import annotations

import json

import pandas as pd

from ..provenance import COMPARED


def provenance_frame(data: pd.DataFrame) -> pd.DataFrame:
    """One column per provenance key (prov_<key>), parsed from the JSON column."""
    raw = data["provenance"] if "provenance" in data else pd.Series([None] * len(data))
    parsed = [json.loads(p) if isinstance(p, str) and p else {} for p in raw]
    keys = list(dict.fromkeys([*COMPARED, *(k for p in parsed for k in p)]))
    return pd.DataFrame({f"prov_{k}": [p.get(k) for p in parsed] for k in keys},
                        index=data.index)


def provenance_warnings(data: pd.DataFrame) -> list[str]:
    """One line per provenance key whose values differ between the sweeps in `data` (results
    joined with models: columns sweep and provenance), and one for imported populations."""
    if data.empty or "sweep" not in data:
        return []
    out = []
    if "source" in data and data["source"].nunique() > 1:
        by = data.groupby("sweep", sort=False)["source"].first()
        out.append("sweeps come from different sources ("
                   + "; ".join(f"{s}: {v}" for s, v in by.items()) + ")")
    prov = provenance_frame(data)
    recorded = prov.notna().any(axis=1)
    bare = [s for s in pd.unique(data["sweep"]) if not recorded[data["sweep"] == s].any()]
    if bare and len(bare) < data["sweep"].nunique():
        out.append(f"no provenance recorded (trained before dsd recorded it): "
                   f"{', '.join(bare)}")
    rest = ~data["sweep"].isin(bare)
    for key in COMPARED:
        col = prov.loc[rest, f"prov_{key}"].map(_text)
        sweeps = data.loc[rest, "sweep"]
        per = {s: ", ".join(sorted(set(col[sweeps == s]))) for s in pd.unique(sweeps)}
        if len(set(per.values())) > 1:
            out.append(f"sweeps differ in {key}: " + "; ".join(f"{s}: {v}" for s, v in
                                                               per.items()))
    return out


def _text(v) -> str:
    """A provenance value as shown in a warning ("unrecorded" for results stored before)."""
    return "unrecorded" if v is None or (isinstance(v, float) and v != v) else str(v)
