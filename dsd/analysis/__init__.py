"""Analysis of trained populations (DDS §2-3, NDS §4): EDFs, KS tests, normalized EDFs,
best-range bootstrap, e_fit, random-search efficiency, figures and an HTML report.

Notebook use::

    import dsd
    from dsd import analysis as A
    sel = A.select(dsd.load("dsd.sqlite"), ["anynetxa", "anynetxe", "regnetx"])
    edf = A.edf_data(sel.data, normalize="flops", bins=20)   # DataFrames: curves, summary, ks
    cmp = A.compare_data(sel.data, normalize=["none", "acts"])  # .pairs: verdicts, intervals
    fig = A.plot_edf(edf)                                     # a matplotlib Figure
    A.save(fig, "edf.pdf")

Modules: `stats` (pure statistics: EDF, KS, rank test, Holm, best range), `binning` (NDS
complexity normalization), `intervals` (effect sizes with bootstrap intervals), `permutation`
(within-bin permutation tests), `power` (minimum detectable shift), `fit` (e_fit),
`selection` (what is compared), `compare` (plot data frames), `effects` (the one table of
pairwise statistics: `dsd compare`, `dsd edf`'s KS, Findings), `verdicts` (what a row
decided, in words), `guards` (setup differences between compared sweeps), `effects_text`
(`dsd compare`'s text and JSON), `tables` (the formatters every table uses), `trends` (every
parameter vs error: `dsd analyze --trends`), `findings` (the statistics sections of
SUMMARY.md), `plots` (figures), `report` (HTML), `synthetic` (formula results for
demos/tests). No torch is imported; matplotlib only when a figure is drawn.
"""
from .compare import (EdfData, ParamData, best_models, edf_data, param_data, search_data,
                      widths_data)
from .effects import CompareData, compare_data
from .fit import Fit, block_widths, e_fit_of, fit_frame, fit_spec, fit_sweeps, fit_widths
from .plots import (plot_edf, plot_params, plot_search_efficiency, plot_widths, save,
                    sweep_colors)
from .report import build_report, write_report
from .selection import PARAMS, Selection, resolve_sweeps, select
from .stats import (best_range, common_range, edf, edf_at, edf_band, ks, nds_weights,
                    search_efficiency)

__all__ = [
    "PARAMS", "CompareData", "EdfData", "Fit", "ParamData", "Selection", "best_models",
    "best_range", "block_widths", "build_report", "common_range", "compare_data", "e_fit_of",
    "edf", "edf_at", "edf_band", "edf_data", "fit_frame", "fit_spec", "fit_sweeps",
    "fit_widths", "ks", "nds_weights", "param_data", "plot_edf", "plot_params",
    "plot_search_efficiency", "plot_widths", "resolve_sweeps", "save", "search_data",
    "search_efficiency", "select", "sweep_colors", "widths_data", "write_report",
]
