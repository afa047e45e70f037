"""The `dsd` command line: a thin typer layer over the library (no torch at import time).

Commands live in `core` (spaces, info, sample, show, export), `train` (train, status),
`analysis` (edf, analyze, fit, search-efficiency, report), `results` (export-population,
summarize) and `imports` (import). `DsdError` becomes one red line on stderr and exit code 1,
in one place (`command`).
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import DsdError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,  # help texts say "[default: …]" literally
                  help="Design space design: sample, train and compare populations of CNNs.")

#: The --store option every command shares.
StoreOpt = Annotated[Optional[Path], typer.Option(
    "--store", help="SQLite results store [default: $DSD_STORE or ./dsd.sqlite].")]


def command(*args, **kwargs):
    """`app.command` that turns DsdError into a one-line message and exit code 1."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*a, **kw):
            try:
                return fn(*a, **kw)
            except DsdError as e:
                typer.secho(f"error: {e}", fg="red", err=True)
                raise typer.Exit(1) from None
        return app.command(*args, **kwargs)(run)
    return wrap


def main() -> None:
    from . import core  # noqa: F401  (registers commands)
    for optional in ("train", "analysis", "results", "imports"):
        try:
            __import__(f"{__name__}.{optional}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{optional}":
                raise
    app()


if __name__ == "__main__":
    sys.exit(main())
