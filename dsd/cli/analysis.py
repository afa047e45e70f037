"""Analysis commands: edf, compare, analyze, fit, search-efficiency, report (no torch;
matplotlib and the analysis modules are imported inside the commands, so `--help` stays fast).

Each command resolves names (sweep names, or a space name with exactly one sweep), keeps the
finished results of one recipe and dataset, says how many models it used and skipped, calls one
library function and prints its table.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import DsdError
from . import StoreOpt, command


class Complexity(str, Enum):
    flops = "flops"
    params = "params"
    acts = "acts"


Names = Annotated[list[str], typer.Argument(
    help="Sweep names; a space name selects that space's sweep when it has exactly one.",
    show_default=False)]
RecipeOpt = Annotated[Optional[str], typer.Option(
    "--recipe", help="Compare results of this recipe (needed when there are several).")]
DatasetOpt = Annotated[Optional[str], typer.Option(
    "--dataset", help="Compare results on this dataset (needed when there are several).")]
PopulationOpt = Annotated[Optional[Path], typer.Option(
    "--population", help="Read a population .parquet (dsd export-population) instead of the "
    "store.", show_default=False)]
SyntheticOpt = Annotated[bool, typer.Option(
    "--synthetic", help="Include results stored as synthetic (formula) data.")]
NormalizeOpt = Annotated[Optional[Complexity], typer.Option(
    "--normalize", help="NDS normalization: weight models so this complexity is uniform over "
    "the sweeps' common range.", show_default=False)]
BinsOpt = Annotated[int, typer.Option("--bins", min=1, help="Bins of the normalization.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")]
StudyOpt = Annotated[Optional[Path], typer.Option(
    "--study", help="A study file (YAML: spaces, pairs with claims, trend claims) whose claims "
    "make the Findings [default: the DDS paper's, dsd/studies/dds.yaml].", show_default=False)]
CountFailuresOpt = Annotated[bool, typer.Option(
    "--count-failures", help="Count failed, diverged and collapsed models at chance error "
    "(100·(1 − 1/classes)) instead of leaving them out (leaving them out favours the space "
    "that fails more).")]


def _out_opt(what: str):
    return Annotated[Optional[Path], typer.Option(
        "-o", "--output", help=f"Write the {what} here (.png, .pdf or .svg).",
        show_default=False)]


@contextmanager
def progress_bar(label: str, total: int, console=None):
    """A rich progress bar on stderr like training's (bar, count, elapsed, ETA), silent when
    stderr is not a terminal; yields `advance(what)`."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    console = console or Console(stderr=True)
    bar = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[what]}"), TimeElapsedColumn(), TextColumn("ETA"),
                   TimeRemainingColumn(), console=console, disable=not console.is_terminal)
    task = bar.add_task(label, total=max(total, 1), what="")
    with bar:
        yield lambda what="": bar.update(task, advance=1, what=what)


def _open_store(path: Optional[Path]):
    from ..store import default_path, load

    path = path if path is not None else default_path()
    if str(path) != ":memory:" and not Path(path).exists():
        raise DsdError(f"no store at {path} (run `dsd sample` first, or pass --store / set "
                       f"DSD_STORE)")
    return load(path)


def _select(names, store, recipe, dataset, synthetic, population=None, *,
            count_failures: bool = False, min_models: int = 1):
    from ..analysis.selection import select

    if population is not None and store is not None:
        raise DsdError("give either --store or --population, not both")
    if population is not None:
        from ..analysis.population import PopulationStore
        source = PopulationStore.open(population)
    else:
        source = _open_store(store)
    sel = select(source, names, recipe=recipe, dataset=dataset, synthetic=synthetic,
                 count_failures=count_failures, min_models=min_models)
    typer.echo(sel.summary())
    from ..analysis.provenance import provenance_warnings

    chance = sel.chance_warning()
    _echo_notes([*provenance_warnings(sel.data), *([chance] if chance else [])], "warning: ")
    return sel


def _echo_notes(notes, first: str = "", rest: str = "  ") -> None:
    """Notes and warnings, each wrapped at 80 columns (`tables.wrap`)."""
    from ..analysis.tables import wrap

    for text in notes:
        typer.echo("\n".join(wrap(text, first, rest)))


def _echo_table(df, title: str | None = None, fmt: dict[str, str] | None = None,
                notes=()) -> None:
    """A table whose cells are `tables.fmt_num` text (`fmt`: column → spec; missing values
    "–", never None or nan), under its title wrapped to 80 columns, and the `notes` that say
    what it leaves out (`thin.note`)."""
    import pandas as pd

    from ..analysis.tables import fmt_num, wrap

    fmt = fmt or {}
    text = df.apply(lambda col: col.map(lambda v: fmt_num(v, fmt.get(col.name))))
    if title:
        typer.echo("\n" + "\n".join(wrap(title)))
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        typer.echo(text.to_string(index=False))
    _echo_notes(notes)


_echo_frame = _echo_table  # the name `dsd.cli.figures` uses
#: the error columns of every table: one format, two decimals
ERRORS = {"min": ".2f", "mean": ".2f", "median": ".2f", "n_eff": ".1f"}


def _save(fig, output: Optional[Path]) -> None:
    from ..analysis.plots import save

    if output is None:
        typer.echo("\n(no figure written; use -o FILE.png|.pdf|.svg)")
        return
    typer.echo(f"\nwrote {save(fig, output)}")


def _check_output(output: Optional[Path]) -> None:
    from ..analysis.plots import FORMATS

    if output is not None and output.suffix.lower() not in FORMATS:
        raise DsdError(f"cannot write {output}: unknown figure format "
                       f"{output.suffix or '(none)'}; use {', '.join(FORMATS)}")


@command("edf")
def edf_cmd(
    names: Names,
    compare: Annotated[bool, typer.Option(
        "--compare", help="Compare the named sweeps (the default; for readability).")] = False,
    output: _out_opt("EDF figure") = None,
    normalize: NormalizeOpt = None,
    bins: BinsOpt = 20,
    band: Annotated[bool, typer.Option("--band", help="Add bootstrap 95% bands.")] = False,
    resamples: Annotated[int, typer.Option("--resamples", min=1,
                                           help="Bootstrap resamples of --band.")] = 1000,
    seed: SeedOpt = 0,
    store: StoreOpt = None, recipe: RecipeOpt = None, dataset: DatasetOpt = None,
    synthetic: SyntheticOpt = False, population: PopulationOpt = None,
    count_failures: CountFailuresOpt = False,
):
    """Error EDFs of sweeps, their n/min/mean/median and pairwise KS tests (D, p)."""
    from ..analysis.compare import edf_data
    from ..analysis.plots import plot_edf
    from ..analysis.tables import fmt_si

    _check_output(output)
    sel = _select(names, store, recipe, dataset, synthetic, population,
                  count_failures=count_failures)
    data = edf_data(sel.data, normalize=normalize.value if normalize else None, bins=bins,
                    band=band, resamples=resamples, seed=seed)
    title = "summary (top-1 error, %)"
    if data.normalize:
        lo, hi = data.range
        title = (f"summary, normalized by {data.normalize}: {data.bins} bins over "
                 f"[{fmt_si(lo)}, {fmt_si(hi)}] (mean/median weighted; dropped = outside "
                 f"the range)")
    _echo_table(data.summary, title, ERRORS)
    if len(data.ks):
        n = len(data.ks)
        _echo_table(data.ks, f"Kolmogorov-Smirnov ({data.ks_test}). p_holm: Holm-adjusted "
                    f"over the {n} pair{'s' if n > 1 else ''} shown; effect sizes, intervals "
                    f"and power: dsd compare", {"D": ".3f", "p": "p", "p_holm": "p"})
    _echo_notes(data.notes)
    outside, why = data.left_out()
    _save(plot_edf(data, caption=sel.caption(outside=outside, outside_why=why))
          if output is not None else None, output)


@command("analyze")
def analyze_cmd(
    names: Names,
    param: Annotated[Optional[list[str]], typer.Option(
        "--param", "-p", help="Parameter to plot (repeat). Per stage d1..d4, w1..w4, b1..b4, "
        "g1..g4; shared b, g; depth, max_width; RegNet d, w0, wa, wm; flops, params, acts; "
        "e_fit, fit_w0, fit_wa, fit_wm. Default: a set suited to the sweeps.",
        show_default=False)] = None,
    output: _out_opt("figure") = None,
    resamples: Annotated[int, typer.Option("--resamples", min=1,
                                           help="Best-range bootstrap resamples.")] = 10_000,
    seed: SeedOpt = 0,
    trends: Annotated[bool, typer.Option(
        "--trends", help="Every sampled and derived parameter vs error: Spearman ρ with a "
        "bootstrap interval, Holm-adjusted p, ranked by |ρ|, with best ranges.")] = False,
    store: StoreOpt = None, recipe: RecipeOpt = None, dataset: DatasetOpt = None,
    synthetic: SyntheticOpt = False, population: PopulationOpt = None,
    count_failures: CountFailuresOpt = False,
):
    """Error against parameters, with the DDS best-range bootstrap (median, 95% interval)."""
    from ..analysis.compare import param_data
    from ..analysis.plots import plot_params
    from ..analysis.selection import default_params

    _check_output(output)
    sel = _select(names, store, recipe, dataset, synthetic, population,
                  count_failures=count_failures)
    if trends:
        from ..analysis.trends import trend_lines, trends as trend_table

        for s in sel.sweeps:
            typer.echo("")
            typer.echo("\n".join(trend_lines(trend_table(sel.data, s, resamples=resamples,
                                                           seed=seed))))
        if output is None and not param:
            return
    params = param or default_params(sel.data)
    data = param_data(sel.data, params, resamples=resamples, seed=seed)
    _echo_table(data.best[["param", "sweep", "median", "lo", "hi", "n", "k"]],
                f"best range (value of the best of 25% drawn, {resamples:,} resamples, seed "
                f"{seed}; lo/hi = 95% interval)", dict.fromkeys(("median", "lo", "hi"), "si"),
                data.notes)
    _save(plot_params(data, caption=sel.caption()) if output is not None else None, output)


@command("fit")
def fit_cmd(
    names: Names,
    store: StoreOpt = None,
    population: Annotated[Optional[Path], typer.Option(
        "--population", help="Refit the models of a population .parquet instead, with dsd's "
        "current rule, and rewrite its fit columns (the rest of the file is kept).",
        show_default=False)] = None,
):
    """Fit the RegNet rule to every model of sweeps (e_fit, DDS §3.3) and store the fits."""
    import pandas as pd

    from ..analysis.fit import fit_sweeps
    from ..analysis.selection import resolve_sweeps

    t0 = time.time()
    if population is not None:
        from ..analysis.population import PopulationStore, refit_population

        sweeps = resolve_sweeps(PopulationStore.open(population), names)
        fits = refit_population(population, sweeps)
        changed = len(fits) - int(((fits["e_fit"] - fits["e_fit_before"]).abs() <= 1e-9).sum())
        where = (f"rewrote the fits of {len(fits)} models in {population} ({changed} changed; "
                 f"{time.time() - t0:.1f} s)")
    else:
        db = _open_store(store)
        sweeps = resolve_sweeps(db, names)
        total = sum(len(db.models(s)) for s in sweeps)
        with progress_bar("fit", total) as advance:
            fits = fit_sweeps(db, sweeps, progress=lambda sweep, done, n: advance(sweep))
        where = f"stored {len(fits)} fits in {db.path} ({time.time() - t0:.1f} s)"
    rows = []
    for s in sweeps:
        f = fits[fits["sweep"] == s]["e_fit"]
        rows.append({"sweep": s, "models": len(f), "min": f.min(), "q25": f.quantile(0.25),
                     "median": f.median(), "q75": f.quantile(0.75), "max": f.max(),
                     "e_fit=0": int((f < 1e-9).sum())})
    _echo_table(pd.DataFrame(rows), "e_fit (mean |log(predicted / observed width)| per block)",
                dict.fromkeys(("min", "q25", "median", "q75", "max"), ".3f"))
    typer.echo(f"\n{where}; use `dsd analyze SWEEP --param e_fit`")


@command("search-efficiency")
def search_cmd(
    names: Names,
    output: _out_opt("figure") = None,
    normalize: NormalizeOpt = None,
    bins: BinsOpt = 20,
    store: StoreOpt = None, recipe: RecipeOpt = None, dataset: DatasetOpt = None,
    synthetic: SyntheticOpt = False, population: PopulationOpt = None,
    count_failures: CountFailuresOpt = False,
):
    """Expected best error of m random models (mean, and the central 95% of the best of m)
    against m = 1, 2, 4, …."""
    from ..analysis.compare import search_data
    from ..analysis.plots import plot_search_efficiency
    from ..analysis.tables import fmt_ci, fmt_num

    _check_output(output)
    sel = _select(names, store, recipe, dataset, synthetic, population,
                  count_failures=count_failures)
    data = search_data(sel.data, normalize=normalize.value if normalize else None, bins=bins)
    table = data.assign(cell=[fmt_ci(m, lo, hi, ".2f") if hi == hi else fmt_num(m, ".2f")
                              for m, lo, hi in zip(data["mean"], data["lo"], data["hi"])])
    wide = table.pivot(index="m", columns="sweep", values="cell")[sel.sweeps].reset_index()
    wide.columns.name = None
    _echo_table(wide, "expected best top-1 error (%) of m random models, mean [central 95%]",
                notes=[v for k, v in data.attrs.get("notes", {}).items() if k != "std"])
    _save(plot_search_efficiency(data, caption=sel.caption()) if output is not None else None,
          output)


@command("report")
def report_cmd(
    names: Names,
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.",
                                         show_default=False)],
    resamples: Annotated[int, typer.Option("--resamples", min=1,
                                           help="Best-range bootstrap resamples.")] = 10_000,
    seed: SeedOpt = 0,
    bins: BinsOpt = 20,
    top: Annotated[int, typer.Option("--top", min=1,
                                     help="Best and worst models shown per sweep.")] = 4,
    study: StudyOpt = None,
    store: StoreOpt = None, recipe: RecipeOpt = None, dataset: DatasetOpt = None,
    synthetic: SyntheticOpt = False, population: PopulationOpt = None,
    count_failures: CountFailuresOpt = False,
):
    """One self-contained HTML report: EDFs, statistics, parameters, best/worst models."""
    from ..analysis.claims import load_study
    from ..analysis.report import write_report

    if output.suffix.lower() not in (".html", ".htm"):
        raise DsdError(f"report must be an .html file, got {output}")
    claims = load_study(study)
    sel = _select(names, store, recipe, dataset, synthetic, population,
                  count_failures=count_failures, min_models=0)
    t0 = time.time()
    from ..analysis.report import report_steps
    from ..store import default_path

    with progress_bar("report", report_steps(sel)) as advance:
        path = write_report(sel, output, resamples=resamples, seed=seed, bins=bins, top=top,
                            study=claims,
                            source=str(population or store or default_path()),
                            progress=advance)
    typer.echo(f"\nwrote {path} ({path.stat().st_size / 1e6:.1f} MB, {time.time() - t0:.1f} s)")


def _pairs_of(text: Optional[str], sel, all_pairs: bool) -> list[tuple[str, str]]:
    """--pairs 'a:b,c:d' → sweep pairs among the named sweeps (a space name stands for its
    one named sweep); without it, consecutive pairs or, with --all-pairs, every pair."""
    from ..analysis import effects

    if not text:
        return effects.pair_list(sel.sweeps, all_pairs=all_pairs)
    if all_pairs:
        raise DsdError("give either --pairs or --all-pairs, not both")

    def one(name: str) -> str:
        if name in sel.sweeps:
            return name
        hits = [s for s in sel.sweeps if sel.spaces.get(s) == name]
        if len(hits) != 1:
            raise DsdError(f"--pairs: {name!r} is not one of the named sweeps "
                           f"({', '.join(sel.sweeps)})")
        return hits[0]

    pairs = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        ends = item.split(":")
        if len(ends) != 2 or not all(e.strip() for e in ends):
            raise DsdError(f"--pairs {item!r}: write each pair as A:B, comma-separated")
        a, b = (one(e.strip()) for e in ends)
        if a == b:
            raise DsdError(f"--pairs {item!r}: a sweep cannot be compared with itself")
        pairs.append((a, b))
    return list(dict.fromkeys(pairs))


def _with_sweep_facts(data, store: Optional[Path], population: Optional[Path]):
    """The selection with the columns `guards.pair_warnings` checks: a population file has
    them (samplers, window); a store's results get them from each sweep's record."""
    import json

    if population is not None or data.empty:
        return data
    db = _open_store(store)
    facts = {}
    for s in data["sweep"].unique():
        info = db.sweep(s)
        facts[s] = ((info["space_def"].get("samplers", "dsd1")
                     if info.get("source", "dsd") == "dsd" else "-"),
                    json.dumps(info["window"], sort_keys=True))
    return data.assign(samplers=data["sweep"].map(lambda s: facts[s][0]),
                       window=data["sweep"].map(lambda s: facts[s][1]))


@command("compare")
def compare_cmd(
    names: Names,
    all_pairs: Annotated[bool, typer.Option(
        "--all-pairs", help="Compare every pair [default: consecutive pairs A→B, B→C, …].")]
    = False,
    pairs: Annotated[Optional[str], typer.Option(
        "--pairs", help="Compare exactly these pairs of the named sweeps, e.g. "
        "'anynetxd:anynetxe,anynetxe:regnetx'; they are the family.", show_default=False)]
    = None,
    family: Annotated[str, typer.Option(
        "--family", help="pairs: Holm over the primary tests of all pairs compared; each: "
        "every pair its own family of one (no adjustment across pairs).")] = "pairs",
    normalize: Annotated[str, typer.Option(
        "--normalize", help="Comma-separated: none (plain), flops, params, acts (NDS "
        "weighting over each pair's common range). The first is the primary test; the "
        "others are sensitivity analyses outside the family.")] = "none",
    bins: Annotated[int, typer.Option(
        "--bins", min=2, help="The most bins a normalization uses (the rule: ⌊√min(n_A, "
        "n_B)⌋, at least 2).")] = 20,
    resamples: Annotated[int, typer.Option("--resamples", min=10_000,
                                           help="Bootstrap resamples.")] = 10_000,
    permutations: Annotated[int, typer.Option(
        "--permutations", min=1000, help="Within-bin permutations of the normalized and "
        "device rows' tests.")] = 10_000,
    sims: Annotated[int, typer.Option("--sims", min=100, help="Simulations of the minimum "
                                      "detectable shift.")] = 1000,
    seed: SeedOpt = 0,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print every number as one JSON document (README: compare --json).")]
    = False,
    store: StoreOpt = None, recipe: RecipeOpt = None, dataset: DatasetOpt = None,
    synthetic: SyntheticOpt = False, population: PopulationOpt = None,
    count_failures: CountFailuresOpt = False,
):
    """Pairs of sweeps: effect sizes with intervals, the family's tests, sensitivity rows,
    power and verdicts."""
    import json

    from ..analysis import effects, effects_text

    norms = effects.parse_normalize(normalize)
    if family not in effects.FAMILIES:
        raise DsdError(f"--family {family}: allowed values are {', '.join(effects.FAMILIES)}")
    if as_json:  # stdout is the document alone; the selection summary goes to stderr
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            sel = _select(names, store, recipe, dataset, synthetic, population,
                          count_failures=count_failures)
        typer.echo(buf.getvalue().rstrip(), err=True)
    else:
        sel = _select(names, store, recipe, dataset, synthetic, population,
                      count_failures=count_failures)
    data = effects.compare_data(_with_sweep_facts(sel.data, store, population),
                                _pairs_of(pairs, sel, all_pairs), normalize=norms, bins=bins,
                                resamples=resamples, sims=sims, seed=seed,
                                permutations=permutations, family=family)
    if as_json:
        typer.echo(json.dumps(effects_text.to_json(data), indent=1))
        return
    typer.echo("\ncomplexity (medians) and within-sweep Spearman ρ of error with each")
    typer.echo("\n".join(effects_text.complexity_lines(data.complexity)))
    _echo_notes(data.notes)
    typer.echo("")
    typer.echo("\n".join(effects_text.pairs_lines(data)))
