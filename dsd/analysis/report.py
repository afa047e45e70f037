"""One self-contained HTML report of a comparison (figures embedded as base64 PNG, no external
files, scripts or styles): the selection and what was skipped, training curves, error EDFs with
statistics, a flops-normalized EDF, the complexity distributions of the sweeps, error against
flops, comparisons (findings, effect sizes, tests and verdicts under every normalization,
complexity, trends), random-search efficiency, per-sweep parameter analyses with best ranges,
and the best/worst models' per-block widths.

The curves and complexity sections read what a selection drops (epoch rows, every sampled
model, the sampling window) from the store or population file it came from.

Every pairwise number (the EDF sections' KS tables, the comparisons, the Findings) is read from
one `effects.compare_data` table computed once per report (`findings.compute`).
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
from pathlib import Path

import pandas as pd

from ..errors import DsdError
from . import claims, compare, curves, findings, plots
from .selection import Selection, epochs_text, default_params
from .tables import fmt_num as _fmt, html_table  # noqa: F401  (_fmt: the cells' format)

CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1180px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd}
h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}img{max-width:100%;height:auto;display:block;margin:.5em 0}
.warn{background:#fde8e8;border:1px solid #e0a0a0;padding:.6em 1em;color:#8a1020}
.meta{color:#666;font-size:.9em}.note{color:#555;font-size:.9em}
"""


def _img(fig, alt: str) -> str:
    data = base64.b64encode(plots.to_bytes(fig, "png", dpi=110)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


#: column names as the report's tables print them (`top1` holds the error)
HEADERS = {"top1": "error (%)", "at_chance": "at chance"}
#: one format per kind of column: errors with two decimals, complexities in K/M/G (`fmt_si`)
FORMATS = {**dict.fromkeys(("error (%)", "min", "mean", "median", "std", "lo", "hi"), ".2f"),
           "n_eff": ".1f", **dict.fromkeys(("flops", "params", "acts"), "si"),
           "e_fit": ".3f"}
#: a best range's value columns (any parameter, so K/M/G: 4, 2.77, 11.2M)
VALUES = dict.fromkeys(("median", "lo", "hi"), "si")


def _table(df: pd.DataFrame, fmt: dict[str, str] | None = None) -> str:
    return html_table(df.rename(columns=HEADERS), {**FORMATS, **(fmt or {})})


def _notes(notes) -> list[str]:
    """What a section leaves out for too few models (`thin.note`), one paragraph each."""
    return [f"<p class='note'>{html.escape(n)}</p>" for n in notes if n]


def _fewer_bins(data: pd.DataFrame, bins: int) -> int:
    """The most bins (< bins) that leave no sweep with an empty flops bin (0 if none)."""
    from . import stats

    try:
        groups = [data.loc[data["sweep"] == s, "flops"].astype(float).to_numpy()
                  for s in pd.unique(data["sweep"])]
        lo, hi = stats.common_range(*groups)
    except DsdError:
        return 0
    return stats.max_bins(groups, lo, hi, bins - 1)


def report_steps(sel: Selection) -> int:
    """How many times `build_report` calls its `progress` (one per figure section)."""
    return 6 + 2 * sum(1 for s in sel.sweeps if (sel.data["sweep"] == s).any())


def report_pairs(sel: Selection, study: claims.Study | None = None) -> list[tuple[str, str]]:
    """The pairs a report compares: consecutive named sweeps with results, then the study's
    claim pairs among them (first sweep of each space) not already paired."""
    present = [s for s in sel.sweeps if (sel.data["sweep"] == s).any()]
    pairs = list(zip(present, present[1:]))
    firsts: dict[str, str] = {}
    for s in present:
        firsts.setdefault(sel.spaces.get(s, s), s)
    for a, b in findings.study_pairs(firsts, study):
        if (a, b) not in pairs and (b, a) not in pairs:
            pairs.append((a, b))
    return pairs


def build_report(sel: Selection, *, resamples: int = 10_000, seed: int = 0, top: int = 4,
                 bins: int = 20, band: bool = True, title: str | None = None,
                 source: str | None = None, progress=None,
                 study: claims.Study | None = None, store=None) -> str:
    """The report as an HTML string. `progress(what)` is called after each figure section
    (`report_steps(sel)` times). Sweeps without a finished model appear in the counts only.
    `study`: the claims of the Findings table (`claims.load_study`; DDS when None).
    `store`: the `Store` or `PopulationStore` the selection was read from, for the curves and
    complexity sections; when None, `source` is opened if it is the path of a store or a
    population .parquet, else those sections say what they lack."""
    data = sel.data
    if data.empty:
        raise DsdError("no results to report")
    step = progress or (lambda what: None)
    caption = sel.caption()
    present = [s for s in sel.sweeps if (data["sweep"] == s).any()]
    colors = plots.sweep_colors(sel.sweeps)
    title = title or "dsd report: " + " vs ".join(sel.sweeps)
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>",
           f"<p class='meta'>generated {now} by dsd"
           + (f" from {html.escape(source)}" if source else "")
           + f"; recipe <b>{html.escape(sel.recipe)}</b>, dataset <b>{html.escape(sel.dataset)}"
           f"</b>{epochs_text(sel.epochs)}"
           + "; error = final-epoch top-1 test error (%)</p>"]
    if sel.synthetic:
        out.append(f"<p class='warn'>These results include SYNTHETIC data ({plots.SYNTHETIC_NOTE}"
                   f"): errors computed from a formula, not measured.</p>")
    chance = sel.chance_warning()
    if chance:
        out.append(f"<p class='warn'>{html.escape(chance[0].upper() + chance[1:])}.</p>")

    out.append("<h2>Models compared</h2>")
    out.append(_table(sel.counts))
    out.append("<p class='note'>Only finished (done) results of one recipe and dataset are "
               "used; the other models of each sweep are counted by reason (pending = no "
               "result for this recipe yet)"
               + ("; failed, diverged and collapsed models are used at chance error (at "
                  "chance)" if sel.count_failures else
                  "; failed, diverged and collapsed models are left out (--count-failures "
                  "counts them at chance error)") + ".</p>")
    for s in sel.sweeps:
        if s not in present:
            out.append(f"<p class='warn'>{html.escape(s)}: no finished model, so it appears "
                       f"in no figure or statistic below.</p>")

    src, opened = _source(store, source)
    try:  # what the selection dropped, read once from its store
        curve_part = _curves_section(sel, src, colors)
        complexity_part = _complexity_section(sel, src, colors)
    finally:
        if opened is not None:
            opened.close()
    out += curve_part
    step("training curves")
    st = _compute(sel, study=study, resamples=resamples, seed=seed, bins=bins)
    out += _edf_sections(sel, st, colors, caption=caption, band=band, seed=seed, bins=bins,
                         step=step)
    out += complexity_part
    step("complexity")
    out += _flops_section(sel, colors, caption=caption, resamples=resamples, seed=seed)
    step("error vs flops")
    out += _statistics(st)

    out += _late_sections(sel, colors, caption=caption, resamples=resamples, seed=seed, top=top,
                          step=step)
    out.append("</body></html>")
    return "\n".join(out)


def _edf_sections(sel: Selection, st: findings.Stats, colors, *, caption: str, band: bool,
                  seed: int, bins: int, step) -> list[str]:
    """Error EDFs and flops-normalized EDFs with their KS rows (from `st.compare`)."""
    data = sel.data
    out: list[str] = []
    table = st.compare
    ks_note = ("<p class='note'>KS: the rows of the comparison table below (its pairs; Holm "
               "p over its family).</p>")
    out.append("<h2>Error EDFs</h2>")
    edf = compare.edf_data(data, band=band, resamples=1000, seed=seed, table=table,
                          ks=table is not None)
    out.append(_img(plots.plot_edf(edf, colors=colors, caption=caption), "error EDFs"))
    out.append(_table(edf.summary))
    if len(edf.ks):
        out += ["<h3>Kolmogorov-Smirnov tests</h3>", ks_note,
                _table(edf.ks, {"D": ".3f", "p": "p", "p_holm": "p"})]
    out += _notes(edf.notes)
    step("EDFs")

    out.append("<h2>Flops-normalized EDFs</h2>")
    nedf, note = None, ""
    try:
        nedf = compare.edf_data(data, normalize="flops", bins=bins, table=table,
                               ks=table is not None)
    except DsdError as e:
        note = str(e)
        fewer = _fewer_bins(data, bins)
        if fewer >= 2:
            nedf = compare.edf_data(data, normalize="flops", bins=fewer, table=table,
                                   ks=table is not None)
            note = f"{bins} bins left a bin empty; using {fewer} bins"
    if note:
        out.append(f"<p class='note'>{html.escape(note)}</p>")
    if nedf is not None:
        outside, why = nedf.left_out()
        out.append(_img(plots.plot_edf(nedf, colors=colors, caption=sel.caption(
            outside=outside, outside_why=why)), "flops-normalized EDFs"))
        out.append(_table(nedf.summary))
        if len(nedf.ks):
            out += [f"<p class='note'>KS ({html.escape(nedf.ks_test)}): the flops rows of the "
                    "comparison table below, each pair weighted over its own common range."
                    "</p>", _table(nedf.ks, {"D": ".3f", "p": "p", "p_holm": "p"})]
        out += _notes(nedf.notes)
    step("flops-normalized EDFs")
    return out


def _late_sections(sel: Selection, colors, *, caption: str, resamples: int, seed: int,
                   top: int, step) -> list[str]:
    """Random-search efficiency, per-sweep parameters and the best/worst models' widths."""
    data = sel.data
    present = [s for s in sel.sweeps if (data["sweep"] == s).any()]
    out = ["<h2>Random search efficiency</h2>"]
    rse = compare.search_data(data)
    out.append(_img(plots.plot_search_efficiency(rse, colors=colors, caption=caption),
                    "search efficiency"))
    out.append(_table(rse))
    out += _notes(rse.attrs.get("notes", {}).values())
    step("search efficiency")

    out.append("<h2>Parameters: error vs value, with best ranges</h2>")
    out.append(f"<p class='note'>Best range (DDS): draw 25% of the models with replacement, keep "
               f"the value of the lowest-error one, {resamples:,} times (seed {seed}); line = "
               f"median, band = 95% interval.</p>")
    for s in present:
        part = data[data["sweep"] == s]
        params = default_params(part)
        pdata = compare.param_data(part, params, resamples=resamples, seed=seed)
        out.append(f"<h3>{html.escape(s)}</h3>")
        out.append(_img(plots.plot_params(pdata, colors=colors, caption=sel.caption([s])),
                        f"{s} parameters"))
        out.append(_table(pdata.best.drop(columns=["sweep"]), VALUES))
        out += _notes(pdata.notes)
        step(f"{s} parameters")

    out.append("<h2>Best and worst models: widths per block</h2>")
    widths = compare.widths_data(data, top=top)
    fitted = "e_fit" in data and data["e_fit"].notna().any()
    if not fitted:
        out.append("<p class='note'>Run <code>dsd fit SWEEP</code> to add the fitted RegNet "
                   "widths (dashed) and e_fit.</p>")
    table = compare.best_models(data, top=top)
    for s in present:
        out.append(f"<h3>{html.escape(s)}</h3>")
        if (widths["sweep"] == s).any():
            out.append(_img(plots.plot_widths(widths, s, colors=colors,
                                              caption=sel.caption([s])), f"{s} widths"))
        else:
            out.append("<p class='note'>Imported models without a dsd spec (opaque): no "
                       "per-block widths.</p>")
        out.append(_table(table[table["sweep"] == s].drop(columns=["sweep"])))
        step(f"{s} widths")
    return out


def _source(store, source: str | None):
    """(the store or population the selection came from, the one opened here to close) or
    (None, None) when neither is given nor `source` names one."""
    if store is not None or not source or not Path(source).is_file():
        return store, None
    if Path(source).suffix.lower() == ".parquet":
        from .population import PopulationStore

        return PopulationStore.open(source), None
    from ..store import load

    db = load(source)
    return db, db


def _curves_section(sel: Selection, src, colors) -> list[str]:
    """Per-epoch top-1 error of the models of the selection's recipe and dataset, finished or
    still training (`curves.curve_data`)."""
    out = ["<h2>Training curves</h2>"]
    if src is None:
        return out + ["<p class='note'>No per-epoch data: the report was built without its "
                      "store (build_report(store=…)).</p>"]
    try:
        rows = curves.epoch_rows(src, sel.sweeps, recipe=sel.recipe, dataset=sel.dataset,
                                 synthetic=sel.synthetic)
        cdata = curves.curve_data(rows, "top1")
    except DsdError as e:
        return out + [f"<p class='note'>No curves: {html.escape(str(e))}.</p>"]
    out.append(f"<p class='note'>{html.escape(cdata.caption())}. Thin lines: one model each; "
               "thick: the sweep's median per epoch over the models that reached it; band: "
               "interquartile range (train loss: <code>dsd curves --metric train_loss</code>)."
               "</p>")
    out.append(_img(plots.plot_curves(cdata, colors=colors), "training curves"))
    out.append(_table(curves.curve_table(cdata)))
    return out


def _complexity_section(sel: Selection, src, colors) -> list[str]:
    """flops, params and acts of every sampled model of each sweep, with the sampling window
    (without the store: of the selected models only)."""
    out = ["<h2>Complexity of the sweeps</h2>"]
    if src is not None:
        cx = curves.complexity_data(src, sel.sweeps)
        caption = cx.caption()
    else:
        cx = curves.complexity_frame(sel.data)
        caption = (f"the {len(sel.data)} selected (finished) models only: the report was "
                   "built without its store; sampling window unknown")
    out.append(f"<p class='note'>{html.escape(caption)}. Curves: the fraction of a sweep's "
               "models at or below each value (log axis).</p>")
    out.append(_img(plots.plot_complexity(cx, colors=colors, caption=caption),
                    "complexity distributions"))
    out.append(_table(curves.complexity_table(cx)))
    return out


def _flops_section(sel: Selection, colors, *, caption: str, resamples: int,
                   seed: int) -> list[str]:
    """Error against flops per sweep with the DDS best range (`dsd analyze --param flops`)."""
    out = ["<h2>Error against flops</h2>",
           f"<p class='note'>{html.escape(caption)}. One panel per sweep; line and band: the "
           f"best range of flops (DDS bootstrap, {resamples:,} resamples, seed {seed}; "
           "median and 95% interval). ρ(error, flops): the complexity table under "
           "Comparisons.</p>"]
    pdata = compare.param_data(sel.data, ["flops"], resamples=resamples, seed=seed)
    out.append(_img(plots.plot_param_by_sweep(pdata, "flops", colors=colors, caption=caption),
                    "error against flops"))
    out.append(_table(pdata.best.drop(columns=["param"]), VALUES))
    return out + _notes(pdata.notes)


def _compute(sel: Selection, *, study: claims.Study | None, resamples: int, seed: int,
             bins: int) -> findings.Stats:
    """The report's one pairwise table (`report_pairs` × every normalization), trends and
    best-value tests."""
    present = [s for s in sel.sweeps if (sel.data["sweep"] == s).any()]
    labels = {s: sel.spaces.get(s, s) for s in present}
    firsts: dict[str, str] = {}
    for s in present:
        firsts.setdefault(labels[s], s)
    return findings.compute(sel.data, firsts, study=study, pairs=report_pairs(sel, study),
                            labels=labels, bins=bins, resamples=resamples, seed=seed)


def _statistics(st: findings.Stats) -> list[str]:
    """Findings, pairwise comparisons under every normalization, complexity and trends: the
    tables of `dsd compare`, `dsd analyze --trends` and SUMMARY.md (dsd.analysis.findings)."""
    out = ["<h2>Comparisons: effect sizes, tests, power, verdicts</h2>"]
    cmp = st.compare
    source = (st.study or claims.load_study()).source
    f = findings.findings_table(st)
    if len(f):
        out += [f"<h3>Findings (claims of the {html.escape(source)})</h3>", _table(f)]
    if cmp is None:
        out.append(f"<p class='note'>No pairwise comparison: "
                   f"{html.escape(st.note or 'one sweep')}.</p>")
    else:
        out += [f"<p class='note'>{html.escape(findings.comparison_note(cmp))}</p>",
                *(f"<p class='warn'>{html.escape(w)}</p>" for w in
                  (*getattr(cmp, "warnings", ()), *(f"not compared: {s}" for s in st.skipped))),
                _table(findings.comparison_table(st),
                       {"KS D": ".3f", "P(A<B)": ".3f", "MDS": ".2f"}),
                "<h3>Complexity and error within each sweep</h3>",
                _table(findings.complexity_table(st), dict.fromkeys(
                    [f"ρ(error, {k})" for k in compare.COMPLEXITY], "+.2f")),
                *_notes(getattr(cmp, "notes", ()))]
    if st.trends:
        out.append("<h3>Trends: every parameter against error (Spearman ρ, Holm per sweep)"
                   "</h3>")
        for s, t in st.trends.items():
            out += [f"<h4>{html.escape(s)}</h4>", _table(findings.trend_table(t))]
    return out


def write_report(sel: Selection, path: str | Path, **kwargs) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise DsdError(f"report must be an .html file, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_report(sel, **kwargs), encoding="utf-8")
    return path
