"""`dsd` commands in-process for tests (typer's CliRunner on `dsd.cli.app`): run one, and
assert it succeeded or failed with exactly one `error:` line naming what it should."""
from __future__ import annotations

from typer.testing import CliRunner

from dsd.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def fails(result, *needles) -> str:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.output
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]
