"""Figure commands: curves (per-epoch training curves) and complexity (flops, params, acts of
every sampled model). No torch; matplotlib and the analysis modules are imported inside the
commands. Each reads one source (a store, or a population .parquet), calls the data function of
`dsd.analysis.curves`, prints its table and, with -o, draws it (`dsd.analysis.plots`).
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import DsdError
from . import StoreOpt, command
from .analysis import (DatasetOpt, Names, PopulationOpt, RecipeOpt, SyntheticOpt, _check_output,
                       _echo_frame, _open_store, _out_opt, _save)


class Metric(str, Enum):
    top1 = "top1"
    train_loss = "train_loss"


def _echo_wrapped(text: str) -> None:
    from ..analysis.tables import wrap

    typer.echo("\n".join(wrap(text, rest="  ")))


def _source(store: Optional[Path], population: Optional[Path]):
    """The store, or the population file read as one (`PopulationStore`)."""
    if population is not None and store is not None:
        raise DsdError("give either --store or --population, not both")
    if population is not None:
        from ..analysis.population import PopulationStore

        return PopulationStore.open(population)
    return _open_store(store)


@command("curves")
def curves_cmd(
    names: Names,
    metric: Annotated[Metric, typer.Option(
        "--metric", help="Per-epoch value to plot: top-1 test error (%) or train loss "
        "(cross-entropy).")] = Metric.top1,
    output: _out_opt("curves figure") = None,
    store: StoreOpt = None, recipe: RecipeOpt = None, dataset: DatasetOpt = None,
    synthetic: SyntheticOpt = False, population: PopulationOpt = None,
):
    """Per-epoch training curves: every model thin, each sweep's median and interquartile
    range; models still training show their epochs so far."""
    from ..analysis.curves import curve_data, curve_table, epoch_rows

    _check_output(output)
    rows = epoch_rows(_source(store, population), names, recipe=recipe, dataset=dataset,
                      synthetic=synthetic)
    data = curve_data(rows, metric.value)
    _echo_wrapped(data.caption())
    _echo_frame(curve_table(data), f"{data.label}: median [interquartile range] at each "
                "sweep's last epoch")
    from ..analysis.plots import plot_curves

    _save(plot_curves(data) if output is not None else None, output)


@command("complexity")
def complexity_cmd(
    names: Names,
    output: _out_opt("complexity figure") = None,
    store: StoreOpt = None, population: PopulationOpt = None,
):
    """Distributions of flops, params and acts of every sampled model (trained or not), with
    each sweep's sampling window."""
    from ..analysis.curves import complexity_data, complexity_table

    _check_output(output)
    data = complexity_data(_source(store, population), names)
    _echo_wrapped(data.caption())
    _echo_frame(complexity_table(data), "quartiles over every sampled model; window: the "
                "range the sampler accepted")
    from ..analysis.plots import plot_complexity

    _save(plot_complexity(data) if output is not None else None, output)
