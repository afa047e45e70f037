"""e_fit: how well the quantized linear RegNet rule fits an AnyNet model (DDS §3.3, NOTES §4).

Fix d to the model's total depth, then search (w0, wa, wm) minimising

    e_fit = mean_j |log(pred_j / obs_j)|   (natural log, j = 0 … d-1)

where obs_j is the observed width of block j (each stage's width repeated d_i times) and pred_j
is the *quantized* width the RegNet rule generates, exactly `dsd.regnet.generate_widths(w0, wa,
wm, d)`'s per-block `ws_all`: u_j = w0 + wa·j, s_j = round(log(u_j/w0)/log(wm)),
pred_j = round(w0·wm^s_j / 8)·8. Predicting with the quantized widths (DDS Fig. 8's solid
"quantized linear" line) rather than the continuous u_j is what makes a RegNet-generated model
fit with e_fit = 0 and makes wm matter at all (u_j does not depend on wm). The stored stage
widths of a generated model also went through the group-width compatibility rounding (NOTES §1);
for b = 1 and g <= 8 that is a no-op, otherwise e_fit is small but not 0 (the zoo's
RegNetX-400MF, g = 16: 0.029).

Search (exact in wa, grid in w0 and wm):
- w0: every multiple of 8 in [8, min(w0_max, max observed width rounded up to 8)] (RegNet w0 is
  a multiple of 8; a w0 above every observed width is never better).
- wa in [0, wa_max]: exact. For fixed (w0, wm) the prediction is piecewise constant in
  r = wa/w0: block j reaches level k when r > (wm^(k-1/2) - 1)/j. Sorting these breakpoints and
  accumulating the cost change of each step gives the cost of every distinct prediction at once;
  the reported wa is the middle of the best interval.
- wm in [wm_min, wm_max]: coarse grid (step 0.02, with w0 on a geometric subset of ratio 1.1
  plus the first block's width ±8),
  then step 0.001 (the RegNet sampling resolution) within ±0.02 of the 3 best coarse values,
  with w0 within ±16 of the coarse winners and of the first block's width.
  Accuracy: against an exhaustive search (every multiple of 8 for w0, every 0.001 for wm) on
  120 sampled CIFAR AnyNetXA/XE/RegNetX models the fit was equal for 111 and at most 0.008
  worse for the others, at about 25 ms a model instead of 560 ms. RegNet-generated widths are
  recovered exactly (e_fit = 0).
Defaults cover the AnyNetX width range (w0 <= 1024, wa <= 1024) and the RegNetX wm range
[1.5, 3] (NOTES §4). Fitted parameters are unique only up to equivalence: any (w0, wa, wm)
generating the same per-block widths has the same e_fit.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DsdError
from ..regnet import generate_widths
from ..spec import ModelSpec

Q = 8  # width quantum of the RegNet rule (generate_widths' q)


class Fit(NamedTuple):
    w0: float
    wa: float
    wm: float
    e_fit: float


def block_widths(spec: ModelSpec | str | dict) -> np.ndarray:
    """Observed per-block widths: each stage's width repeated d_i times (length = depth)."""
    if isinstance(spec, str):
        spec = ModelSpec.from_json(spec)
    elif isinstance(spec, dict):
        spec = ModelSpec.from_dict(spec)
    return np.repeat(np.asarray(spec.ws, dtype=float), spec.ds)


def predicted_widths(w0: float, wa: float, wm: float, d: int) -> np.ndarray:
    """The RegNet rule's quantized per-block widths (`generate_widths`' ws_all)."""
    return np.asarray(generate_widths(w0, wa, wm, int(d))[4], dtype=float)


def continuous_widths(w0: float, wa: float, d: int) -> np.ndarray:
    """The continuous linear widths u_j = w0 + wa·j (for plots)."""
    return w0 + wa * np.arange(int(d))


def e_fit_of(widths, w0: float, wa: float, wm: float) -> float:
    """mean_j |log(pred_j / obs_j)| of given parameters against observed per-block widths."""
    obs = np.asarray(widths, dtype=float)
    pred = predicted_widths(w0, wa, wm, len(obs))
    return float(np.mean(np.abs(np.log(pred / obs))))


def _best_for_wm(log_obs: np.ndarray, w0s: np.ndarray, wm: float, wa_max: float):
    """Exact best (cost, w0, r) over w0 in `w0s` and r = wa/w0 in [0, wa_max/w0] for one wm."""
    d = len(log_obs)
    k_top = int(math.ceil(math.log(1 + wa_max * max(d - 1, 0) / w0s[0]) / math.log(wm))) + 1
    ks = np.arange(k_top + 1)
    levels = np.round(w0s[:, None] * wm ** ks[None, :] / Q) * Q  # W × K
    log_lv = np.log(np.maximum(levels, Q))
    cost = np.abs(log_lv[:, None, :] - log_obs[None, :, None])  # W × d × K
    base = cost[:, :, 0].sum(axis=1)  # every block at level 0 (r small)
    if d == 1:
        i = int(np.argmin(base))
        return float(base[i]) / d, float(w0s[i]), 0.0
    # breakpoints: block j (1..d-1) goes from level k-1 to k when r > (wm^(k-1/2) - 1) / j
    a = wm ** (ks[1:] - 0.5) - 1  # K-1
    j = np.arange(1, d)
    t = (a[None, :] / j[:, None]).ravel()  # (d-1)·(K-1), j-major
    jj = np.repeat(j, len(a))
    kk = np.tile(ks[1:], len(j))
    keep = t < wa_max / w0s[0]  # beyond this no w0 in the grid may go
    t, jj, kk = t[keep], jj[keep], kk[keep]
    order = np.argsort(t, kind="stable")
    t, jj, kk = t[order], jj[order], kk[order]
    delta = cost[:, jj, kk] - cost[:, jj, kk - 1]  # W × M
    total = np.concatenate([base[:, None], base[:, None] + np.cumsum(delta, axis=1)], axis=1)
    lower = np.concatenate([[0.0], t])  # interval m is (lower[m], upper[m])
    upper = np.append(t, np.inf)
    r_max = wa_max / w0s  # W
    valid = (lower[None, :] < r_max[:, None]) & (upper > lower)[None, :]
    total = np.where(valid, total, np.inf)
    wi, mi = np.unravel_index(int(np.argmin(total)), total.shape)
    hi = min(upper[mi], r_max[wi])
    r = 0.0 if mi == 0 else (lower[mi] + hi) / 2
    return float(total[wi, mi]) / d, float(w0s[wi]), float(r)


def fit_widths(widths, *, w0_max: float = 1024, wa_max: float = 1024,
               wm_range: tuple[float, float] = (1.5, 3.0), coarse_step: float = 0.02,
               fine_step: float = 0.001, refine: int = 3,
               w0_ratio: float | None = 1.1) -> Fit:
    """Fit (w0, wa, wm) of the RegNet rule to observed per-block widths; see the module doc.

    Returns the best Fit, with e_fit recomputed through `generate_widths` itself.
    """
    obs = np.asarray(widths, dtype=float).ravel()
    if len(obs) == 0 or np.any(obs <= 0) or not np.all(np.isfinite(obs)):
        raise DsdError("e_fit needs at least one block and positive widths")
    wm_lo, wm_hi = wm_range
    if not 1 < wm_lo <= wm_hi:
        raise DsdError(f"wm range must satisfy 1 < min <= max, got {wm_range}")
    log_obs = np.log(obs)
    top = min(float(w0_max), math.ceil(obs.max() / Q) * Q)
    w0s = np.arange(Q, max(top, Q) + 1, Q, dtype=float)

    def search(wms, w0_grid):
        return [(*_best_for_wm(log_obs, w0_grid, float(wm), wa_max), float(wm)) for wm in wms]

    # coarse stage: w0 on a geometric subset of the multiples of 8 (ratio ~w0_ratio), plus
    # the first block's width and its neighbours (where a RegNet's w0 is)
    first = max(Q, round(obs[0] / Q) * Q)
    w0_coarse = w0s if not w0_ratio else np.unique(np.clip(np.concatenate([
        np.round(Q * w0_ratio ** np.arange(200) / Q) * Q, [first - Q, first, first + Q]]),
        Q, w0s[-1]))
    coarse = search(np.round(np.arange(wm_lo, wm_hi + 1e-9, coarse_step), 6), w0_coarse)
    coarse.sort(key=lambda c: c[0])
    best = coarse[0]
    fine: set[float] = set()
    for c in coarse[:refine]:
        lo, hi = max(wm_lo, c[3] - coarse_step), min(wm_hi, c[3] + coarse_step)
        fine.update(np.round(np.arange(lo, hi + 1e-9, fine_step), 6).tolist())
    # the fine stage searches w0 near the coarse winners and near the first block's width
    near = {c[1] for c in coarse[:4 * refine]} | {first}
    w0_fine = w0s[np.min(np.abs(w0s[:, None] - np.array(sorted(near))[None, :]), axis=1)
                  <= 2 * Q]
    for c in search(sorted(fine), w0_fine):
        if c[0] < best[0] - 1e-12:
            best = c
    _, w0, r, wm = best
    wa = round(r * w0, 6)
    return Fit(w0, wa, wm, e_fit_of(obs, w0, wa, wm))


def fit_spec(spec: ModelSpec | str | dict, **kwargs) -> Fit:
    """e_fit of one model spec (`fit_widths` of its per-block widths)."""
    return fit_widths(block_widths(spec), **kwargs)


def fit_frame(models: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Fit every row of a models/results frame (needs a `spec` JSON column).

    Returns a frame with model_id (when present), fit_w0, fit_wa, fit_wm, e_fit; specs that
    occur several times are fitted once.
    """
    if "spec" not in models:
        raise DsdError("fit_frame needs a 'spec' column (Store.models or Store.results)")
    cache: dict[str, Fit] = {}
    rows = []
    for rec in models.to_dict("records"):
        key = rec["spec"] if isinstance(rec["spec"], str) else json.dumps(rec["spec"])
        if key not in cache:
            cache[key] = fit_spec(rec["spec"], **kwargs)
        f = cache[key]
        rows.append({"model_id": rec.get("model_id"), "fit_w0": f.w0, "fit_wa": f.wa,
                     "fit_wm": f.wm, "e_fit": f.e_fit})
    return pd.DataFrame(rows, columns=["model_id", "fit_w0", "fit_wa", "fit_wm", "e_fit"])


def fit_sweeps(store, sweeps: Iterable[str], *, progress=None, **kwargs) -> pd.DataFrame:
    """Fit every model of the given sweeps and store the fits (`Store.set_fits`).

    Returns the fits with a `sweep` column. `progress(sweep, done, total)` is called per model.
    """
    frames = []
    for name in sweeps:
        models = store.models(name)
        if "opaque" in models:  # imported models without a ModelSpec have no block widths
            models = models[~models["opaque"].astype(bool)]
        if models.empty:
            continue
        parts = []
        for i in range(len(models)):
            parts.append(fit_frame(models.iloc[i:i + 1], **kwargs))
            if progress:
                progress(name, i + 1, len(models))
        fits = pd.concat(parts, ignore_index=True)
        store.set_fits([(int(r.model_id), r.fit_w0, r.fit_wa, r.fit_wm, r.e_fit)
                        for r in fits.itertuples()])
        fits.insert(0, "sweep", name)
        frames.append(fits)
    if not frames:
        raise DsdError("no models to fit in " + ", ".join(sweeps))
    return pd.concat(frames, ignore_index=True)
