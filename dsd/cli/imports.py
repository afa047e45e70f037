"""`dsd import`: trained populations from pycls sweeps and the NDS data release (no torch)."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import StoreOpt, command


class Format(str, Enum):
    pycls = "pycls"
    nds = "nds"


class Error(str, Enum):
    final = "final"
    min = "min"
    ema = "ema"


@command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="pycls sweep.json, or an NDS file (ResNeXt-A.json)",
                                         show_default=False)],
    fmt: Annotated[Format, typer.Option("--format", help="pycls (tools/sweep_collect.py's "
                                        "sweep.json) or nds (the data release)")],
    name: Annotated[Optional[str], typer.Option(
        help="Sweep name [default: pycls-DIR or nds-FILE].")] = None,
    dataset: Annotated[Optional[str], typer.Option(
        help="NDS: cifar10 or imagenet [default: imagenet for *_in.json, else cifar10].")]
    = None,
    error: Annotated[Error, typer.Option(
        help="The result's error: final (last epoch, dsd's definition), min (over epochs, "
        "NDS's min_test_top1, what the NDS notebooks plot) or ema (pycls sweeps: the EMA "
        "model's best, what pycls's sweep analysis ranks by).")] = Error.final,
    store: StoreOpt = None,
):
    """Import a trained population into the store, labelled with its source and recipe."""
    from ..importers import read
    from ..store import load

    imp = read(file, fmt.value, name=name, dataset=dataset, error=error.value)
    db = load(store, create=True)   # an import, like a sample, may start a store
    if db.has_sweep(imp.name):
        old = db.sweep(imp.name)
        if (old.get("source_info") or "").find(imp.source_info["sha1"]) >= 0:
            typer.echo(f"sweep {imp.name!r} already imported from this file; nothing written")
            return
    db.add_imported_sweep(imp.name, space=imp.space, dataset=imp.dataset, source=imp.source,
                          source_info=imp.source_info, recipe=imp.recipe,
                          recipe_json=imp.recipe_json, models=imp.models)
    counts: dict[str, int] = {}
    for m in imp.models:
        counts[m["result"]["status"]] = counts.get(m["result"]["status"], 0) + 1
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    typer.echo(f"sweep {imp.name}: {len(imp.models)} models from {file} ({imp.source}, "
               f"{imp.dataset}; {status}; {len(imp.models) - imp.opaque} as dsd specs, "
               f"{imp.opaque} opaque), recipe {imp.recipe} ({imp.source_info['error']} error) "
               f"→ {db.path}")
