"""Issue 18: bad input and file-system trouble are one line and a non-zero exit, before anything
is written; read-only commands never create a store; foreign or damaged SQLite files are refused."""
from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import dsd
import dsd.cli.analysis  # noqa: F401  (registers the commands)
import dsd.cli.core  # noqa: F401
import dsd.cli.train  # noqa: F401
from dsd import DsdError, Store, complexity
from dsd.cli import app
from dsd.spec import make_spec

runner = CliRunner()


def invoke(*args, code: int = 1):
    """Run `dsd ARGS`; assert the exit code and that the error is one line, no traceback."""
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output and "Usage:" not in r.output, r.output
    if code == 1:
        errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, r.output
        return errors[0]
    return r.output


def tiny_models(n: int, bad: set[int] = frozenset()):
    """n tiny CIFAR models; those in `bad` get a group width that does not divide their
    bottleneck width, so building them fails (a real failure, in the model itself)."""
    out = []
    for i in range(n):
        spec = make_spec([1, 1, 1, 1], [8, 16, 24, 32], [1] * 4, [8] * 4, dataset="cifar10",
                         stem_w=8 + 8 * i)
        c = complexity(spec)
        if i in bad:  # stored as written by an older dsd, which did not check group widths
            text = spec.to_json().replace('"g":8,"stride":2,"w":16', '"g":3,"stride":2,"w":16')
            assert text != spec.to_json()
            spec = SimpleNamespace(id=spec.id, to_json=lambda text=text: text)
        out.append(SimpleNamespace(index=i, spec=spec, params={}, flops=c["flops"],
                                   params_count=c["params"], acts=c["acts"]))
    return out


def store_with(path: Path, n: int = 2, bad=frozenset(), name: str = "tiny") -> Path:
    s = Store(path)
    s.add_sweep(name, space="test", space_def={}, dataset="cifar10", window={}, seed=0,
                draws=n, models=tiny_models(n, bad))
    s.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unwritable_dir(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (a chmod'ed one; /sys as root)."""
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o555)
        return d
    probe = Path("/sys/dsd-probe")
    try:
        probe.touch()
    except OSError:
        return Path("/sys")
    probe.unlink()
    pytest.skip("no folder refuses writes to this user")


# ---- input checked before anything is written ----------------------------------------------
def test_subset_smaller_than_a_batch_fails_once_and_stores_nothing(tmp_path):
    path = store_with(tmp_path / "s.sqlite", n=3)
    before = digest(path)
    err = invoke("train", "tiny", "--epochs", "1", "--subset", "100", "--store", path)
    assert "batch size 128 exceeds the 100 training images" in err
    assert "--subset >= 128 or --batch-size <= 100" in err
    assert Store(path).results(status=None).empty and digest(path) == before
    assert not Path(f"{path}.ckpt").exists()


def test_train_exits_3_when_a_model_failed(tmp_path, data_root):
    path = store_with(tmp_path / "s.sqlite", n=2, bad={1})
    out = invoke("train", "--epochs", "1", "--batch-size", "50", "--subset", "200",
                 "--test-subset", "100", "--data-dir", data_root, "--store", path, code=3)
    assert "tiny #1" in out and "failed" in out and "1 failed" in out
    statuses = dict(Store(path).results(status=None)[["index", "status"]].values)
    assert statuses[1] == "failed" and statuses[0] in ("done", "collapsed")
    # nothing left to train: exit 0 (failed models are retried only when asked)
    invoke("train", "--epochs", "1", "--batch-size", "50", "--subset", "200",
           "--test-subset", "100", "--data-dir", data_root, "--store", path, code=0)


@pytest.mark.parametrize("gpus, message", [
    ("-1", "invalid GPU index -1"), ("0,-2", "invalid GPU index -2"), ("a", "like 0,1")])
def test_bad_gpus_are_one_line(tmp_path, gpus, message):
    path = store_with(tmp_path / "s.sqlite")
    assert message in invoke("train", "--gpus", gpus, "--store", path)


def test_gpu_index_out_of_range_is_checked_against_the_devices(monkeypatch):
    from dsd.train.runner import check_gpus

    with pytest.raises(DsdError, match=r"invalid GPU index 2; torch sees 2 GPUs \(indices 0..1\)"):
        check_gpus([0, 2], 2)
    with pytest.raises(DsdError, match="each GPU may be given once"):
        check_gpus([1, 1], 2)
    with pytest.raises(DsdError, match="torch sees no CUDA device"):
        check_gpus([0], 0)
    check_gpus([1, 0], 2)


@pytest.mark.parametrize("name", ["a b", "a/b", "../x", "-x", "tab\tname", ""])
def test_bad_sweep_names_are_refused_before_sampling(tmp_path, name):
    path = tmp_path / "s.sqlite"
    err = invoke("sample", "--space", "anynetxa", "--n", "1", "--name", name, "--store", path)
    assert "sweep name" in err and "letters, digits" in err
    assert not path.exists()
    with pytest.raises(DsdError, match="sweep name"):
        store_with(tmp_path / "t.sqlite", name=name)


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "--n must be an integer >= 1, got 0"),
    (["--n", "-3"], "--n must be an integer >= 1, got -3"),
    (["--seed", "-1"], "--seed must be an integer >= 0, got -1"),
    (["--max-draws", "0"], "--max-draws must be an integer >= 1, got 0"),
])
def test_bad_sample_counts_are_one_line(tmp_path, args, message):
    path = tmp_path / "s.sqlite"
    assert message in invoke("sample", "--space", "anynetxa", *args, "--store", path)
    assert not path.exists()


def test_a_failed_first_sample_leaves_no_store(tmp_path):
    path = tmp_path / "new.sqlite"
    err = invoke("sample", "--space", "anynetxa", "--flops", "1KF", "--max-draws", "2000",
                 "--store", path)
    assert "after 2000 draws" in err
    assert not path.exists() and not Path(f"{path}-wal").exists()


def test_index_trains_only_the_chosen_models(tmp_path, data_root):
    path = store_with(tmp_path / "s.sqlite", n=4)
    args = ["--epochs", "1", "--batch-size", "50", "--subset", "100", "--test-subset", "100",
            "--data-dir", data_root, "--store", path]
    out = invoke("train", "tiny", "--index", "3", "--index", "1", *args, code=0)
    assert "tiny #1" in out and "tiny #3" in out and "tiny #0" not in out
    assert sorted(Store(path).results(status=None)["index"]) == [1, 3]
    assert "sweep 'tiny' has models 0..3" in invoke("train", "tiny", "--index", "4", *args)
    assert "--index -1" in invoke("train", "tiny", "--index", "-1", *args)


# ---- the file system ------------------------------------------------------------------------
@pytest.fixture
def analysed(tmp_path):
    from dsd.analysis import synthetic

    path = tmp_path / "a.sqlite"
    synthetic.demo_store(Store(path), ("anynetxa", "regnetx"), n=6).close()
    return path


@pytest.mark.parametrize("command", [
    ["edf", "--compare", "anynetxa", "regnetx", "--synthetic", "-o"],
    ["report", "anynetxa", "regnetx", "--synthetic", "--resamples", "50", "-o"],
    ["export", "anynetxa", "-o"],
])
@pytest.mark.parametrize("where", ["under a file", "unwritable"])
def test_unwritable_outputs_are_one_line(tmp_path, analysed, command, where):
    suffix = {"edf": ".png", "report": ".html", "export": ".csv"}[command[0]]
    (tmp_path / "file").write_text("x")
    folder = tmp_path / "file" / "sub" if where == "under a file" else unwritable_dir(tmp_path)
    err = invoke(*command, folder / f"out{suffix}", "--store", analysed)
    assert str(folder) in err, err
    if where == "under a file":
        assert f"({tmp_path / 'file'} is a file, not a folder)" in err
    # a missing folder is made, as for every -o
    out = tmp_path / "new" / "folder" / f"out{suffix}"
    invoke(*command, out, "--store", analysed, code=0)
    assert out.stat().st_size > 0


@pytest.mark.parametrize("where", ["under a file", "unwritable"])
def test_a_store_that_cannot_be_created_is_one_line(tmp_path, where):
    (tmp_path / "file").write_text("x")
    folder = tmp_path / "file" / "sub" if where == "under a file" else unwritable_dir(tmp_path)
    err = invoke("sample", "--space", "anynetxa", "--n", "1", "--store", folder / "new.sqlite")
    assert str(tmp_path / "file") in err or str(folder) in err
    assert "not a dsd store" not in err


@pytest.mark.parametrize("command", [
    ["show"], ["show", "tiny"], ["status"], ["export", "tiny", "-o", "x.csv"],
    ["edf", "--compare", "tiny"], ["report", "tiny", "-o", "r.html"], ["fit", "tiny"],
    ["train"],
])
def test_read_only_commands_never_create_a_store(tmp_path, command):
    path = tmp_path / "typo" / "x.sqlite"
    err = invoke(*command, "--store", path)
    assert str(path) in err and "does not exist" in err or "no store at" in err, err
    assert not (tmp_path / "typo").exists()


def test_load_in_python_never_creates_a_store(tmp_path):
    path = tmp_path / "typo" / "x.sqlite"
    with pytest.raises(DsdError, match="the path does not exist"):
        dsd.load(path)
    assert not (tmp_path / "typo").exists()
    dsd.load(path, create=True).close()       # writers ask for it
    assert dsd.load(path).sweep_names() == []
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(DsdError, match="an empty file, not a dsd store yet"):
        dsd.load(empty)
    assert empty.stat().st_size == 0


# ---- foreign and damaged SQLite files -------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["sample", "--space", "anynetxa", "--n", "1"], ["show"], ["status"], ["train"],
    ["edf", "--compare", "x"],
])
def test_a_foreign_sqlite_file_is_refused_and_never_written(tmp_path, command):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE foo (a INTEGER)")
    conn.execute("INSERT INTO foo VALUES (1)")
    conn.commit()
    conn.close()
    before = digest(path)
    err = invoke(*command, "--store", path)
    assert f"{path}: not a dsd store (an SQLite file with tables foo)" in err
    assert digest(path) == before and not Path(f"{path}-wal").exists()


def test_a_text_file_is_not_a_store(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("hello\n" * 100)
    assert "not a dsd store" in invoke("show", "--store", path)
    assert path.read_text() == "hello\n" * 100


@pytest.mark.parametrize("damage, message", [
    ("ALTER TABLE results DROP COLUMN top5", "table 'results' lacks column(s) top5"),
    ("DROP TABLE fits", "table 'fits' is missing"),
])
def test_a_damaged_store_is_one_line(tmp_path, damage, message):
    path = store_with(tmp_path / "s.sqlite")
    conn = sqlite3.connect(path)
    conn.execute(damage)
    conn.commit()
    conn.close()
    for command in (["show", "tiny"], ["status"], ["sample", "--space", "anynetxa", "--n", "1"]):
        assert f"damaged dsd store: {message}" in invoke(*command, "--store", path)


def test_schema_check_reads_the_schema_text():
    """Validation follows SCHEMA itself, so new columns are covered without a list to keep."""
    from dsd.store import SCHEMA, schema_tables

    tables = schema_tables()
    assert set(tables) == {"sweeps", "models", "results", "epochs", "fits", "decisions",
                           "decision_looks", "decision_retries"}
    for table, cols in tables.items():
        assert all(c in SCHEMA for c in cols)
    assert {"top1", "top5", "train_loss", "exec_path", "synthetic"} <= set(tables["results"])


@pytest.mark.parametrize("args, message", [
    (["sample", "--foo"], "No such option: --foo"),
    (["sample", "--n", "x"], "Invalid value for '--n'"),
    (["compare"], "Missing argument"),
    (["nosuch"], "No such command 'nosuch'"),
    (["train", "--order", "shortest"], "'shortest' is not one of"),
])
def test_usage_errors_are_one_line_with_exit_code_2(args, message, capsys):
    """Through `dsd`'s real entry point (click's own output would be four lines)."""
    from dsd.cli import EXIT_USAGE, run

    assert run(args) == EXIT_USAGE == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0] and "--help" in lines[0]


def test_the_entry_point_keeps_exit_codes_and_help(tmp_path, capsys, monkeypatch):
    from dsd.cli import main, run

    assert run(["show", "--store", str(tmp_path / "none.sqlite")]) == 1
    assert "no such store" in capsys.readouterr().err
    assert run([]) == 0 and "Usage: dsd" in capsys.readouterr().out
    assert run(["spaces"]) == 0
    monkeypatch.setattr("sys.argv", ["dsd", "compare"])   # main() exits with run's code
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
