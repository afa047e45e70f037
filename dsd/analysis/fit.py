"""e_fit: how well the quantized linear RegNet rule fits an AnyNet model (DDS §3.3, NOTES §4).

Fix d to the model's total depth, then search (w0, wa, wm) minimising

    e_fit = mean_j |log(pred_j / obs_j)|   (natural log, j = 0 … d-1)

where obs_j is the observed width of block j (each stage's width repeated d_i times) and pred_j
is a width the RegNet generator can give block j: the *quantized* rule of
`dsd.regnet.generate_widths(w0, wa, wm, d)` (u_j = w0 + wa·j, s_j = round(log(u_j/w0)/log(wm)),
round(w0·wm^s_j / 8)·8), either as it is (the paper's e_fit) or passed through the group-width
compatibility rule every dsd model goes through (`dsd.spec.adjust_compatibility`, NOTES §1)
with the b and g of block j's stage, whichever fits the whole model better (`fitted_widths`).
Predicting the quantized widths (DDS Fig. 8's solid "quantized linear" line) rather than the
continuous u_j makes wm matter at all (u_j does not depend on wm). Allowing the compatible
prediction makes every RegNet-generated model (any b and g: RegNetX, RegNetY, the zoo) fit with
e_fit = 0 exactly; it never raises e_fit above the paper's (the minimum of the two). The two
agree wherever b·g divides 8 (compatibility is then a no-op on multiples of 8); elsewhere
compatibility moves widths off the bare rule: with the bare rule alone, 42 of 100 sampled
RegNetX models got e_fit > 0 (up to 0.08). Both predictions are searched. For models with
sampled RegNet parameters (w0, wa, wm, d = depth), those are evaluated as a candidate too, so
the generator's own parameters are never missed by the grid.

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
  Accuracy (measured before the compatibility step was added): against an exhaustive search
  (every multiple of 8 for w0, every 0.001 for wm) on 120 sampled CIFAR AnyNetXA/XE/RegNetX
  models the fit was equal for 111 and at most 0.008 worse for the others, at about 25 ms a
  model instead of 560 ms.
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


def block_bg(spec: ModelSpec | str | dict) -> tuple[np.ndarray, np.ndarray]:
    """Per-block bottleneck ratio b and group width g (each stage's repeated d_i times)."""
    if isinstance(spec, str):
        spec = ModelSpec.from_json(spec)
    elif isinstance(spec, dict):
        spec = ModelSpec.from_dict(spec)
    return (np.repeat(np.asarray(spec.bs, dtype=float), spec.ds),
            np.repeat(np.asarray(spec.gs, dtype=float), spec.ds))


def compatible(widths, bs, gs) -> np.ndarray:
    """`adjust_compatibility` elementwise (broadcasting): w/b made a multiple of min(g, w/b),
    rounding half to even (numpy's round, as Python's)."""
    w, b, g = (np.asarray(a, dtype=float) for a in (widths, bs, gs))
    v = np.maximum(1.0, np.floor(w / b))
    g = np.minimum(g, v)
    return np.maximum(g, np.round(v / g) * g) * b


def predicted_widths(w0: float, wa: float, wm: float, d: int, bs=None, gs=None) -> np.ndarray:
    """The RegNet rule's quantized per-block widths (`generate_widths`' ws_all), passed through
    the compatibility rule with per-block `bs`, `gs` when given."""
    ws = np.asarray(generate_widths(w0, wa, wm, int(d))[4], dtype=float)
    return ws if bs is None else compatible(ws, bs, gs)


def fitted_widths(widths, w0: float, wa: float, wm: float, bs=None, gs=None) -> np.ndarray:
    """The prediction e_fit uses for these parameters: the bare rule's widths or, when `bs`,
    `gs` are given and that fits `widths` better, the widths made compatible."""
    obs = np.asarray(widths, dtype=float)
    bare = predicted_widths(w0, wa, wm, len(obs))
    if bs is None:
        return bare
    comp = compatible(bare, bs, gs)
    cost = [float(np.mean(np.abs(np.log(p / obs)))) for p in (bare, comp)]
    return comp if cost[1] < cost[0] else bare


def continuous_widths(w0: float, wa: float, d: int) -> np.ndarray:
    """The continuous linear widths u_j = w0 + wa·j (for plots)."""
    return w0 + wa * np.arange(int(d))


def e_fit_of(widths, w0: float, wa: float, wm: float, bs=None, gs=None) -> float:
    """mean_j |log(pred_j / obs_j)| of given parameters against observed per-block widths
    (the better of the bare and the compatible prediction when per-block `bs`, `gs` are
    given: `fitted_widths`)."""
    obs = np.asarray(widths, dtype=float)
    pred = fitted_widths(obs, w0, wa, wm, bs, gs)
    return float(np.mean(np.abs(np.log(pred / obs))))


def _best_for_wm(log_obs: np.ndarray, w0s: np.ndarray, wm: float, wa_max: float, bg=None):
    """Exact best (cost, w0, r) over w0 in `w0s` and r = wa/w0 in [0, wa_max/w0] for one wm.
    `bg`: per-block (b, g) arrays; each level is made compatible per block (a pointwise map of
    the level, so the breakpoints in r do not change)."""
    d = len(log_obs)
    k_top = int(math.ceil(math.log(1 + wa_max * max(d - 1, 0) / w0s[0]) / math.log(wm))) + 1
    ks = np.arange(k_top + 1)
    levels = np.maximum(np.round(w0s[:, None] * wm ** ks[None, :] / Q) * Q, Q)  # W × K
    if bg is None:
        log_lv = np.log(levels)[:, None, :]  # W × 1 × K
    else:
        log_lv = np.log(compatible(levels[:, None, :], bg[0][None, :, None],
                                   bg[1][None, :, None]))  # W × d × K
    cost = np.abs(log_lv - log_obs[None, :, None])  # W × d × K
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


def fit_widths(widths, *, bs=None, gs=None, candidates: Iterable[tuple] = (),
               w0_max: float = 1024, wa_max: float = 1024,
               wm_range: tuple[float, float] = (1.5, 3.0), coarse_step: float = 0.02,
               fine_step: float = 0.001, refine: int = 3,
               w0_ratio: float | None = 1.1) -> Fit:
    """Fit (w0, wa, wm) of the RegNet rule to observed per-block widths; see the module doc.

    bs, gs: per-block bottleneck ratios and group widths; the rule's widths made compatible
    with them are then a second prediction (searched too), and e_fit is the better of the two
    (None: the bare quantized rule only). candidates: (w0, wa, wm) evaluated besides the search
    (e.g. a RegNet model's sampled parameters). Returns the best Fit, with e_fit recomputed
    through `generate_widths` itself.
    """
    obs = np.asarray(widths, dtype=float).ravel()
    if len(obs) == 0 or np.any(obs <= 0) or not np.all(np.isfinite(obs)):
        raise DsdError("e_fit needs at least one block and positive widths")
    if (bs is None) != (gs is None):
        raise DsdError("give both bs and gs (per-block b and g) or neither")
    bg = None
    if bs is not None:
        bg = (np.asarray(bs, dtype=float).ravel(), np.asarray(gs, dtype=float).ravel())
        if not len(bg[0]) == len(bg[1]) == len(obs):
            raise DsdError(f"bs and gs need one value per block ({len(obs)})")
    wm_lo, wm_hi = wm_range
    if not 1 < wm_lo <= wm_hi:
        raise DsdError(f"wm range must satisfy 1 < min <= max, got {wm_range}")
    grid = dict(w0_max=w0_max, wa_max=wa_max, wm_range=wm_range, coarse_step=coarse_step,
                fine_step=fine_step, refine=refine, w0_ratio=w0_ratio)
    params = [_search(obs, None, **grid)] + ([_search(obs, bg, **grid)] if bg else [])
    best = None
    for w0, wa, wm in [*params, *candidates]:
        w0, wa, wm = float(w0), float(wa), float(wm)
        try:
            e = e_fit_of(obs, w0, wa, wm, *(bg or ()))
        except DsdError:  # not valid RegNet parameters (e.g. w0 not a multiple of 8)
            continue
        if best is None or e < best.e_fit:
            best = Fit(w0, wa, wm, e)
    return best


def _search(obs: np.ndarray, bg, *, w0_max, wa_max, wm_range, coarse_step, fine_step, refine,
            w0_ratio) -> tuple[float, float, float]:
    """The grid search of the module doc for one prediction (bare rule, or made compatible
    with `bg`); returns (w0, wa, wm)."""
    wm_lo, wm_hi = wm_range
    log_obs = np.log(obs)
    top = min(float(w0_max), math.ceil(obs.max() / Q) * Q)
    w0s = np.arange(Q, max(top, Q) + 1, Q, dtype=float)

    def search(wms, w0_grid):
        return [(*_best_for_wm(log_obs, w0_grid, float(wm), wa_max, bg), float(wm))
                for wm in wms]

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
    return w0, round(r * w0, 6), wm


def fit_spec(spec: ModelSpec | str | dict, sampled: dict | None = None, **kwargs) -> Fit:
    """e_fit of one model spec: `fit_widths` of its per-block widths, compatible with its
    per-block b and g; `sampled` RegNet parameters (w0, wa, wm, d = the spec's depth) are a
    candidate."""
    widths = block_widths(spec)
    bs, gs = block_bg(spec)
    cands = list(kwargs.pop("candidates", ()))
    if sampled and all(isinstance(sampled.get(k), (int, float)) for k in ("w0", "wa", "wm", "d")) \
            and int(sampled["d"]) == len(widths):
        cands.append((sampled["w0"], sampled["wa"], sampled["wm"]))
    return fit_widths(widths, bs=bs, gs=gs, candidates=cands, **kwargs)


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
        sampled = rec.get("sampled")
        sampled = json.loads(sampled) if isinstance(sampled, str) else sampled
        key += json.dumps(sampled, sort_keys=True) if isinstance(sampled, dict) else ""
        if key not in cache:
            cache[key] = fit_spec(rec["spec"], sampled if isinstance(sampled, dict) else None,
                                  **kwargs)
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
