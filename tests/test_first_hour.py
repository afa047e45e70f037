"""Issue 18, a newcomer's first hour: set-up (Makefile), space files, tables at 80 columns and
piped, progress (sampling, img/s after a resume), the MPS daemon's watcher, --version, --index."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import dsd
import dsd.cli.core  # noqa: F401  (registers the commands)
import dsd.cli.train  # noqa: F401
from dsd import DsdError, Store
from dsd.cli import app
from test_cli_errors import store_with

REPO = Path(__file__).resolve().parent.parent
SPACES = REPO / "spaces"
runner = CliRunner()


def invoke(*args, code: int = 0, columns: int = 80):
    r = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": str(columns)})
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    return r.output


def piped(*args) -> subprocess.CompletedProcess:
    """`python -m dsd ARGS` with stdout and stderr piped (no terminal, no COLUMNS)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "dsd", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)


# ---- set-up ---------------------------------------------------------------------------------
def make_n(target: str, **env) -> str:
    outer = ("VIRTUAL_ENV", "PY", "PYTHON3", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")  # `make test`'s
    full = {k: v for k, v in os.environ.items() if k not in outer}
    r = subprocess.run(["make", "-n", "-C", str(REPO), target], env={**full, **env},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.skipif(subprocess.run(["which", "make"], capture_output=True).returncode != 0,
                    reason="no make")
def test_makefile_uses_a_project_venv_unless_one_is_active(tmp_path):
    """Without an active venv make installs into .venv (never the system Python: PEP 668)
    and runs dsd as `.venv/bin/python -m dsd`; an active venv is used as it is."""
    if not (REPO / ".venv" / "bin" / "python").exists():
        assert "-m venv .venv" in make_n("install")
    demo = make_n("demo")
    assert ".venv/bin/python -m pip install" in demo
    dsd_lines = [line for line in demo.splitlines() if " dsd " in f" {line} "]
    assert dsd_lines and all(".venv/bin/python -m dsd " in line for line in dsd_lines)
    assert ".venv/bin/python -m pytest" in make_n("test")
    active = make_n("test", VIRTUAL_ENV=str(tmp_path / "env"))
    assert f"{tmp_path}/env/bin/python -m pytest" in active and ".venv" not in active


def test_version():
    assert invoke("--version").strip() == f"dsd {dsd.__version__}"
    import tomllib

    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"] == \
        dsd.__version__


# ---- spaces ---------------------------------------------------------------------------------
@pytest.fixture
def spaces_dir(tmp_path) -> Path:
    d = tmp_path / "spaces"
    d.mkdir()
    for name in ("anynetxa", "anynetxb", "regnetx"):
        (d / f"{name}.yaml").write_text((SPACES / f"{name}.yaml").read_text())
    return d


def test_a_duplicate_key_is_one_line_naming_file_and_key(spaces_dir):
    text = (spaces_dir / "anynetxa.yaml").read_text().replace("name: anynetxa", "name: dup")
    (spaces_dir / "dup.yaml").write_text(text + "stages: 5\n")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("stages:"))
    err = invoke("info", "dup", "--spaces-dir", spaces_dir, code=1).strip()
    assert err == (f"error: {spaces_dir / 'dup.yaml'}: line {len(text.splitlines()) + 1}: key "
                   f"'stages' given twice (first at line {line}); each key may appear once per "
                   "mapping")
    nested = text.replace("  b: {sampler: choice", "  d: {sampler: choice")
    (spaces_dir / "dup.yaml").write_text(nested)
    assert "key 'd' given twice" in invoke("info", "dup", "--spaces-dir", spaces_dir, code=1)


def test_a_non_utf8_file_is_one_line(spaces_dir):
    (spaces_dir / "latin.yaml").write_bytes(b"name: latin\ndescription: caf\xe9\n")
    err = invoke("info", "latin", "--spaces-dir", spaces_dir, code=1)
    assert err.strip() == (f"error: {spaces_dir / 'latin.yaml'}: not UTF-8 text (byte 0xe9 on "
                           "line 2, offset 28); save the file as UTF-8")


def test_spaces_lists_the_good_spaces_and_each_bad_files_error(spaces_dir):
    (spaces_dir / "broken.yaml").write_text("name: broken\nstages: [\n")
    (spaces_dir / "latin.yaml").write_bytes(b"name: latin\ndescription: caf\xe9\n")
    r = piped("spaces", "--spaces-dir", spaces_dir)
    assert r.returncode == 1
    listed = [line.split()[0] for line in r.stdout.splitlines()[3:] if line.strip()]
    assert listed[:3] == ["anynetxa", "anynetxb", "regnetx"]
    errors = r.stderr.splitlines()
    assert len(errors) == 2 and "Traceback" not in r.stderr
    assert errors[0].startswith(f"error: {spaces_dir / 'broken.yaml'}: YAML syntax error")
    assert errors[1].startswith(f"error: {spaces_dir / 'latin.yaml'}: not UTF-8")
    with pytest.raises(DsdError, match="broken.yaml"):   # the library call still refuses
        from dsd.space import list_spaces
        list_spaces(spaces_dir)


# ---- tables at 80 columns and piped -----------------------------------------------------------
def _rows(out: str, names) -> dict[str, list[str]]:
    lines = out.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), out
    return {n: next(line.split() for line in lines if line.split()[:1] == [n]) for n in names}


def test_spaces_table_one_line_per_space_at_80_columns():
    names = sorted(p.stem for p in SPACES.glob("*.yaml"))
    for out in (invoke("spaces"), piped("spaces").stdout):
        rows = _rows(out, names)
        assert rows["anynetxa"][1:] == ["anynet", "x", "-", "1.85e+18", "A"]
        assert rows["anynetxe"][-2] == "8.17e+11" and rows["regnetx"][-2] == "1.35e+11"
        body = [line for line in out.splitlines() if line.strip()]
        legend = [line for line in body if line.startswith("win ")]
        # title, header, rule, one line per space, one legend line per distinct window set
        assert len(body) == len(names) + 3 + len(legend) and len(legend) >= 2
        assert "win A: imagenet flops 360MF–400MF; cifar10 flops 112.5MF–125MF" in out
        assert all(len(line) <= 80 for line in body)


@pytest.fixture
def two_sweeps(tmp_path) -> Path:
    path = store_with(tmp_path / "s.sqlite", n=3, name="anynetxa-cifar10-s0")
    s = Store(path)
    from test_cli_errors import tiny_models

    s.add_sweep("regnetx-cifar10-s12", space="test", space_def={}, dataset="cifar10",
                window={"flops": [1e6, 2e6]}, seed=12, draws=5, models=tiny_models(5))
    rid = s.start_result(s.conn.execute("SELECT id FROM models LIMIT 1").fetchone()[0],
                         dataset="cifar10", recipe="nds", recipe_json={"name": "nds"})
    s.finish_result(rid, "failed", error="boom")
    s.close()
    return path


def test_status_and_show_keep_names_and_counts_at_80_columns(two_sweeps):
    names = ["anynetxa-cifar10-s0", "regnetx-cifar10-s12"]
    for out in (invoke("status", "--store", two_sweeps),
                piped("status", "--store", two_sweeps).stdout):
        header = next(line for line in out.splitlines() if "sweep" in line).split()
        assert header == ["sweep", "dataset", "recipe", "models", "pending", "done", "failed"]
        rows = _rows(out, names)
        assert rows["anynetxa-cifar10-s0"][-4:] == ["3", "2", "0", "1"]   # the failed one
        assert rows["regnetx-cifar10-s12"][-4:] == ["5", "5", "0", "0"]
    for out in (invoke("show", "--store", two_sweeps),
                piped("show", "--store", two_sweeps).stdout):
        rows = _rows(out, names)
        assert rows["regnetx-cifar10-s12"][3:7] == ["5", "5", "0", "0"] and "1M–2M" in out
        assert rows["anynetxa-cifar10-s0"][3:] == ["3", "2", "0", "1"]


def test_every_status_folds_into_one_column_at_80_columns(tmp_path):
    """With all six statuses the per-status columns would pass 80: `dsd status` and `dsd show`
    then list the counts in one wrapping `results` column; names and counts stay whole."""
    from test_cli_errors import tiny_models

    path = tmp_path / "s.sqlite"
    s = Store(path)
    name = "regnety-cifar10-s12345"
    s.add_sweep(name, space="test", space_def={}, dataset="cifar10",
                window={"flops": [1e6, 2e6]}, seed=0, draws=12, models=tiny_models(12))
    for i, m in enumerate(s.models(name).to_dict("records")):
        status = ("done", "failed", "diverged", "collapsed", "running", "pending")[i % 6]
        if status != "pending":
            rid = s.start_result(m["model_id"], dataset="cifar10", recipe="nds",
                                 recipe_json={"name": "nds"})
            if status != "running":
                s.finish_result(rid, status, top1=10.0 if status == "done" else None)
    s.close()
    for args in (("status",), ("show",)):
        for out in (invoke(*args, "--store", path), piped(*args, "--store", path).stdout):
            lines = out.splitlines()
            assert all(len(line.rstrip()) <= 80 for line in lines), out
            assert any("results" in line.split() for line in lines) and name in out
            text = " ".join(out.replace("flops 1M–2M", "").split())   # show's window column
            for status in ("pending", "running", "done", "failed", "diverged", "collapsed"):
                assert f"2 {status}" in text, (status, out)


def test_show_sweep_fits_80_columns(tmp_path):
    """`dsd show SWEEP` for real CIFAR-10 samples of AnyNetXD and RegNetX: every line within
    80 columns, per-stage values as one column, RegNet's parameters instead of its stage
    lists, columns equal for every model told once, errors where trained."""
    from dsd.sample import sample
    from dsd.space import load_space

    path = tmp_path / "s.sqlite"
    s = Store(path)
    for name in ("anynetxd", "regnetx"):
        sm = sample(name, 40, dataset="cifar10", seed=0)
        s.add_sweep(name, space=name, space_def=load_space(name).to_dict(), dataset="cifar10",
                    window=sm.window.to_dict(), seed=0, draws=sm.draws, models=sm.models)
    mid = int(s.models("regnetx").loc[3, "model_id"])
    s.finish_result(s.start_result(mid, dataset="cifar10", recipe="nds",
                                   recipe_json={"name": "nds"}), "done", top1=12.345, top5=0.5)
    s.close()
    for out in (invoke("show", "anynetxd", "--store", path),
                piped("show", "anynetxd", "--store", path).stdout):
        lines = out.splitlines()
        assert all(len(line) <= 80 for line in lines), out
        assert lines[1].split() == ["#", "flops", "params", "acts", "d1-4", "w1-4", "b1-4",
                                    "g1-4"]   # every model pending: said once, above
        assert len(lines) == 42 and "status = pending for all" in lines[0]
    out = invoke("show", "regnetx", "--store", path)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    header = lines[1].split()
    assert {"d", "w0", "wa", "wm", "error"} <= set(header) and "w1-4" not in header
    row = next(line.split() for line in lines[2:] if line.split()[0] == "3")
    assert row[header.index("error")] == "12.35" and row[header.index("status")] == "done"
    assert "every field: --json" in lines[0]


def test_a_long_sweep_name_is_never_truncated(tmp_path):
    name = "a-very-long-sweep-name-that-alone-takes-most-of-an-eighty-column-terminal-x"
    path = store_with(tmp_path / "s.sqlite", n=2, name=name)
    for out in (invoke("status", "--store", path), piped("show", "--store", path).stdout):
        assert name in out and "…" not in out


# ---- progress -------------------------------------------------------------------------------
def test_sampling_reports_progress_and_the_bar_stays_off_when_piped(tmp_path):
    from dsd.sample import sample

    calls = []
    result = sample("anynetxa", 20, dataset="cifar10", seed=0,
                    progress=lambda kept, draws: calls.append((kept, draws)))
    assert calls[-1] == (20, result.draws)
    assert [k for k, _ in calls] == sorted(k for k, _ in calls)
    assert len(calls) == -(-result.draws // 1024)          # once per batch of candidates
    r = piped("sample", "--space", "anynetxa", "--n", "5", "--dataset", "cifar10",
              "--store", tmp_path / "s.sqlite")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "sweep anynetxa-cifar10-s0: 5 models" in r.stdout


def test_sampling_progress_bar_on_a_terminal():
    from rich.console import Console

    from dsd.cli.core import sampling_progress

    with sampling_progress(10) as cb:
        assert cb is None                                 # pytest's stderr is not a terminal
    from unittest import mock

    with mock.patch.object(Console, "is_terminal", new=True):
        with sampling_progress(10) as cb:
            cb(4, 2048)
            cb(10, 4096)


def test_img_per_s_shows_after_a_resume(tmp_path, data_root):
    """A resumed model with one epoch left reports its images once: the rate still shows."""
    path = store_with(tmp_path / "s.sqlite", n=1)
    args = ["--batch-size", "50", "--subset", "200", "--test-subset", "100",
            "--data-dir", data_root, "--store", path]
    proc = subprocess.Popen([sys.executable, "-m", "dsd", "train", "--epochs", "2", *args],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    store, t0 = Store(path), time.time()
    while store.epochs().empty:
        assert proc.poll() is None and time.time() - t0 < 240
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if store.results(status=None)["status"].iloc[0] != "running":
        pytest.skip("the model finished before the kill")
    out = invoke("train", "--epochs", "2", *args)
    bar = next(line for line in out.splitlines() if line.startswith("train "))
    assert "- img/s" not in bar and " img/s" in bar
    assert int(bar.split(" img/s")[0].split()[-1].replace(",", "")) > 0


def test_progress_rate_from_reports(monkeypatch):
    from rich.console import Console

    from dsd.train.progress import TrainProgress

    clock = [100.0]
    monkeypatch.setattr("dsd.train.progress.time.time", lambda: clock[0])
    p = TrainProgress(Console(file=open(os.devnull, "w")))
    with p.live(models=1, epochs=2):
        clock[0] = 102.0
        p.images(1000)                                    # one report: 1000 images in 2 s
        assert p.bar.tasks[0].fields["ips"] == "500"
        clock[0] = 103.0
        p.images(3000)                                    # then 3000 in the next second
        assert p.bar.tasks[0].fields["ips"] == "3,000"
        clock[0] = 120.0
        p.images(1700)                                    # older reports leave the window
        assert p.bar.tasks[0].fields["ips"] == "100"


# ---- the MPS daemon does not outlive its dsd train -------------------------------------------
FAKE_CONTROL = """#!/bin/sh
# stand-in for nvidia-cuda-mps-control: -d starts a "daemon" (a sleep) and its control pipe;
# reading "quit" on stdin stops it
if [ "$1" = "-d" ]; then
    sleep 600 >/dev/null 2>&1 </dev/null &
    echo $! > "$CUDA_MPS_PIPE_DIRECTORY/daemon.pid"
    touch "$CUDA_MPS_PIPE_DIRECTORY/control"
    exit 0
fi
if [ "$(cat -)" = "quit" ]; then
    kill "$(cat "$CUDA_MPS_PIPE_DIRECTORY/daemon.pid")"
    echo quit >> "$CUDA_MPS_PIPE_DIRECTORY/../../quits"
fi
"""

COORDINATOR = """
import os, sys, time
from dsd.train.mps import mps
with mps(True) as on:
    print(os.environ["CUDA_MPS_PIPE_DIRECTORY"], flush=True)
    sys.stdin.readline()    # SIGKILLed here, or told to finish
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie of ours is dead too
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"


@pytest.mark.parametrize("ending", ["sigkill", "clean"])
def test_mps_daemon_dies_with_its_coordinator(tmp_path, ending):
    bin_dir, tmp = tmp_path / "bin", tmp_path / "tmp"
    bin_dir.mkdir()
    tmp.mkdir()
    exe = bin_dir / "nvidia-cuda-mps-control"
    exe.write_text(FAKE_CONTROL)
    exe.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp),
           "PYTHONPATH": str(REPO)}
    env.pop("CUDA_MPS_PIPE_DIRECTORY", None)
    coord = subprocess.Popen([sys.executable, "-c", COORDINATOR], env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    pipe = Path(coord.stdout.readline().strip())
    daemon = int((pipe / "daemon.pid").read_text())
    assert _alive(daemon)
    if ending == "sigkill":
        os.kill(coord.pid, signal.SIGKILL)               # no finally, no atexit: only the watcher
    else:
        coord.stdin.write("\n")
        coord.stdin.flush()
    coord.wait(timeout=60)
    t0 = time.time()
    while (_alive(daemon) or pipe.parent.exists()) and time.time() - t0 < 30:
        time.sleep(0.1)
    assert not _alive(daemon) and not pipe.parent.exists()
    assert (tmp / "quits").read_text() == "quit\n"       # quit once, by the watcher or the run


def test_show_sweep_leaves_out_acts_where_too_wide():
    """The published AnyNetXD population (widths of four 3-digit values, a diverged model) is
    81 columns wide with every column; without acts it fits 80."""
    import pandas as pd

    from dsd.cli.core import _fit_width, _model_table

    df = pd.read_parquet(Path(__file__).parent.parent / "results/cifar10/population.parquet")
    shown, _ = _model_table(df[df["sweep"] == "anynetxd-cifar10-s0"])
    assert max(map(len, shown.to_string(index=False).splitlines())) > 80
    fitted, text = _fit_width(shown, 80)
    assert max(map(len, text.splitlines())) <= 80
    assert "acts" not in fitted and "params" in fitted and "flops" in fitted
    assert _fit_width(shown, 120)[0].equals(shown)   # a wide terminal shows every column
