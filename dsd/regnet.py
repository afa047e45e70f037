"""RegNet generation (DDS §3.3): (d, w0, wa, wm, b, g) → per-stage widths and depths → spec.

Pure NumPy-free port of pycls `generate_regnet`: u_j = w0 + wa·j, s_j = round(log(u_j/w0)/log(wm)),
w_j = w0·wm^s_j rounded to a multiple of 8; equal consecutive widths form a stage.
"""
from __future__ import annotations

import math

from .errors import DsdError
from .spec import ModelSpec, make_spec


def generate_widths(w0: float, wa: float, wm: float, d: int, q: int = 8):
    """Per-block quantized widths, the stage widths/depths, and the stage-index count.

    Returns (ws, ds, num_stages, total_stages, ws_all): a sample is valid only when
    num_stages == total_stages (no empty stage index) equals the required stage count.
    """
    if not (wa >= 0 and w0 > 0 and wm > 1 and w0 % q == 0 and d >= 1):
        raise DsdError(f"invalid RegNet parameters w0={w0}, wa={wa}, wm={wm}, d={d}: need "
                       f"w0 > 0 and a multiple of {q}, wa >= 0, wm > 1, d >= 1")
    ks = [round(math.log((w0 + wa * j) / w0) / math.log(wm)) for j in range(d)]
    ws_all = [int(round(w0 * wm**k / q)) * q for k in ks]
    ws: list[int] = []
    ds: list[int] = []
    for w in sorted(ws_all):  # np.unique: sorted distinct widths with counts
        if ws and ws[-1] == w:
            ds[-1] += 1
        else:
            ws.append(w)
            ds.append(1)
    return ws, ds, len(ws), max(ks) + 1, ws_all


def regnet_spec(d: int, w0: float, wa: float, wm: float, b=1, g: int = 8, *, k: int = 3,
                **spec_kwargs) -> tuple[ModelSpec, int]:
    """A RegNet as an AnyNet spec (compatibility applied) plus its stage count for rejection.
    `spec_kwargs` go to `make_spec` (dataset, block, se_ratio, stem_w, first_stride, stem, …;
    with `flops_range` the spec is None outside it)."""
    ws, ds, num_stages, total_stages, _ = generate_widths(w0, wa, wm, d)
    n = len(ws)
    spec = make_spec(ds, ws, [b] * n, [g] * n, ks=[k] * n, **spec_kwargs)
    return spec, (num_stages if num_stages == total_stages else -1)
