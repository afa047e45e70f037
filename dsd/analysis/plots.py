"""Publication-quality matplotlib figures drawn from `dsd.analysis.compare` data.

Every function builds a fresh `matplotlib.figure.Figure` (no pyplot, no global state, never
shown), or draws into a given `ax` and returns its figure. Style is applied with
`rc_context`, never `plt.style.use`. Colours come from `sweep_colors`, a stable name → colour
map, so a sweep has the same colour in every figure. `save` writes PNG, PDF or SVG by suffix
(SVG keeps text as text: `svg.fonttype: none`). matplotlib is imported inside the functions.
"""
from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DsdError
from .tables import fmt_number, fmt_si

#: Okabe-Ito (colour-blind safe) first, then the rest of tab10.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
           "#F0E442", "#8C564B", "#7F7F7F", "#BCBD22", "#9467BD"]
#: Fixed colours of the paper's spaces (a sweep named after its space gets its space's colour).
SPACE_COLORS = {"anynetxa": 0, "anynetxb": 1, "anynetxc": 2, "anynetxd": 3, "anynetxe": 4,
                "regnetx": 6, "regnety": 8, "regnetx_constrained": 5}

STYLE = {
    "font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "legend.fontsize": 8.5,
    "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6,
    "lines.linewidth": 1.6, "legend.frameon": False, "figure.dpi": 100, "savefig.dpi": 200,
    "savefig.pad_inches": 0.05,
    "svg.fonttype": "none", "pdf.fonttype": 42, "ps.fonttype": 42,
    "font.family": "DejaVu Sans", "axes.axisbelow": True,
}
FORMATS = (".png", ".pdf", ".svg")
SYNTHETIC_NOTE = "synthetic data (illustrative only)"


@contextmanager
def style():
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def sweep_colors(names: Sequence[str]) -> dict[str, str]:
    """A stable colour per sweep: the paper's spaces (or sweeps named after them) have fixed
    colours, other names hash into the palette; clashes inside `names` take the next free."""
    out: dict[str, str] = {}
    used: set[int] = set()
    for name in names:
        key = name.lower()
        base = next((i for s, i in SPACE_COLORS.items() if key == s), None)
        if base is None:
            base = next((i for s, i in sorted(SPACE_COLORS.items(), key=lambda t: -len(t[0]))
                         if key.startswith(s)), None)
        if base is None:
            base = zlib.crc32(name.encode()) % len(PALETTE)
        i = base
        while i in used and len(used) < len(PALETTE):
            i = (i + 1) % len(PALETTE)
        used.add(i)
        out[name] = PALETTE[i]
    return out


def new_figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] | None = None,
               **kw):
    """A fresh Figure and its axes (constrained layout), without pyplot."""
    from matplotlib.figure import Figure

    with style():
        fig = Figure(figsize=size or (5.6, 3.8), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save(fig, path: str | Path, *, dpi: int = 200) -> Path:
    """Write a figure; the format follows the suffix (.png, .pdf, .svg)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise DsdError(f"cannot write {path}: unknown figure format {path.suffix or '(none)'}; "
                       f"use {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with style():
        fig.savefig(path, dpi=dpi, format=path.suffix.lower()[1:])
    return path


def to_bytes(fig, fmt: str = "png", *, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format=fmt, dpi=dpi)
    return buf.getvalue()


def _parse_number(text: str) -> float:
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(text[-1:], 1.0)
    return float(text[:-1] if scale != 1.0 else text) * scale


def tick_digits(values) -> int:
    """The fewest significant digits (2–6) at which `values` get distinct labels, each within
    0.1 % of its value (so 1.75 is not shown as 1.8, nor 107.6K as 107K or 108K)."""
    vals = sorted({float(v) for v in values if np.isfinite(v)})
    for digits in range(2, 7):
        labels = [fmt_number(v, digits=digits) for v in vals]
        close = all(abs(_parse_number(t) - v) <= 1e-3 * abs(v) for t, v in zip(labels, vals))
        if close and len(set(labels)) == len(labels):
            return digits
    return 6


def _agg(fig):
    """The figure on an Agg canvas (attached once), for measuring text with a real renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)


def _label_boxes(axis, renderer):
    return [lab.get_window_extent(renderer) for lab in axis.get_ticklabels()
            if lab.get_visible() and lab.get_text()]


def _overlap(boxes, horizontal: bool, pad: float = 3.0) -> bool:
    spans = sorted((b.x0, b.x1) if horizontal else (b.y0, b.y1) for b in boxes)
    return any(b0 < a1 + pad for (_, a1), (b0, _) in zip(spans, spans[1:]))


def tidy_ticks(fig, rounds: int = 4) -> None:
    """Make every numeric axis of a laid-out figure readable: its current ticks fixed, one
    formatter for them (`tables.fmt_number` at `tick_digits`: K/M/G, distinct labels), then every
    second tick dropped, repeatedly, while two labels of an axis overlap (measured with a
    real renderer; the layout is redone once at the end and checked again)."""
    from matplotlib import ticker

    canvas = _agg(fig)
    fig.draw_without_rendering()
    axes = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis, horizontal in ((ax.xaxis, True), (ax.yaxis, False)):
            fmt = axis.get_major_formatter()
            if not isinstance(fmt, (ticker.ScalarFormatter, ticker.FuncFormatter,
                                    ticker.LogFormatter)) or getattr(fmt, "keep_labels", False):
                continue  # category or hand-set labels
            lo, hi = sorted(axis.get_view_interval())
            tol = 1e-9 * (hi - lo)
            locs = [t for t in axis.get_majorticklocs() if lo - tol <= t <= hi + tol]
            if not locs:
                continue
            digits = tick_digits(locs)
            axis.set_major_locator(ticker.FixedLocator(locs))
            axis.set_major_formatter(ticker.FuncFormatter(
                lambda x, pos=None, d=digits: fmt_number(x, digits=d)))
            axes.append((axis, horizontal))
    renderer = canvas.get_renderer()
    for check in range(2):
        if check:
            fig.draw_without_rendering()  # redo the layout with the thinned, new labels
        thinned = False
        for _ in range(rounds):  # get_ticklabels updates the labels without a figure draw
            # shared axes share one locator: thin each locator once per round
            crowded = {id(axis.major): axis for axis, h in axes
                       if _overlap(_label_boxes(axis, renderer), h)}.values()
            for axis in crowded:
                locs = list(axis.get_major_locator().tick_values(0, 1))
                axis.set_major_locator(ticker.FixedLocator(locs[::2]))
            thinned |= bool(crowded)
            if not crowded:
                break
        if not thinned:
            return


def fit_legend(fig, handles, *, loc: str = "outside lower center", max_ncols: int = 4,
               **kw):
    """A figure legend with as many columns (up to `max_ncols`) as fit the figure's width,
    measured with a real renderer (fewer columns, more rows, when the labels are long); a
    figure narrower than even one column is widened to it."""
    canvas = _agg(fig)
    for ncols in range(min(len(handles), max_ncols), 0, -1):
        leg = fig.legend(handles=handles, loc=loc, ncols=ncols, **kw)
        width = leg.get_window_extent(canvas.get_renderer()).width
        if width <= fig.bbox.width - 4:
            return leg
        if ncols == 1:
            fig.set_figwidth((width + 8) / fig.dpi)
            return leg
        leg.remove()
    return leg


def log_ticks(base: int, lo: float, hi: float) -> list[float]:
    """Readable tick values in [lo, hi] for a log axis: powers of the base with nice
    intermediates (2: 2^k, 1.5·2^k; 10: 1, 2, 5 ·10^k, then 1.5, 3, 7), else linear nice values
    for narrow ranges."""
    from matplotlib import ticker

    def within(mults):
        k0, k1 = int(np.floor(np.log(lo) / np.log(base))), int(np.ceil(np.log(hi) / np.log(base)))
        vals = sorted({m * float(base) ** k for k in range(k0, k1 + 1) for m in mults})
        return [v for v in vals if lo <= v <= hi]

    options = [(1,), (1, 1.5)] if base == 2 else [(1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)]
    fits = [t for t in map(within, options) if 3 <= len(t) <= 7]
    if fits:
        return max(fits, key=len)
    for ticks in map(within, options):
        if len(ticks) > 7:  # wide range: every 2nd, 3rd, … value
            return ticks[::-(-len(ticks) // 6)]
    return [v for v in ticker.MaxNLocator(4).tick_values(lo, hi) if lo <= v <= hi and v > 0]


def set_log_axis(ax, which: str, base: int, values) -> None:
    """Log scale with readable plain-number ticks (8, 16, 32 / 120M rather than 2^3 / 1.2e8)."""
    from matplotlib import ticker

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=base)
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) == 0:
        return
    uniq = np.unique(v)
    # few values, each a whole number or 1/n (an inverted bottleneck's b = 1/8, 1/4 …): a tick
    # each, the fractions written as such
    whole = np.isclose(uniq, np.round(uniq)) | np.isclose(1 / uniq, np.round(1 / uniq))
    if len(uniq) <= 8 and whole.all():
        ticks = list(uniq)
    else:
        ticks = log_ticks(base, float(v.min()), float(v.max()))
    axis.set_major_locator(ticker.FixedLocator(ticks))
    axis.set_minor_locator(ticker.NullLocator())
    digits = tick_digits(ticks)
    fmt = ticker.FuncFormatter(lambda x, pos=None: _fmt_ratio(x) or fmt_number(x, digits=digits))
    # ticks at fractions keep their own labels (1/8): the tidy pass above leaves them
    fmt.keep_labels = any(_fmt_ratio(t) for t in ticks)
    axis.set_major_formatter(fmt)


def _fmt_ratio(x: float) -> str | None:
    """'1/8' for a tick at 1/n below 1; None otherwise."""
    if 0 < x < 1 and np.isclose(1 / x, round(1 / x)):
        return f"1/{round(1 / x)}"
    return None


def wrap_to(fig, text: str, fontsize: float) -> str:
    """`text` wrapped to lines that fit the figure's width at `fontsize` (DejaVu Sans averages
    about 0.6 em per character)."""
    import textwrap

    width = max(20, int(fig.get_figwidth() * 72 / (0.6 * fontsize)))
    return textwrap.fill(text, width=width, break_long_words=False, break_on_hyphens=False)


def _note(fig, synthetic: bool, caption: str | None = None) -> None:
    """The figure's caption line(s) on top (inside the layout): the synthetic-data warning,
    and what the data are (Selection.caption: dataset, recipe, epochs, models left out)."""
    if not (synthetic or caption):
        return
    text = " — ".join(([SYNTHETIC_NOTE] if synthetic else []) + ([caption] if caption else []))
    size = 8.5
    fig.suptitle(wrap_to(fig, text, size), fontsize=size,
                 color="#B00020" if synthetic else "0.3", style="italic" if synthetic else None)


# ---- EDF ----------------------------------------------------------------------------------
def edf_label(row) -> str:
    """Legend entry: 'name (n=…, min …%, mean …%)'."""
    return f"{row['sweep']} (n={int(row['n'])}, min {row['min']:.2f}%, mean {row['mean']:.2f}%)"


def plot_edf(edf, *, ax=None, colors: dict[str, str] | None = None, title: str | None = None,
             xlim: tuple[float, float] | None = None, caption: str | None = None):
    """Error EDFs (steps), optional bootstrap bands, legend 'name (n, min, mean)'; `caption`
    (e.g. `Selection.caption()`) on top. With more than 4 sweeps the legend goes below the
    axes (`fit_legend`), where it can meet neither the curves nor the caption."""
    with style():
        own = ax is None
        sweeps = list(edf.summary["sweep"])
        outside = ax is None and len(sweeps) > 4  # too many entries to sit on the curves
        ax = ax if ax is not None else new_figure(size=(7.2, 4.6) if outside else None)[1][0, 0]
        fig = ax.figure
        colors = colors or sweep_colors(sweeps)
        lo_x, hi_x = xlim or (edf.curves["top1"].min(), edf.curves["top1"].max())
        pad = 0.02 * (hi_x - lo_x or 1.0)
        lo_x, hi_x = (lo_x - pad, hi_x + pad) if xlim is None else xlim
        for row in edf.summary.to_dict("records"):
            s = row["sweep"]
            c = edf.curves[edf.curves["sweep"] == s]
            x = np.r_[lo_x, c["top1"].to_numpy(), hi_x]
            y = np.r_[0.0, c["F"].to_numpy(), 1.0]
            b = edf.band[edf.band["sweep"] == s] if edf.band is not None else []
            if len(b):  # none for a sweep too small for an interval (`thin`)
                ax.fill_between(np.r_[b["top1"].to_numpy(), hi_x], np.r_[b["lo"], 1.0],
                                np.r_[b["hi"], 1.0], step="post", color=colors[s], alpha=0.18,
                                linewidth=0)
            ax.step(x, y, where="post", color=colors[s], label=edf_label(row))
        ax.set_xlim(lo_x, hi_x)
        ax.set_ylim(0, 1.0)
        ax.set_xlabel("top-1 error (%)")
        if edf.normalize:
            ax.set_ylabel(f"cumulative prob. (normalized by {edf.normalize})")
        else:
            ax.set_ylabel("cumulative fraction of models")
        if title is None and edf.normalize:
            lo, hi = edf.range
            title = (f"{edf.normalize}-normalized EDF: {edf.bins} bins over "
                     f"[{fmt_si(lo)}, {fmt_si(hi)}]")
        if title:
            ax.set_title(title)
        _note(fig, edf.synthetic, caption)
        if outside:
            fit_legend(fig, ax.get_legend_handles_labels()[0], max_ncols=2)
        else:
            ax.legend(loc="lower right")
        if own:
            tidy_ticks(fig)
    return fig


# ---- error vs parameter -------------------------------------------------------------------
def _best_range(ax, best, param: str, sweep: str, color) -> None:
    """The DDS best range of `param` in `sweep` as a band with its median (none when the
    sweep has too few models for one, `thin`)."""
    b = best[(best["param"] == param) & (best["sweep"] == sweep) & best["median"].notna()]
    if len(b):
        b = b.iloc[0]
        ax.axvspan(b["lo"], b["hi"], color=color, alpha=0.15, linewidth=0)
        ax.axvline(b["median"], color=color, linewidth=1.6)


def plot_params(pdata, *, colors: dict[str, str] | None = None, ncols: int | None = None,
                jitter: bool = True, caption: str | None = None):
    """One panel per parameter: error of every model against its value, with each sweep's
    best range (median line, shaded 95% interval) from the DDS bootstrap."""
    n = len(pdata.params)
    ncols = ncols or min(3, n)
    nrows = -(-n // ncols)
    sweeps = list(pd.unique(pdata.points["sweep"]))
    colors = colors or sweep_colors(sweeps)
    fig, axes = new_figure(nrows, ncols, size=(3.5 * ncols + 0.3, 2.9 * nrows + 0.5),
                           sharey=True)
    rng = np.random.default_rng(0)
    with style():
        for i, p in enumerate(pdata.params):
            ax = axes[i // ncols, i % ncols]
            pts = pdata.points[pdata.points["param"] == p]
            base = pdata.log[p]
            discrete = pts["value"].nunique() <= 16 and np.allclose(
                pts["value"], np.round(pts["value"]))
            # jitter discrete values by at most a quarter of the gap between neighbours, so
            # close values (144 and 152) stay apart and the axis is not widened around them
            uniq = np.unique(pts["value"].to_numpy(dtype=float))
            gaps = np.diff(np.log(uniq) / np.log(base) if base else uniq)
            amp = min(0.06 if base else 0.15, 0.25 * gaps.min()) if len(gaps) else \
                (0.06 if base else 0.15)
            for s in sweeps:
                q = pts[pts["sweep"] == s]
                x = q["value"].to_numpy(dtype=float)
                if jitter and discrete and len(x):
                    spread = rng.uniform(-1, 1, len(x))
                    x = x * base ** (amp * spread) if base else x + amp * spread
                ax.scatter(x, q["top1"], s=9, color=colors[s], alpha=0.45, linewidths=0,
                           rasterized=len(x) > 2000)
                _best_range(ax, pdata.best, p, s, colors[s])
            if base:
                set_log_axis(ax, "x", base, pts["value"])
            ax.set_xlabel(pdata.labels[p])
            if i % ncols == 0:
                ax.set_ylabel("top-1 error (%)")
        for j in range(n, nrows * ncols):
            axes[j // ncols, j % ncols].set_visible(False)
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
        from matplotlib.ticker import MaxNLocator

        handles = [Line2D([], [], marker="o", linestyle="", color=colors[s],
                          label=f"{s} (n={int((pdata.points['sweep'] == s).sum() / n)})")
                   for s in sweeps]
        handles += [Line2D([], [], color="0.3", label="best range: bootstrap median"),
                    Patch(color="0.3", alpha=0.2, label="95% interval")]
        for i in range(n):  # linear axes: few ticks (log axes have theirs from set_log_axis)
            ax = axes[i // ncols, i % ncols]
            if ax.get_xscale() == "linear":
                ax.xaxis.set_major_locator(MaxNLocator(nbins=4 if ncols > 1 else 5))
        _note(fig, pdata.synthetic, caption)
        fit_legend(fig, handles)
        tidy_ticks(fig)
    return fig


# ---- random search efficiency -------------------------------------------------------------
def plot_search_efficiency(frame: pd.DataFrame, *, ax=None,
                           colors: dict[str, str] | None = None, caption: str | None = None):
    """Expected best error of m random models against m (log2 axis), with the central 95% of
    the best of m as a band; each sweep up to m = its size, its band where it has enough models
    (`compare.search_data`, `thin`). More than 3 sweeps: the legend goes below the axes."""
    with style():
        own = ax is None
        sweeps = list(pd.unique(frame["sweep"]))
        below = own and len(sweeps) > 3
        ax = ax if ax is not None else new_figure(size=(5.6, 4.6) if below else None)[1][0, 0]
        fig = ax.figure
        colors = colors or sweep_colors(sweeps)
        for s in sweeps:
            f = frame[(frame["sweep"] == s) & frame["mean"].notna()]
            if f.empty:
                continue
            ax.fill_between(f["m"], f["lo"], f["hi"], color=colors[s], alpha=0.15, linewidth=0)
            ax.plot(f["m"], f["mean"], color=colors[s], marker="o", markersize=3,
                    label=f"{s} (best {f['mean'].iloc[-1]:.2f}% at m={int(f['m'].iloc[-1])})")
        set_log_axis(ax, "x", 2, frame["m"])
        ax.set_xlabel("experiment size m (models trained)")
        ax.set_ylabel("expected best top-1 error (%)")
        ax.set_title(wrap_to(fig, "random search efficiency (mean; band: central 95% of the "
                                  "best of m)", 10.5), fontsize=10.5)
        _note(fig, bool(frame.attrs.get("synthetic")), caption)
        if below:
            fit_legend(fig, ax.get_legend_handles_labels()[0], max_ncols=2)
        else:
            ax.legend(loc="upper right")
        if own:
            tidy_ticks(fig)
    return fig


# ---- per-block widths ---------------------------------------------------------------------
def plot_widths(frame: pd.DataFrame, sweep: str, *, colors: dict[str, str] | None = None,
                caption: str | None = None):
    """Per-block widths of a sweep's best (top row) and worst (bottom row) models, with the
    fitted quantized RegNet widths (dashed) and continuous u_j (dotted) when fitted."""
    f = frame[frame["sweep"] == sweep]
    if f.empty:
        raise DsdError(f"no width data for sweep {sweep!r}")
    k = int(f["order"].max())
    from matplotlib.ticker import MaxNLocator

    color = (colors or sweep_colors([sweep]))[sweep]
    fig, axes = new_figure(2, k, size=(2.55 * k + 0.4, 4.9), sharey=True)
    with style():
        for r, rank in enumerate(("best", "worst")):
            for o in range(1, k + 1):
                ax = axes[r, o - 1]
                m = f[(f["rank"] == rank) & (f["order"] == o)]
                if m.empty:
                    ax.set_visible(False)
                    continue
                j = m["block"].to_numpy()
                ax.step(j, m["width"], where="mid", color=color, label="observed")
                if m["pred"].notna().all():
                    ax.step(j, m["pred"], where="mid", color="0.15", linestyle="--",
                            linewidth=1.1, label="fit, quantized")
                    ax.plot(j, m["u"], color="0.5", linestyle=":", linewidth=1.1,
                            label="fit, $u_j = w_0 + w_a j$")
                rec = m.iloc[0]
                fit = f", e_fit {rec['e_fit']:.3f}" if pd.notna(rec["e_fit"]) else ""
                ax.set_title(f"{rank} {o}: #{rec['index']}, {rec['top1']:.2f}%{fit}",
                             fontsize=8.5)
                set_log_axis(ax, "y", 2, f["width"])
                if o == 1:
                    ax.set_ylabel("width (channels)")
                ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
                if r == 1:
                    ax.set_xlabel("block j")
        handles, _ = axes[0, 0].get_legend_handles_labels()
        fit_legend(fig, handles, max_ncols=3)
        head = (f"{sweep}: per-block widths of the best and worst models"
                + (f" — {SYNTHETIC_NOTE}" if frame.attrs.get("synthetic") else ""))
        fig.suptitle(wrap_to(fig, head, 10) + ("\n" + wrap_to(fig, caption, 9) if caption else ""),
                     fontsize=10)
        tidy_ticks(fig)
    return fig


# ---- training curves ----------------------------------------------------------------------
def plot_curves(cdata, *, colors: dict[str, str] | None = None, caption: str | None = None,
                ncols: int | None = None):
    """One panel per sweep: every model's curve of `cdata.metric` against epoch (thin; a
    still-training model ends at its last epoch so far, marked ○), the sweep's median (thick)
    and interquartile range (band); with several sweeps a last panel overlays the medians and
    bands. `cdata` is `curves.curve_data`'s; `caption` defaults to its own."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, MaxNLocator

    summary = cdata.summary[cdata.summary["shown"] > 0]
    sweeps = list(summary["sweep"])
    colors = colors or sweep_colors(list(cdata.summary["sweep"]))
    panels = sweeps + (["all sweeps"] if len(sweeps) > 1 else [])
    ncols = ncols or (2 if len(panels) == 4 else min(3, len(panels)))
    nrows = -(-len(panels) // ncols)
    fig, axes = new_figure(nrows, ncols, size=(3.4 * ncols + 0.3, 2.8 * nrows + 1.0),
                           sharex=True, sharey=True)
    last = int(cdata.curves["epoch"].max())
    one = last == 1  # single points: markers and error bars instead of lines and bands
    with style():
        for i, name in enumerate(panels):
            ax = axes[i // ncols, i % ncols]
            for s in (sweeps if name == "all sweeps" else [name]):
                color = colors[s]
                b = cdata.bands[cdata.bands["sweep"] == s]
                if name != "all sweeps":
                    c = cdata.curves[cdata.curves["sweep"] == s]
                    lines = [g[["epoch", "value"]].to_numpy(dtype=float)
                             for _, g in c.groupby("model_id", sort=False)]
                    ax.add_collection(LineCollection(lines, colors=color, linewidths=0.6,
                                                     alpha=0.3, rasterized=len(lines) > 200))
                    ends = c[c["in_progress"]].groupby("model_id").tail(1)
                    if one or len(ends):
                        pts = c if one else ends
                        ax.scatter(pts["epoch"], pts["value"], s=12 if not one else 8,
                                   facecolors="none" if not one else color, edgecolors=color,
                                   linewidths=0.8, alpha=0.9 if not one else 0.4, zorder=3)
                if one:
                    ax.errorbar(b["epoch"], b["median"], yerr=[b["median"] - b["q25"],
                                b["q75"] - b["median"]], color=color, marker="s",
                                markersize=5, capsize=4, linewidth=1.6, zorder=4)
                else:
                    ax.fill_between(b["epoch"], b["q25"], b["q75"], color=color, alpha=0.22,
                                    linewidth=0)
                    ax.plot(b["epoch"], b["median"], color=color, linewidth=2.2, zorder=4)
            if name == "all sweeps":
                ax.set_title("medians and interquartile ranges")
            else:
                r = summary[summary["sweep"] == name].iloc[0]
                extra = f", {int(r['in_progress'])} still training" if r["in_progress"] else ""
                ax.set_title(f"{name} (n={int(r['shown'])}{extra})")
            ax.autoscale_view()
            ax.xaxis.set_major_locator(FixedLocator(range(1, last + 1)) if last <= 8 else
                                       MaxNLocator(nbins=6, integer=True))
            if i // ncols == nrows - 1 or i + ncols >= len(panels):
                ax.set_xlabel("epoch")
                ax.xaxis.set_tick_params(labelbottom=True)
            if i % ncols == 0:
                ax.set_ylabel(cdata.label)
        for j in range(len(panels), nrows * ncols):
            axes[j // ncols, j % ncols].set_visible(False)
        axes[0, 0].set_xlim(0.5 if one else 1, last + (0.5 if one else 0))
        handles = [Line2D([], [], color=colors[s], linewidth=2.2,
                          label=f"{s} (n={int(r)})") for s, r in zip(sweeps, summary["shown"])]
        handles += [Line2D([], [], color="0.4", linewidth=0.6, label="one model"),
                    Line2D([], [], color="0.4", linewidth=2.2, label="median"),
                    Patch(color="0.4", alpha=0.25, label="interquartile range")]
        if cdata.curves["in_progress"].any():
            handles.append(Line2D([], [], color="0.4", marker="o", markerfacecolor="none",
                                  linestyle="", label="still training: last epoch so far"))
        _note(fig, cdata.synthetic, caption if caption is not None else cdata.caption())
        fit_legend(fig, handles)
        tidy_ticks(fig)
    return fig


# ---- complexity distributions -------------------------------------------------------------
def plot_complexity(cxdata, *, colors: dict[str, str] | None = None,
                    caption: str | None = None):
    """One panel per measure (flops, params, acts): the EDF of every sweep's sampled models on
    a log axis, sweeps overlaid, with each sweep's sampling window shaded where it bounds that
    measure (one grey band where all sweeps share it). `cxdata` is
    `curves.complexity_data`'s; `caption` defaults to its own."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    measures = [m for m in cxdata.measures if (cxdata.values["measure"] == m).any()]
    if not measures:
        raise DsdError("no flops, params or acts recorded for these models")
    sweeps = list(pd.unique(cxdata.summary["sweep"]))
    colors = colors or sweep_colors(sweeps)
    fig, axes = new_figure(1, len(measures), size=(3.5 * len(measures) + 0.4, 3.5),
                           sharey=True)
    windowed = False
    with style():
        for i, m in enumerate(measures):
            ax = axes[0, i]
            v = cxdata.values[(cxdata.values["measure"] == m) & (cxdata.values["value"] > 0)]
            w = cxdata.windows[cxdata.windows["measure"] == m]
            span = np.r_[v["value"].to_numpy(dtype=float), w["lo"], w["hi"]]
            span = span[span > 0]
            lo, hi = span.min(), span.max()
            pad = (hi / lo) ** 0.03 if hi > lo else 1.05
            lo, hi = lo / pad, hi * pad
            shared = len(w) == len(sweeps) and len(w.drop_duplicates(["lo", "hi"])) == 1
            for rec in (w.head(1) if shared else w).to_dict("records"):
                color = "0.5" if shared else colors[rec["sweep"]]
                ax.axvspan(rec["lo"], rec["hi"], color=color, alpha=0.12 if shared else 0.08,
                           linewidth=0)
                for edge in (rec["lo"], rec["hi"]):
                    ax.axvline(edge, color=color, linestyle="--", linewidth=0.9)
                windowed = True
            for s in sweeps:
                x = np.sort(v.loc[v["sweep"] == s, "value"].to_numpy(dtype=float))
                if not len(x):
                    continue
                y = np.arange(1, len(x) + 1) / len(x)
                ax.step(np.r_[lo, x, hi], np.r_[0.0, y, 1.0], where="post", color=colors[s])
            # ticks over the padded range (not one per value, as for a few sampled widths)
            set_log_axis(ax, "x", 10, np.r_[span, lo, hi])
            ax.set_xlim(lo, hi)
            ax.set_ylim(0, 1.0)
            ax.set_xlabel(cxdata.labels[m])
            if i == 0:
                ax.set_ylabel("cumulative fraction of models")
        med = cxdata.summary[cxdata.summary["measure"] == "flops"].set_index("sweep")
        handles = [Line2D([], [], color=colors[s], label=(
            f"{s} (n={int(med.loc[s, 'n'])}, median {fmt_si(med.loc[s, 'median'])} flops)"
            if s in med.index and med.loc[s, "n"] else s)) for s in sweeps]
        if windowed:
            handles.append(Patch(facecolor="0.5", alpha=0.25, edgecolor="0.5", linestyle="--",
                                 label="sampling window"))
        _note(fig, False, caption if caption is not None else cxdata.caption())
        fit_legend(fig, handles, max_ncols=3)
        tidy_ticks(fig)
    return fig


# ---- one parameter, one panel per sweep ---------------------------------------------------
def plot_param_by_sweep(pdata, param: str, *, colors: dict[str, str] | None = None,
                        caption: str | None = None, ncols: int | None = None):
    """Error against one parameter (e.g. flops), one panel per sweep on shared axes, each with
    its DDS best range (median line, shaded 95% interval): `plot_params` overlays the sweeps,
    which stops being readable beyond two or three. `pdata` is `compare.param_data`'s."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    pts = pdata.points[pdata.points["param"] == param]
    if pts.empty:
        raise DsdError(f"no values of {param} to plot")
    sweeps = list(pd.unique(pts["sweep"]))
    colors = colors or sweep_colors(sweeps)
    ncols = ncols or (2 if len(sweeps) == 4 else min(3, len(sweeps)))
    nrows = -(-len(sweeps) // ncols)
    fig, axes = new_figure(nrows, ncols, size=(3.3 * ncols + 0.3, 2.7 * nrows + 0.9),
                           sharex=True, sharey=True)
    base = pdata.log[param]
    with style():
        for i, s in enumerate(sweeps):
            ax = axes[i // ncols, i % ncols]
            q = pts[pts["sweep"] == s]
            ax.scatter(q["value"], q["top1"], s=9, color=colors[s], alpha=0.55, linewidths=0,
                       rasterized=len(q) > 2000)
            _best_range(ax, pdata.best, param, s, colors[s])
            ax.set_title(f"{s} (n={len(q)})")
            if i // ncols == nrows - 1 or i + ncols >= len(sweeps):
                ax.set_xlabel(pdata.labels[param])
                ax.xaxis.set_tick_params(labelbottom=True)
            if i % ncols == 0:
                ax.set_ylabel("top-1 error (%)")
        if base:
            set_log_axis(axes[0, 0], "x", base, pts["value"])
        for j in range(len(sweeps), nrows * ncols):
            axes[j // ncols, j % ncols].set_visible(False)
        handles = [Line2D([], [], color="0.3", label="best range: bootstrap median"),
                   Patch(color="0.3", alpha=0.2, label="95% interval")]
        _note(fig, pdata.synthetic, caption)
        fit_legend(fig, handles)
        tidy_ticks(fig)
    return fig
