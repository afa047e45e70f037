"""`dsd decide`: a thin command over `dsd.decide` (torch is imported when training starts)."""
from __future__ import annotations

import math
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ..errors import DsdError
from . import StoreOpt, command, print_table
from .train import EXIT_MODELS_FAILED, Executor, parse_gpus

console = Console()

#: Exit code when --max-time stopped the run with pairs still undecided (run it again).
EXIT_UNDECIDED = 4


class Method(str, Enum):
    group = "group"
    anytime = "anytime"


class Pairs(str, Enum):
    consecutive = "consecutive"
    all = "all"


@command("decide")
def decide_cmd(
    spaces: Annotated[Optional[list[str]], typer.Argument(
        help="Two or more spaces (names or YAML paths); with --show, sweeps or spaces to list "
             "[default: every recorded comparison].", show_default=False)] = None,
    max_n: Annotated[int, typer.Option(help="Models per space at most.")] = 100,
    looks: Annotated[int, typer.Option(
        help="Planned looks, after ⌈k·max-n/looks⌉ models per space (anytime: how often it "
             "looks).")] = 10,
    method: Annotated[Method, typer.Option(
        help="group: group-sequential Mann–Whitney test, O'Brien–Fleming-type spending at the "
             "planned looks; anytime: betting on sequential ranks, valid at any look.")]
    = Method.group,
    alpha: Annotated[float, typer.Option(help="Two-sided type I error, per pair.")] = 0.05,
    futility: Annotated[bool, typer.Option(
        "--futility", help="Stop a pair for futility (group; non-binding).")] = False,
    pairs: Annotated[Pairs, typer.Option(
        help="consecutive: A–B, B–C, …; all: every pair.")] = Pairs.consecutive,
    dataset: Annotated[str, typer.Option(
        help="imagenet (224², 1000 classes) or cifar10 (32², 10); sampled and trained on.")]
    = "imagenet",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    flops: Annotated[Optional[str], typer.Option(
        help="Budget F: sample in the window [0.9·F, F], e.g. 400MF [default: each space's "
             "window].")] = None,
    flops_range: Annotated[Optional[tuple[str, str]], typer.Option(
        help="Explicit window LO HI, e.g. 360MF 400MF.")] = None,
    samplers: Annotated[Optional[str], typer.Option(
        help="Sampler convention: pycls or dsd1 [default: the space's].")] = None,
    tag: Annotated[Optional[str], typer.Option(
        help="Suffix of the sweep names (SPACE-DATASET-sSEED-TAG): a second study of the same "
             "spaces in one store.")] = None,
    recipe: Annotated[Optional[str], typer.Option(
        help="Recipe [default: nds or dds by the dataset].")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Override the recipe's epochs.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Override the batch size.")] = None,
    subset: Annotated[Optional[int], typer.Option(
        help="Train on the first N training images only (stored in the recipe).")] = None,
    test_subset: Annotated[Optional[int], typer.Option(
        help="Evaluate on the first N test images only (stored in the recipe).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(
        help="Data root [default: $DSD_DATA or ~/.cache/dsd].")] = None,
    gpus: Annotated[Optional[str], typer.Option(
        help="GPU indices, e.g. 0,1 [default: every visible GPU].")] = None,
    per_gpu: Annotated[Optional[int], typer.Option(
        help="Models trained at once on each GPU [default: 8].")] = None,
    procs_per_gpu: Annotated[Optional[int], typer.Option(
        help="Worker processes per GPU [default: 4].")] = None,
    max_time: Annotated[Optional[str], typer.Option(
        help="Stop cleanly before this much time has passed, e.g. 9m, 1h (run again to "
             "continue).")] = None,
    executor: Annotated[Executor, typer.Option(
        help="local: this machine; ray: one Ray task per model.")] = Executor.local,
    address: Annotated[Optional[str], typer.Option(
        help="Ray cluster address (--executor ray) [default: $RAY_ADDRESS or local].")] = None,
    show: Annotated[bool, typer.Option(
        "--show", help="Print the recorded comparisons and their looks; train nothing.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --show: JSON.")] = False,
    spaces_dir: Annotated[Optional[Path], typer.Option(
        "--spaces-dir", help="Folder of space YAML files [default: $DSD_SPACES or the repo's "
        "spaces/].")] = None,
    store: StoreOpt = None,
):
    """Sample SPACES and train them interleaved, look by look, until a sequential test decides
    each pair (or it reaches --max-n); resumable: run it again after a stop or a kill.

    Models enter each look in model-index order; done models count with their error,
    collapsed and diverged ones at chance error, failed ones are retried once and then left out
    (README: Deciding sooner). The design (--method, --alpha, --max-n, --looks, --futility) is
    fixed by the first call on a pair.

    Exit code: 0 when every pair is decided, futile or at max n; 1 on an error; 3 when that
    holds but a look left out a model that failed twice; 4 when --max-time stopped it with
    pairs undecided; 130 (Ctrl-C) or 143 (SIGTERM) when interrupted."""
    from ..store import default_path, load

    if as_json and not show:
        raise DsdError("--json goes with --show")
    if show:
        return _show(load(store), spaces or [], as_json)
    from ..analysis.sequential import SequentialDesign
    from .. import decide as lib
    from ..train import TrainOptions, parse_duration
    from .core import sampling_progress

    seconds = parse_duration(max_time)
    deadline = None if seconds is None else time.time() + seconds
    design = SequentialDesign(method=method.value, alpha=alpha, max_n=max_n, looks=looks,
                              futility=futility)
    design.validate()
    lib.pair_list(spaces or [], pairs.value)   # two or more, before any file is written
    options = TrainOptions(
        recipe=recipe, overrides={"epochs": epochs, "batch_size": batch_size, "subset": subset,
                                  "test_subset": test_subset},
        data_dir=data_dir, gpus=parse_gpus(gpus), per_gpu=per_gpu,
        procs_per_gpu=procs_per_gpu, executor=executor.value,
        ray_opts={"address": address} if address else None)
    sampling = lib.Sampling(dataset=dataset, seed=seed, flops=flops, flops_range=flops_range,
                            samplers=samplers, spaces_dir=spaces_dir, tag=tag)
    plans = lib.plan_sweeps(spaces, sampling, max_n)     # every check before the store
    db = load(store if store is not None else default_path(), create=True)
    say = lambda text: console.print(text, highlight=False)  # noqa: E731
    with sampling_progress(max_n) as progress:
        sweeps = lib.ensure_sweeps(db, plans, sampling, max_n, progress=progress, say=say)
    label = _labels(db, sweeps)
    out = lib.run(db, sweeps, design, pairs=pairs.value, train=options, deadline=deadline,
                  console=console, say=say,
                  on_looks=lambda rows: _print_round(rows, design, label))
    for p in out.pairs:
        console.print(f"{label[p.a]} vs {label[p.b]}: {_state(p, label)}", highlight=False)
    if out.trained:
        console.print("trained: " + ", ".join(f"{k} {v}" for k, v in sorted(out.trained.items())),
                      highlight=False)
    if out.stopped == "interrupted":
        console.print("interrupted: run `dsd decide` again to continue", highlight=False)
        raise typer.Exit(128 + (out.signum or 2))
    if out.stopped == "time":
        console.print("time limit reached: run `dsd decide` again to continue", highlight=False)
        raise typer.Exit(EXIT_UNDECIDED)
    if out.excluded:
        console.print(f"[red]{out.excluded} model(s) failed twice and were left out[/] of the "
                      "last looks (messages above); the decision holds if their failures do "
                      "not depend on the error they would have reached", highlight=False)
        raise typer.Exit(EXIT_MODELS_FAILED)


def _labels(db, sweeps: list[str]) -> dict[str, str]:
    """Short names for progress lines: each sweep's space where those are distinct."""
    spaces = [db.sweep(s)["space"] for s in sweeps]
    return dict(zip(sweeps, spaces if len(set(spaces)) == len(spaces) else sweeps))


def _stat(row: dict, method: str) -> tuple[str, str]:
    """(statistic, bound) as printed: z and ±c (group), log W and log(1/α) (anytime)."""
    s, t = row["statistic"], row["threshold"]
    if method == "group":
        return f"{s:+.2f}", "inf" if math.isinf(t) else f"±{t:.2f}"
    return f"{s:.2f}", f"{t:.2f}"


def _n(row: dict) -> str:
    return str(row["n_a"]) if row["n_a"] == row["n_b"] else f"{row['n_a']}/{row['n_b']}"


def _p(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def _table(method: str, pair: bool) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for col in (["pair"] if pair else []) + ["look", "n", "z" if method == "group" else "log W",
                                             "bound", "α spent", "P(A<B)", "decision"]:
        table.add_column(col, justify="left" if col in ("pair", "decision") else "right",
                         no_wrap=True)
    return table


def _cells(row: dict, method: str, looks: int) -> list[str]:
    stat, bound = _stat(row, method)
    return [f"{row['look']}/{looks}", _n(row), stat, bound, f"{row['alpha_spent']:.4f}",
            _p(row["p_prob"]), row["decision"]]


def _print_round(rows, design, label: dict[str, str]) -> None:
    """One table per round of looks: a line per pair."""
    if not rows:
        return
    table = _table(design.method, pair=True)
    for p, row in rows:
        table.add_row(f"{label[p.a]} vs {label[p.b]}", *_cells(row, design.method, design.looks))
    print_table(table, console)


def _state(p, label: dict[str, str] | None = None) -> str:
    """A pair's state in words (the numbers are in its looks)."""
    name = (label or {}).get
    if not p.looks:
        return "no look yet"
    last = p.looks[-1]
    at = f"look {last['look']}, n {_n(last)}"
    d = last["decision"]
    if d in ("A better", "B better"):
        better = p.a if d == "A better" else p.b
        return f"{name(better, better)} better, P(A<B) {_p(last['p_prob'])} ({at})"
    if d == "futile":
        return f"stopped for futility ({at}; non-binding)"
    if d == "max n":
        return f"undecided at max n ({at})"
    return f"open ({at})"


def _show(db, names: list[str], as_json: bool) -> None:
    """The recorded comparisons (of `names`: sweeps or their spaces) and their looks."""
    from .. import decide as lib
    from .core import _print_json

    spaces = {s: db.sweep(s)["space"] for s in db.sweep_names()}
    recs = [r for r in db.decisions() if not names or {r["sweep_a"], r["sweep_b"],
                                                        spaces[r["sweep_a"]],
                                                        spaces[r["sweep_b"]]} & set(names)]
    pairs = [(r, lib.Pair(r["id"], r["sweep_a"], r["sweep_b"], db.decision_looks(r["id"])))
             for r in recs]
    if as_json:
        return _print_json([{**r, "state": p.decision, "looks": p.looks} for r, p in pairs])
    if not pairs:
        typer.echo(f"no comparisons recorded in {db.path}" + (f" for {', '.join(names)}"
                                                              if names else "")
                   + "; `dsd decide SPACE_A SPACE_B` starts one")
        return
    for r, p in pairs:
        d = r["design"]
        console.print(f"[bold]{r['sweep_a']} vs {r['sweep_b']}[/]: {_state(p)}", highlight=False)
        console.print(f"  {r['dataset']}, {r['recipe']} ({r['recipe_hash'][:6]}); "
                      f"{lib.design_text(d)}", highlight=False)
        if not p.looks:
            continue
        table = _table(d["method"], pair=False)
        table.add_column("failures", justify="left", no_wrap=True)
        for row in p.looks:
            m = row["models"]
            chance = len(m["a"]["at_chance"]) + len(m["b"]["at_chance"])
            excl = len(m["a"]["excluded"]) + len(m["b"]["excluded"])
            table.add_row(*_cells(row, d["method"], d["looks"]),
                          ", ".join(x for x in (f"{chance} at chance" if chance else "",
                                                f"{excl} excl." if excl else "") if x)
                          or "-")
        print_table(table, console)
    console.print("n: models per space in the look; A: the first sweep; bound: |z| boundary "
                  "(group)\nor log(1/α) (anytime); failures: collapsed or diverged (at chance), "
                  "excluded;\nevery field, the models of each look and the times: --json",
                  highlight=False)
