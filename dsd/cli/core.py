"""Core commands: spaces, info, sample, show, export (no torch imported)."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ..errors import DsdError
from . import StoreOpt, command, print_table

console = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
SpacesOpt = Annotated[Optional[Path], typer.Option(
    "--spaces-dir", help="Folder of space YAML files [default: $DSD_SPACES or the repo's spaces/].")]


def _store(path: Optional[Path], create: bool = False):
    """The store at `path` (default $DSD_STORE or ./dsd.sqlite); only writers `create` one."""
    from ..store import load

    return load(path, create=create)


def _si(x: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:g}"


def _print_json(obj) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@command("spaces")
def spaces_cmd(as_json: JsonOpt = False, spaces_dir: SpacesOpt = None):
    """List every design space (one line each); a space file that fails to load is listed with
    its error (exit code 1 when any did)."""
    from ..space import scan_spaces

    spaces, bad = scan_spaces(spaces_dir)
    rows = [_space_summary(s) for s in spaces]
    if as_json:
        _print_json(rows + [{"file": str(path), "error": msg} for path, msg in bad])
    else:
        table = Table(title="design spaces", box=box.SIMPLE_HEAD, show_edge=False,
                      pad_edge=False, collapse_padding=True)
        for col in ("name", "type", "constraints", "size"):
            table.add_column(col, no_wrap=col in ("name", "size"),
                             justify="right" if col == "size" else "left")
        windows = {tuple(r["windows"].items()) for r in rows}
        datasets = list(dict.fromkeys(ds for r in rows for ds in r["windows"]))
        if len(windows) > 1:    # only where the spaces differ: else one line below the table
            for ds in datasets:
                table.add_column(f"{ds} window")
        for r in rows:
            cells = [r["name"], f"{r['kind']} {r['block']}",
                     r["constraints"].replace("non-decreasing", "non-decr."),
                     ("≤ " if not r["size_exact"] else "") + f"{r['size']:.3g}"]
            if len(windows) > 1:
                cells += [r["windows"].get(ds, "-") for ds in datasets]
            table.add_row(*cells)
        print_table(table, console)
        if len(windows) == 1 and datasets:
            console.print("windows (every space): " + "; ".join(
                f"{ds} {w}" for ds, w in rows[0]["windows"].items()), highlight=False)
    for path, msg in bad:
        typer.secho(f"error: {msg}", fg="red", err=True)
    if bad:
        raise typer.Exit(1)


def _space_summary(s) -> dict:
    d = s.to_dict()
    kind = "regnet" if "regnet" in d else "anynet"
    cons = [f"shared {','.join(d.get('shared', []))}" if d.get("shared") else "",
            f"non-decreasing {','.join(d.get('non_decreasing', []))}"
            if d.get("non_decreasing") else ""]
    windows = {ds: str(s.window(ds)) for ds in d.get("window", {})}
    return {"name": s.name, "kind": kind, "block": d["block"],
            "constraints": "; ".join(c for c in cons if c) or "-", "size": s.size(),
            "size_exact": s.size_exact, "window": "; ".join(f"{k} {v}" for k, v in windows.items()),
            "windows": windows, "description": d.get("description", "")}


@command("info")
def info_cmd(
    name: Annotated[str, typer.Argument(help="A space (anynetxc) or zoo model (regnetx-400mf).")],
    dataset: Annotated[str, typer.Option(help="Layout for a zoo model: imagenet or cifar10.")]
    = "imagenet",
    as_json: JsonOpt = False,
    spaces_dir: SpacesOpt = None,
):
    """Describe a design space (parameters, constraints, size) or a zoo model (stages, cost)."""
    from ..zoo import ZOO

    if name.lower() in ZOO:
        return _model_info(name.lower(), dataset, as_json)
    from ..space import load_space

    space = load_space(name, spaces_dir)
    summary = _space_summary(space)
    if as_json:
        return _print_json({"definition": space.to_dict(), "size": summary["size"],
                            "size_exact": summary["size_exact"]})
    d = space.to_dict()
    console.print(f"[bold]{space.name}[/bold] — {d.get('description', '')}")
    console.print(f"block {d['block']}" + (f", SE ratio {d['se_ratio']}" if d.get("se_ratio")
                                          else "") + f", {d['stages']} stages, stem {d['stem']}")
    params = d.get("stage_params") or d.get("regnet")
    table = Table(title="per-stage parameters" if "stage_params" in d else "RegNet parameters")
    table.add_column("param")
    table.add_column("sampler")
    for key, spec in params.items():
        table.add_row(key, json.dumps(spec) if isinstance(spec, dict) else f"fixed {spec}")
    console.print(table)
    console.print(f"constraints: {summary['constraints']}")
    console.print(f"default windows: {summary['window'] or '-'}")
    size = summary["size"]
    console.print(("at most " if not summary["size_exact"] else "")
                  + f"{size:,} distinct configurations ({size:.3g}), before the window")


def _model_info(name: str, dataset: str, as_json: bool) -> None:
    from ..complexity import complexity
    from ..zoo import zoo_params, zoo_spec

    spec = zoo_spec(name, dataset)
    cx = complexity(spec)
    out = {"name": name, "dataset": dataset, "regnet": zoo_params(name), "id": spec.id,
           "widths": list(spec.ws), "depths": list(spec.ds), "group_widths": list(spec.gs),
           **cx, "spec": spec.to_dict()}
    if as_json:
        return _print_json(out)
    console.print(f"[bold]{name}[/bold] ({dataset}, {spec.resolution}×{spec.resolution}, "
                  f"{spec.num_classes} classes), id {spec.id}")
    console.print("RegNet: " + ", ".join(f"{k}={v}" for k, v in out["regnet"].items())
                  + f", block {spec.block}" + (f", SE {spec.se_ratio}" if spec.se_ratio else ""))
    table = Table()
    for col in ("stage", "depth", "width", "bottleneck b", "group width g", "stride"):
        table.add_column(col, justify="right")
    for i, s in enumerate(spec.stages, 1):
        table.add_row(str(i), str(s.d), str(s.w), str(s.b), str(s.g), str(s.stride))
    console.print(table)
    console.print(f"flops {cx['flops']:,} ({_si(cx['flops'])}F)   params {cx['params']:,} "
                  f"({_si(cx['params'])})   acts {cx['acts']:,} ({_si(cx['acts'])})")


@command("sample")
def sample_cmd(
    space: Annotated[str, typer.Option("--space", help="Space name (spaces/NAME.yaml) or path.")],
    n: Annotated[int, typer.Option("--n", help="Number of models to keep (>= 1).")] = 100,
    flops: Annotated[Optional[str], typer.Option(
        help="Budget F: keep models in the paper's window [0.9·F, F], e.g. 400MF.")] = None,
    flops_range: Annotated[Optional[tuple[str, str]], typer.Option(
        help="Explicit window LO HI, e.g. 360MF 400MF.")] = None,
    dataset: Annotated[str, typer.Option(help="imagenet (224², 1000 classes) or cifar10 (32², 10).")]
    = "imagenet",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    name: Annotated[Optional[str], typer.Option(help="Sweep name [default: SPACE-DATASET-sSEED].")]
    = None,
    max_draws: Annotated[Optional[int], typer.Option(help="Give up after this many candidates.")]
    = None,
    store: StoreOpt = None,
    spaces_dir: SpacesOpt = None,
):
    """Draw N models of a space inside a complexity window into the store (one transaction)."""
    import time

    from ..sample import check_sample_args, sample
    from ..space import Window, load_space, parse_count
    from ..store import check_sweep_name, default_path

    check_sample_args(n, seed, max_draws, flag="--")
    if flops and flops_range:
        raise DsdError("give either --flops or --flops-range, not both")
    space_def = load_space(space, spaces_dir)
    window = (Window.around(flops) if flops else
              Window(flops=tuple(parse_count(x) for x in flops_range)) if flops_range else None)
    name = f"{space_def.name}-{dataset}-s{seed}" if name is None else name
    check_sweep_name(name)
    window = window or space_def.window(dataset)
    path = store if store is not None else default_path()
    new_store = str(path) != ":memory:" and not Path(path).exists()
    db = _store(path, create=True)
    if db.has_sweep(name):
        old = db.sweep(name)
        if (old["space"], old["dataset"], old["seed"], old["n"], old["window"]) == (
                space_def.name, dataset, seed, n, window.to_dict()):
            typer.echo(f"sweep {name!r} already exists with these settings ({old['n']} models);"
                       f" nothing written")
            return
        raise DsdError(f"sweep {name!r} already exists in {db.path} with other settings "
                       f"(space {old['space']}, dataset {old['dataset']}, seed {old['seed']}, "
                       f"n {old['n']}, window {old['window']}); choose another --name")
    t0 = time.perf_counter()
    try:
        with sampling_progress(n) as progress:
            result = sample(space_def, n, dataset=dataset, window=window, seed=seed,
                            max_draws=max_draws, progress=progress)
    except BaseException:
        if new_store:   # a failed first sample leaves no empty store behind
            db.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        raise
    secs = time.perf_counter() - t0
    db.add_sweep(name, space=space_def.name, space_def=space_def.to_dict(), dataset=dataset,
                 window=window.to_dict(), seed=seed, draws=result.draws, models=result.models)
    typer.echo(f"sweep {name}: {len(result.models)} models of {space_def.name} ({dataset}) in "
               f"{result.window}, {result.draws:,} candidates drawn (acceptance "
               f"{100 * result.acceptance:.2f}%), {secs:.2f} s → {db.path}")


@contextmanager
def sampling_progress(n: int):
    """A rich progress bar on stderr (models kept of n, candidates drawn) while sampling, only
    on a terminal; yields the callback `sample` calls after each batch (None when off)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    err = Console(stderr=True)
    if not err.is_terminal:
        yield None
        return
    with Progress(TextColumn("[bold]sample"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("models, {task.fields[draws]:,} drawn"), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("sample", total=n, draws=0)
        yield lambda kept, draws: bar.update(task, completed=kept, draws=draws)


SHOW_COLS = ["index", "hash", "flops", "params", "acts", "d1", "d2", "d3", "d4", "w1", "w2",
             "w3", "w4", "b1", "b2", "b3", "b4", "g1", "g2", "g3", "g4", "d", "w0", "wa", "wm",
             "status", "top1", "top5"]


@command("show")
def show_cmd(
    sweep: Annotated[Optional[str], typer.Argument(help="A sweep: list its models.")] = None,
    top: Annotated[Optional[int], typer.Option(help="Only the first N (best N when trained).")]
    = None,
    as_json: JsonOpt = False,
    recipe: RecipeOpt = None,
    dataset: DatasetOpt = None,
    store: StoreOpt = None,
):
    """Sweeps in the store with counts and status, or the models of one sweep."""
    db = _store(store)
    if sweep is None:
        df = db.sweeps()
        if as_json:
            return _print_json(df.to_dict(orient="records"))
        if df.empty:
            typer.echo(f"no sweeps in {db.path}; create one with `dsd sample --space NAME`")
            return
        return _print_sweeps(df, db.path)
    df = _models_with_status(db, sweep, recipe, dataset)
    if "top1" in df and df["top1"].notna().any():
        df = df.sort_values("top1", na_position="last")
    if top:
        df = df.head(top)
    if as_json:
        return _print_json(df.drop(columns=["spec"], errors="ignore").to_dict(orient="records"))
    # per-stage b/g columns only where they differ across stages somewhere in the sweep
    varying = {k for k in "bg" if (df[[f"{k}{i}" for i in range(1, 5)]].nunique(axis=1) > 1).any()}
    cols = [c for c in SHOW_COLS if c in df.columns
            and not (c[0] in "bg" and c[1:] in "234" and c[0] not in varying)]
    typer.echo(f"{sweep}: {len(df)} models")
    typer.echo(df[cols].to_string(index=False, float_format=lambda x: f"{x:.2f}"))


def _print_sweeps(df, path) -> None:
    """The sweeps table: names and counts never truncate; statuses nobody has are left out
    (seeds and creation times: `dsd show --json`)."""
    from ..store import STATUSES

    shown = [s for s in STATUSES if s in ("pending", "done") or df[s].any()]
    table = Table(title=f"sweeps in {path}", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, collapse_padding=True)
    for col in ("name", "space", "dataset", "models", *shown, "window"):
        text = col in ("space", "dataset", "window")
        table.add_column(col, no_wrap=not text, justify="left" if text or col == "name"
                         else "right")
    for r in df.itertuples(index=False):
        table.add_row(r.name, r.space, r.dataset, str(r.models),
                      *[str(getattr(r, s)) for s in shown], r.window)
    print_table(table, console)


def _models_with_status(db, sweep: str, recipe: Optional[str], dataset: Optional[str]):
    """Models of a sweep with their result under one recipe/dataset (pending when untrained)."""
    from ..analysis.population import population_frame

    return population_frame(db, [sweep], recipe=recipe, dataset=dataset)


RecipeOpt = Annotated[Optional[str], typer.Option(
    help="Results of this recipe (needed when the sweep was trained under several).")]
DatasetOpt = Annotated[Optional[str], typer.Option(
    help="Results on this dataset (needed when the sweep was trained on several).")]


@command("export")
def export_cmd(
    sweep: Annotated[str, typer.Argument(help="Sweep to export.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="models.parquet or models.csv")],
    recipe: RecipeOpt = None,
    dataset: DatasetOpt = None,
    store: StoreOpt = None,
):
    """Write a sweep's models (and their results, per-epoch curves included) to Parquet or CSV."""
    db = _store(store)
    df = _models_with_status(db, sweep, recipe, dataset)
    suffix = output.suffix.lower()
    if suffix in (".parquet", ".csv"):
        output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        df.to_parquet(output, index=False)
    elif suffix == ".csv":
        df.to_csv(output, index=False)
    else:
        raise DsdError(f"{output}: unknown format {suffix or '(none)'}; use .parquet or .csv")
    typer.echo(f"wrote {len(df)} models of {sweep} to {output}")
