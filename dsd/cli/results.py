"""Publishing a trained population: `dsd export-population` (store → one Parquet file) and
`dsd summarize` (Parquet → SUMMARY.md). No torch; pandas/pyarrow imported inside the commands.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import DsdError
from . import StoreOpt, command


@command("export-population")
def export_population_cmd(
    names: Annotated[Optional[list[str]], typer.Argument(
        help="Sweeps (or space names with one sweep) [default: every sweep in the store].",
        show_default=False)] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="The .parquet file to write.",
                                         show_default=False)] = Path("population.parquet"),
    recipe: Annotated[Optional[str], typer.Option(
        help="Results of this recipe (needed when there are several).")] = None,
    dataset: Annotated[Optional[str], typer.Option(
        help="Results on this dataset (needed when there are several).")] = None,
    runs: Annotated[Optional[Path], typer.Option(
        help="JSON-lines log of the training runs (written by scripts/reproduce_cifar10.py) "
             "to embed for wall-clock and GPU-hours.")] = None,
    store: StoreOpt = None,
):
    """One row per model: spec, complexity, recipe, status, errors, time, GPU, epoch curves."""
    from ..analysis.population import population_frame, read_runs, write_population
    from ..analysis.selection import resolve_sweeps
    from ..store import default_path, load

    path = store if store is not None else default_path()
    if not Path(path).exists():
        raise DsdError(f"no store at {path} (pass --store or set DSD_STORE)")
    db = load(path)
    sweeps = resolve_sweeps(db, names) if names else db.sweep_names()
    if not sweeps:
        raise DsdError(f"no sweeps in {path}")
    if runs is not None and not runs.exists():
        raise DsdError(f"no runs log at {runs}")
    df = population_frame(db, sweeps, recipe=recipe, dataset=dataset)
    log = read_runs(runs)
    write_population(df, output, log)
    counts = df.groupby("status").size()
    typer.echo(f"wrote {len(df)} models of {len(sweeps)} sweeps to {output} ("
               + ", ".join(f"{k} {v}" for k, v in counts.items())
               + f"; {len(log)} training runs)")


@command("summarize")
def summarize_cmd(
    population: Annotated[Path, typer.Argument(help="A population .parquet file.",
                                               show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Write the markdown here [default: print it].")] = None,
    notes: Annotated[Optional[Path], typer.Option(
        help="Markdown included verbatim as the 'Comparison with the paper' section.")] = None,
    resamples: Annotated[int, typer.Option(min=1, help="Best-range bootstrap resamples.")]
    = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    study: Annotated[Optional[Path], typer.Option(
        help="A study file (YAML: spaces, pairs with claims, trend claims) whose claims make "
             "the Findings [default: the DDS paper's, dsd/studies/dds.yaml].",
        show_default=False)] = None,
):
    """SUMMARY.md from a population file: counts, errors, KS tests, best ranges, Findings."""
    from ..analysis.claims import load_study
    from ..analysis.population import read_population
    from ..analysis.summary import summary_markdown

    claims = load_study(study)
    df, runs = read_population(population)
    if notes is not None and not notes.exists():
        raise DsdError(f"no notes file at {notes}")
    text = summary_markdown(df, runs, notes=notes.read_text() if notes else None,
                            source=population.name, resamples=resamples, seed=seed,
                            study=claims)
    if output is None:
        typer.echo(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}")
