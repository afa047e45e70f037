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
from . import StoreOpt, command, print_table, status_table

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


#: fields the store keeps as JSON text: --json prints them as JSON values, not as strings
_JSON_TEXT = ("window", "sampled", "recipe_json", "spec", "space_def")


def _plain(obj, key: str | None = None):
    """Plain JSON values: JSON text of the fields above decoded, objects with `to_dict`
    (windows, specs) as dicts, numpy scalars as numbers, NaN as null."""
    if key in _JSON_TEXT and isinstance(obj, str) and obj[:1] in "{[":
        obj = json.loads(obj)
    if hasattr(obj, "to_dict") and not isinstance(obj, dict):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {k: _plain(v, k) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # numpy scalar or 0-d array
        obj = obj.item() if getattr(obj, "ndim", 0) == 0 else obj.tolist()
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def _print_json(obj) -> None:
    typer.echo(json.dumps(_plain(obj), indent=2, default=str))


@command("spaces")
def spaces_cmd(as_json: JsonOpt = False, spaces_dir: SpacesOpt = None):
    """List every design space (one line each); a space file that fails to load is listed with
    its error (exit code 1 when any did)."""
    from ..space import scan_spaces

    spaces, bad = scan_spaces(spaces_dir)
    rows = [_space_summary(s) for s in spaces]
    if as_json:
        _print_json([{**{k: v for k, v in r.items() if k != "windows"},   # windows as numbers
                      "window": {ds: s.window(ds) for ds in s.to_dict().get("window", {})}}
                     for r, s in zip(rows, spaces)]
                    + [{"file": str(path), "error": msg} for path, msg in bad])
    else:
        table = Table(title="design spaces", box=box.SIMPLE_HEAD, show_edge=False,
                      pad_edge=False, collapse_padding=True)
        for col in ("name", "type", "constraints", "size"):
            table.add_column(col, no_wrap=col in ("name", "size"),
                             justify="right" if col == "size" else "left")
        # One short label per distinct set of default windows, spelled out below the table
        # (the table keeps one line per space at 80 columns).
        texts = ["; ".join(f"{ds} {w}" for ds, w in r["windows"].items()) or "-" for r in rows]
        labels = {text: chr(ord("A") + i) for i, text in enumerate(dict.fromkeys(texts))}
        if len(labels) > 1:
            table.add_column("win", no_wrap=True)
        for r, text in zip(rows, texts):
            cells = [r["name"], f"{r['kind']} {r['block']}",
                     r["constraints"].replace("non-decreasing", "non-decr."),
                     ("≤ " if not r["size_exact"] else "") + f"{r['size']:.3g}"]
            if len(labels) > 1:
                cells.append(labels[text])
            table.add_row(*cells)
        print_table(table, console)
        if len(labels) == 1:
            console.print(f"windows (every space): {next(iter(labels))}", highlight=False)
        else:
            for text, label in labels.items():
                console.print(f"win {label}: {text}", highlight=False)
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
    dataset: Annotated[str, typer.Option(
        help="Layout for a zoo model: a dataset of `dsd datasets`.")]
    = "imagenet",
    as_json: JsonOpt = False,
    spaces_dir: SpacesOpt = None,
):
    """Describe a design space (parameters, constraints, size) or a named model (stages, cost):
    a RegNet (regnetx-400mf) or a baseline (resnet50, resnext50-32x4d, effnet-b0, …)."""
    from ..zoo import model_names

    if name.lower() in model_names():
        return _model_info(name.lower(), dataset, as_json)
    from ..space import load_space

    space = load_space(name, spaces_dir)
    summary = _space_summary(space)
    if as_json:
        return _print_json({"definition": space.to_dict(), "size": summary["size"],
                            "size_exact": summary["size_exact"]})
    d = space.to_dict()
    console.print(f"[bold]{space.name}[/bold] — {d.get('description', '')}")
    stages = (d["stages"] if isinstance(d["stages"], int) else _sampler_text(d["stages"]))
    console.print(f"block {d['block']}" + (f", SE ratio {d['se_ratio']}" if d.get("se_ratio")
                                          else "") + f", {d.get('activation', 'relu')}"
                  + f", {stages} stages, stem " + ", ".join(f"{k} {v}" for k, v in
                                                             d["stem"].items())
                  + (f", head conv {d['head']['w']}" if d.get("head") else "")
                  + f", samplers {d['samplers']}", highlight=False)
    res = d.get("resolution")
    if res is not None:
        table = res if isinstance(res, dict) and "sampler" not in res else {"every dataset": res}
        console.print("resolution: " + "; ".join(
            f"{ds} " + (_sampler_text(v) if isinstance(v, dict) else f"fixed {v}")
            for ds, v in table.items()), highlight=False)
    params = d.get("stage_params") or d.get("regnet")
    table = Table(title="per-stage parameters" if "stage_params" in d else "RegNet parameters")
    table.add_column("param")
    table.add_column("sampler")
    for key, spec in params.items():
        table.add_row(key, _sampler_text(spec) if isinstance(spec, dict) else f"fixed {spec}")
    console.print(table)
    console.print(f"constraints: {summary['constraints']}")
    console.print(f"default windows: {summary['window'] or '-'}")
    size = summary["size"]
    console.print(("at most " if not summary["size_exact"] else "")
                  + f"{size:,} distinct configurations ({size:.3g}), before the window")


def _sampler_text(spec: dict) -> str:
    """'log_uniform 8…1024 q 8' (pycls) or '… step 8' (dsd1), 'choice 1, 2, 4' (not a dict)."""
    kind = spec.get("sampler", "?")
    if "values" in spec:
        return f"{kind} " + ", ".join(str(v) for v in spec["values"])
    rest = {k: v for k, v in spec.items() if k not in ("sampler", "low", "high", "step", "q")}
    text = f"{kind} {spec.get('low')}…{spec.get('high')}" + "".join(
        f" {k} {spec[k]}" for k in ("q", "step") if k in spec)
    return text + "".join(f", {k} {v}" for k, v in rest.items())


def _model_info(name: str, dataset: str, as_json: bool) -> None:
    from ..complexity import complexity
    from ..zoo import BASELINES, ZOO, named_spec, zoo_params

    if name in BASELINES and dataset == "imagenet" and name.endswith("-cifar"):
        dataset = "cifar10"
    spec = named_spec(name, dataset)
    cx = complexity(spec)
    origin = ({"regnet": zoo_params(name)} if name in ZOO else
              {"pycls_config": BASELINES[name][1]})
    out = {"name": name, "dataset": dataset, **origin, "id": spec.id,
           "widths": list(spec.ws), "depths": list(spec.ds), "group_widths": list(spec.gs),
           **cx, "spec": spec.to_dict()}
    if as_json:
        return _print_json(out)
    console.print(f"[bold]{name}[/bold] ({dataset}, {spec.resolution}×{spec.resolution}, "
                  f"{spec.num_classes} classes), id {spec.id}")
    head = (", ".join(f"{k}={v}" for k, v in out["regnet"].items()) if "regnet" in out
            else f"pycls {out['pycls_config']}")
    console.print(head + f", block {spec.block}" + (f", SE {spec.se_ratio}" if spec.se_ratio
                                                    else "")
                  + f", stem {spec.stem} {spec.stem_w}" + (f", head {spec.head_w}" if
                                                           spec.head_w else "")
                  + (f", {spec.activation}" if spec.activation != "relu" else ""))
    console.print(stage_table(spec))
    console.print(f"flops {cx['flops']:,} ({_si(cx['flops'])}F)   params {cx['params']:,} "
                  f"({_si(cx['params'])})   acts {cx['acts']:,} ({_si(cx['acts'])})")


def stage_table(spec) -> Table:
    """A spec's stages, with the columns its block reads."""
    from .. import blocks

    uses = blocks.get_block(spec.block).uses
    cols = [("stage", None), ("depth", "d"), ("width", "w"), ("bottleneck b", "b"),
            ("group width g", "g"), ("kernel k", "k"), ("stride", "stride")]
    cols = [(c, k) for c, k in cols if k not in ("b", "g", "k") or k in uses]
    table = Table()
    for col, _ in cols:
        table.add_column(col, justify="right")
    for i, s in enumerate(spec.stages, 1):
        table.add_row(*(str(i) if k is None else str(getattr(s, k)) for _, k in cols))
    return table


@command("blocks")
def blocks_cmd(as_json: JsonOpt = False):
    """List the registered blocks and stems (with the pycls names they answer to)."""
    from .. import blocks

    blocks.known_blocks()  # loads $DSD_BLOCKS and entry points
    rows = [{"kind": "block", "name": n, "pycls": ", ".join(b.aliases), "params": ", ".join(
        b.uses) or "-", "se": b.se, "description": b.description} for n, b in
        blocks.BLOCKS.items()]
    rows += [{"kind": "stem", "name": n, "pycls": ", ".join(blocks.stem_aliases(n)),
              "params": "stride " + ", ".join(map(str, st.strides)), "se": "-",
              "description": st.description} for n, st in blocks.STEMS.items()]
    if as_json:
        return _print_json(rows)
    table = Table()
    for col in ("kind", "name", "pycls names", "params", "SE"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*(r[c] for c in ("kind", "name", "pycls", "params", "se")))
    console.print(table)
    console.print("dsd check-block FILE checks a block of your own (README: Adding a block)")


@command("check-block")
def check_block_cmd(
    files: Annotated[list[Path], typer.Argument(help="Python files that register blocks "
                                                "(`@dsd.blocks.register`)", show_default=False)],
    n: Annotated[int, typer.Option(help="Random specs per layout (CIFAR-10, ImageNet).")] = 10,
    seed: int = 0,
):
    """Load blocks from files and run the generic checks on each: counter vs built module
    (params), vs torch's FlopCounterMode (flops) and forward hooks (acts), fast flops, forward
    and backward on CPU in both layouts, JSON round trip, deterministic construction. Exit 1
    when any check fails, naming the check and the spec."""
    from .. import blocks
    from ..blocks.check import CHECKS, check_block

    names = [name for f in files for name in blocks.load_block_file(f)
             if name in blocks.BLOCKS]
    if not names:
        raise DsdError(f"no new block registered by {', '.join(map(str, files))} (decorate a "
                       "BlockType subclass with @dsd.blocks.register)")
    failed = False
    for name in names:
        rep = check_block(name, n=n, seed=seed)
        failed |= not rep.ok
        verdict = "ok" if rep.ok else "FAIL"
        typer.echo(f"{name}: {verdict}, {rep.specs} specs; " + ", ".join(
            f"{c} {rep.passed[c]}/{rep.specs}" for c in CHECKS))
        for check, spec, why in rep.failures[:5]:
            typer.echo(f"  {check}: {why}\n    spec {spec}")
    if failed:
        raise typer.Exit(1)


@command("datasets")
def datasets_cmd(
    data_dir: Annotated[Optional[Path], typer.Option(
        help="Data root [default: $DSD_DATA or ~/.cache/dsd].")] = None,
    as_json: JsonOpt = False,
):
    """List the registered datasets (dsd.datasets; files in $DSD_DATASETS too): layout, images,
    default recipe, and where each is looked for under the data root (nothing downloaded)."""
    from ..datasets import data_root, dataset_rows

    rows = dataset_rows(data_dir)
    if as_json:
        return _print_json(rows)
    rgb = lambda v: "(" + ", ".join(f"{x:.3g}" for x in v) + ")"
    for r in rows:
        lay, n = r["layout"], r["train_images"]
        images = (f"{n:,} train" + (f", {r['test_images']:,} test" if r["test_images"] else "")
                  if isinstance(n, int) else "generated per epoch: " + ", ".join(
                      f"{k:,} at {res}×{res}" for res, k in n.items()))
        where = " or ".join(r["locations"])
        lines = {
            "layout": (f"{lay['resolution']}×{lay['resolution']}, {lay['num_classes']} classes; "
                       f"stem stride {lay['stem_stride']}, first stage stride "
                       f"{lay['first_stride']}" if lay else "none: trains any sweep's models"),
            "images": images,
            "normalize": f"mean {rgb(r['mean'])}, std {rgb(r['std'])}" if r["mean"] else "none",
            "recipe": r["recipe"] or "none (name one with --recipe)",
            "data": (f"found at {r['found']}" if r["found"] else "generated on the device"
                     if not r["locations"] else f"not found at {where}"
                     + (" (dsd train downloads it)" if r["downloads"] else ""))}
        typer.echo(f"{r['name']:<11} {r['description']}")
        for key, text in lines.items():
            typer.echo(f"  {key:<9} {text}")
    typer.echo(f"data root: {data_root(data_dir)} (--data-dir, else $DSD_DATA)\n"
               f"a dataset of your own: a file in $DSD_DATASETS (README: Adding a dataset)")


@command("sample")
def sample_cmd(
    space: Annotated[Optional[str], typer.Option(
        "--space", help="Space name (spaces/NAME.yaml) or path.")] = None,
    n: Annotated[Optional[int], typer.Option(
        "--n", help="Number of models to keep, >= 1 [default: 100; pycls: NUM_CONFIGS].")]
    = None,
    flops: Annotated[Optional[str], typer.Option(
        help="Budget F: keep models in the paper's window [0.9·F, F], e.g. 400MF.")] = None,
    flops_range: Annotated[Optional[tuple[str, str]], typer.Option(
        help="Explicit window LO HI, e.g. 360MF 400MF.")] = None,
    dataset: Annotated[str, typer.Option(
        help="A dataset of `dsd datasets` (its layout: imagenet 224², 1000 classes; cifar10 "
             "32², 10).")]
    = "imagenet",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    name: Annotated[Optional[str], typer.Option(help="Sweep name [default: SPACE-DATASET-sSEED].")]
    = None,
    max_draws: Annotated[Optional[int], typer.Option(help="Give up after this many candidates.")]
    = None,
    from_pycls: Annotated[Optional[Path], typer.Option(
        "--from-pycls", help="A pycls sweep config (SETUP: SAMPLERS, CONSTRAINTS) instead of "
        "--space; its window, layout and NUM_CONFIGS are the defaults.")] = None,
    samplers: Annotated[Optional[str], typer.Option(
        help="Sampler convention: pycls (default) or dsd1 (how sweeps were drawn before; "
        "reproduces them).")] = None,
    store: StoreOpt = None,
    spaces_dir: SpacesOpt = None,
):
    """Draw N models of a space inside a complexity window into the store (one transaction)."""
    import time

    from ..sample import check_sample_args, sample
    from ..space import Window, load_space, parse_count
    from ..store import check_sweep_name, default_path

    check_sample_args(1 if n is None else n, seed, max_draws, flag="--")  # before any file
    if flops and flops_range:
        raise DsdError("give either --flops or --flops-range, not both")
    if (space is None) == (from_pycls is None):
        raise DsdError("give exactly one of --space NAME and --from-pycls SWEEP.yaml")
    if from_pycls is None:
        from ..spec import layout

        layout(dataset)   # an unknown dataset is the first thing to hear about
    if from_pycls is not None:
        from ..pycls_config import load_pycls_sweep

        sweep = load_pycls_sweep(from_pycls)
        space_def, n, dedup = sweep.space, sweep.n if n is None else n, sweep.dedup
        if dataset != sweep.dataset:
            typer.echo(f"{from_pycls}: layout {sweep.dataset} (its TRAIN.DATASET or "
                       "STEM_TYPE)")
            dataset = sweep.dataset
        typer.echo(f"{from_pycls}: sampled as pycls's sweep_setup: at TRAIN.IM_SIZE "
                   f"{sweep.resolution}, dropping repeated parameter draws "
                   "(not repeated networks)")
        if sweep.ignored:
            typer.echo(f"{from_pycls}: ignored (training settings; dsd trains with its "
                       f"recipes): {', '.join(sweep.ignored)}")
    else:
        space_def, dedup = load_space(space, spaces_dir), "network"
    n = 100 if n is None else n
    if samplers is not None:
        space_def = space_def.with_samplers(samplers)
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
        from ..samplers import LEGACY

        old_conv = old["space_def"].get("samplers", LEGACY)
        if (old["space"], old["dataset"], old["seed"], old["n"], old["window"], old_conv) == (
                space_def.name, dataset, seed, n, window.to_dict(), space_def.samplers):
            typer.echo(f"sweep {name!r} already exists with these settings ({old['n']} models);"
                       f" nothing written")
            return
        raise DsdError(f"sweep {name!r} already exists in {db.path} with other settings "
                       f"(space {old['space']}, dataset {old['dataset']}, seed {old['seed']}, "
                       f"n {old['n']}, window {Window.from_dict(old['window'])}, samplers "
                       f"{old_conv}); choose "
                       f"another --name")
    t0 = time.perf_counter()
    try:
        with sampling_progress(n) as progress:
            result = sample(space_def, n, dataset=dataset, window=window, seed=seed,
                            max_draws=max_draws, progress=progress, dedup=dedup)
    except BaseException:
        if new_store:   # a failed first sample leaves no empty store behind
            db.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        raise
    secs = time.perf_counter() - t0
    db.add_sweep(name, space=space_def.name, space_def=space_def.to_dict(), dataset=dataset,
                 window=window.to_dict(), seed=seed, draws=result.draws, models=result.models)
    typer.echo(f"sweep {name}: {len(result.models)} models of {space_def.name} ({dataset}, "
               f"samplers {space_def.samplers}) in "
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


#: the store's column names → what tables say (they hold errors, not accuracies)
ERROR_LABELS = {"top1": "error", "top5": "error5"}


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
        if as_json:  # the stored window (numbers), not the table's text
            return _print_json([{**r, "window": db.sweep(r["name"])["window"]}
                                for r in df.to_dict(orient="records")])
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
    shown, same = _model_table(df)
    shown, text = _fit_width(shown, console.width)
    typer.echo(f"{sweep}: {len(df)} models" + ("; error = final top-1 test error (%)"
                                               if "error" in shown else "")
               + "".join(f"; {k} = {v} for all" for k, v in same.items())
               + "; every field: --json")
    typer.echo(text)


def _model_table(df):
    """The models of `dsd show SWEEP` in about 80 columns, and the columns that are the same
    for every model (told once, above the table): the index (#), complexity in K/M/G,
    per-stage values as one column each (one value where a model's stages agree; RegNets: d,
    w0, wa, wm instead of stage depths and widths), the status, the error where trained
    (error5 and every other field: --json)."""
    import pandas as pd

    out = pd.DataFrame({"#": df["index"].astype(int)})   # the index, as training lines write it
    regnet = "wa" in df and df["wa"].notna().any()   # stage depths and widths follow from these
    for c in ("flops", "params", "acts"):
        if c in df:
            out[c] = df[c].map(lambda v: "-" if pd.isna(v) else _si(float(v)))
    for k in "bgk" if regnet else "dwbgk":
        stages = [f"{k}{i}" for i in range(1, 100) if f"{k}{i}" in df]
        if stages:  # models with fewer stages than the widest have NaN in the last columns
            rows = [[v for v in row if not pd.isna(v)] for row in
                    df[stages].itertuples(index=False)]
            out[f"{k}1-{len(stages)}"] = [
                "-" if not row else
                _stage_value(row[0]) if len(set(row)) == 1 and k in "bgk" else
                ",".join(_stage_value(v) for v in row) for row in rows]
    for c, fmt in (("d", "{:.0f}"), ("w0", "{:.0f}"), ("wa", "{:.1f}"), ("wm", "{:.2f}")):
        if c in df and df[c].notna().any():
            out[c] = df[c].map(lambda v: "-" if pd.isna(v) else fmt.format(v))
    out["status"] = df["status"].to_numpy()
    if "top1" in df and df["top1"].notna().any():
        out["error"] = df["top1"].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
    same = {c: out[c].iloc[0] for c in out.columns[1:] if len(out) > 1
            and c != "error" and out[c].nunique() == 1}
    return out.drop(columns=list(same)), same


def _stage_value(v) -> str:
    """A stage value for tables: an integer, or a bottleneck ratio as a fraction (1/4)."""
    from ..spec import as_ratio, ratio_json

    return str(ratio_json(as_ratio(float(v))))


def _fit_width(shown, width: int):
    """`shown` and its text, without acts, then params (the least read; --json has them),
    while its lines are wider than `width`."""
    text = shown.to_string(index=False)
    for c in ("acts", "params"):
        if max(map(len, text.splitlines())) <= width or c not in shown:
            break
        shown = shown.drop(columns=c)
        text = shown.to_string(index=False)
    return shown, text


def _print_sweeps(df, path) -> None:
    """The sweeps table: names and counts never truncate; statuses nobody has are left out
    (seeds and creation times: `dsd show --json`)."""
    from ..store import STATUSES

    shown = [s for s in STATUSES if s in ("pending", "done") or df[s].any()]
    status_table(f"sweeps in {path}", [("name", False), ("space", True), ("dataset", True),
                                       ("models", False)],
                 [([r.name, r.space, r.dataset, str(r.models)], {s: getattr(r, s) for s in shown},
                   [r.window]) for r in df.itertuples(index=False)],
                 shown, ["window"], console=console)


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
    """Write a sweep's models (and their results, per-epoch curves included) to Parquet or CSV.
    A failed model's message is the column `failure` (the store's `error`), so that it is not
    mistaken for `top1`, the error rate."""
    db = _store(store)
    df = _models_with_status(db, sweep, recipe, dataset).rename(columns={"error": "failure"})
    suffix = output.suffix.lower()
    if suffix in (".parquet", ".csv"):
        output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":  # with each result column's meaning in its field metadata
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ..analysis.population import with_column_docs

        pq.write_table(with_column_docs(pa.Table.from_pandas(df, preserve_index=False)), output)
    elif suffix == ".csv":
        df.to_csv(output, index=False)
    else:
        raise DsdError(f"{output}: unknown format {suffix or '(none)'}; use .parquet or .csv")
    typer.echo(f"wrote {len(df)} models of {sweep} to {output}")
