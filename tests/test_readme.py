"""Every `dsd` line of README.md's fenced code blocks, run through the real command line.

A line is a line of an unlabelled fenced block that starts with `dsd `; what follows `#` is
its comment. The comment may end with tags in brackets saying what the line needs beyond a
CPU, CIFAR-10 and a few minutes, from this vocabulary (TAGS):

    [gpu]    a CUDA GPU (`--gpus`; ImageNet-sized trainings)
    [data]   data CI does not have: ImageNet, pycls or NDS result files
    [ray]    a Ray runtime or cluster (`--executor ray`: 15-20 s to start one on 2 cores;
             tests/test_ray.py covers the executor)

e.g. `dsd train SWEEP --gpus 0,1 --per-gpu 4      # 2 GPUs, 4 models ... [gpu]`; README says
so in one sentence at the top of its Walkthrough.

Every untagged line runs (`test_line_runs`), in a temporary working folder that links the
repository's `examples/` and `results/`, with nothing substituted but the store and the data:

- the store (`$DSD_STORE`; a `--store PATH` of the line is pointed there too) is a fresh copy
  of a small store (tests/readme_store.py): none for `dsd sample` (it creates one); the
  training store (sweep `SWEEP`, README's placeholder, of 8 tiny models, 2 left to train) for
  `dsd train` and `dsd status`; otherwise the analysis store (README's CIFAR-10 sweeps, 100
  models each, formula results under `nds`), with `anynetxc-imagenet-s0` where the line names
  it. A sweep that an earlier `dsd sample` line of the same block creates is sampled first,
  and a line that names `e_fit` runs the block's earlier `dsd fit` lines first.
- the data root (`$DSD_DATA`, and `~/data` in a line) is CIFAR-10 cut to 26 images a batch
  file (130: a batch and a bit) and 64 test images, so `dsd train` trains the full `nds` recipe
  (10 epochs) for real in seconds.
- `export VAR=VALUE` lines of a block apply to the later lines of that block ($PWD: the
  repository); files a line names that README makes elsewhere (`mystudy.yaml` from its YAML
  block, `population.parquet` by `dsd export-population`, pycls's `cifar_regnet.yaml`) are
  written into the folder first; `> FILE` writes the standard output there.

`dsd check-block` runs in a process of its own (the fixture has registered the example block
in this one already). A line passes when it exits 0 with no `error:` line, no traceback, and writes every `-o` file.
Tagged lines are parsed only (`test_tagged_line_parses`): the command and every option exist
and their values convert, so a renamed or removed option fails there too.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import readme_store  # noqa: E402

from dsd.cli import run  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
TAGS = ("gpu", "data", "ray")
#: Commands that load a plugin file themselves: run as `python -m dsd` in a fresh process.
SUBPROCESS = ("check-block",)
_TAG = re.compile(r"\[([a-z]+(?:,\s*[a-z]+)*)\]\s*$")
LINKED = ("examples", "results")
FILES = {"cifar_regnet.yaml": REPO / "tests" / "fixtures" / "pycls" / "cifar_regnet.yaml"}


@dataclass(frozen=True)
class Line:
    """One `dsd` line of README: its line number, the command (comment stripped), the tags,
    the `export`s before it in its block and the block's earlier untagged `dsd sample` and
    `dsd fit` commands."""

    number: int
    command: str
    tags: tuple[str, ...]
    exports: tuple[tuple[str, str], ...]
    samples: tuple[str, ...]
    fits: tuple[str, ...]

    @property
    def args(self) -> list[str]:
        return shlex.split(self.command, comments=True)[1:]

    def __str__(self) -> str:
        return f"L{self.number}: {self.command}"


def readme_lines(text: str) -> list[Line]:
    """The `dsd` lines of the unlabelled fenced blocks of `text`."""
    out, in_block, label = [], False, ""
    exports: list[tuple[str, str]] = []
    samples: list[str] = []
    fits: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.startswith("```"):
            in_block, label = not in_block, raw[3:].strip()
            exports, samples, fits = [], [], []
            continue
        stripped = raw.strip()
        if not in_block or label:
            continue
        if stripped.startswith("export "):
            name, _, value = stripped[len("export "):].split("#")[0].strip().partition("=")
            exports.append((name, value))
        if not stripped.startswith("dsd "):
            continue
        words = shlex.split(stripped, comments=True)
        command = " ".join(shlex.quote(w) if w != ">" else w for w in words)
        comment = stripped.partition(" #")[2]
        m = _TAG.search(comment)
        tags = tuple(t.strip() for t in m.group(1).split(",")) if m else ()
        out.append(Line(number, command, tags, tuple(exports), tuple(samples), tuple(fits)))
        if words[1] == "sample" and not tags:
            samples.append(command)
        if words[1] == "fit" and not tags:
            fits.append(command)
    return out


LINES = readme_lines(README.read_text())
RUN = [ln for ln in LINES if not ln.tags]
TAGGED = [ln for ln in LINES if ln.tags]


def _sample_name(args: list[str]) -> str | None:
    """The sweep a `dsd sample` command creates (`--name`, else SPACE-DATASET-sSEED)."""
    opts = {a: b for a, b in zip(args, args[1:]) if a.startswith("--")}
    if "--name" in opts:
        return opts["--name"]
    if "--space" not in opts:
        return None
    return (f"{Path(opts['--space']).stem}-{opts.get('--dataset', 'imagenet')}"
            f"-s{opts.get('--seed', '0')}")


def test_readme_has_lines_and_only_known_tags():
    assert len(LINES) > 50 and len(RUN) > len(TAGGED)
    for ln in TAGGED:
        assert set(ln.tags) <= set(TAGS), f"{ln}: unknown tag {ln.tags}; known: {TAGS}"


def test_readme_explains_the_tags():
    text = README.read_text()
    first_example = text.index("```")
    sentence = text.find("tests/test_readme.py")
    assert 0 <= sentence, "README should say where its examples run"
    assert all(f"`[{t}]`" in text for t in TAGS), "README should name every tag"
    # the sentence comes before the first block with a tag
    first_tagged = min(ln.number for ln in TAGGED)
    assert text[:sentence].count("\n") < first_tagged, (first_example, sentence)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The analysis store, the same with the ImageNet walkthrough sweep, the training store,
    README's `population.parquet` and the small CIFAR-10 root (built once, copied per line)."""
    work = tmp_path_factory.mktemp("readme_stores")
    mp = pytest.MonkeyPatch()
    mp.setenv("DSD_BLOCKS", str(REPO / "examples" / "convnext_block.py"))
    try:
        study = readme_store.study_store(work / "study.sqlite", work)
        imagenet = work / "imagenet.sqlite"
        shutil.copy(study, imagenet)
        readme_store.add_imagenet_sweep(imagenet)
        train = readme_store.train_store(work / "train.sqlite")
        population = work / "population.parquet"
        assert run(["export-population", "narrow", "wide", "-o", str(population),
                    "--store", str(study)]) == 0
    finally:
        mp.undo()
    root = os.environ.get("DSD_DATA", REPO.parent / "shared" / "data")
    data = readme_store.tiny_cifar(Path(root), work / "data")
    return {"study": study, "imagenet": imagenet, "train": train, "population": population,
            "data": data}


def _readme_yaml(first_line: str) -> str:
    """The YAML block of README whose first line is `first_line`."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", README.read_text(), re.S | re.M)
    found = [b for b in blocks if b.splitlines()[0].strip() == first_line]
    assert len(found) == 1, f"README has no single yaml block starting {first_line!r}"
    return found[0]


def _store_for(line: Line, stores, folder: Path) -> Path:
    """A fresh store for `line` in `folder` (see the module docstring)."""
    path = folder / "dsd.sqlite"
    cmd = line.args[0]
    if cmd == "sample":
        return path
    base = ("train" if cmd in ("train", "status") else
            "imagenet" if "imagenet-s0" in line.command else "study")
    shutil.copy(stores[base], path)
    words = set(line.args)
    for sample in line.samples:
        if _sample_name(shlex.split(sample)[1:]) in words:
            assert run([*shlex.split(sample)[1:], "--store", str(path)]) == 0, sample
    if "e_fit" in words:
        for fit in line.fits:
            assert run([*shlex.split(fit)[1:], "--store", str(path)]) == 0, fit
    return path


def _args(line: Line, store: Path, data: Path) -> tuple[list[str], str | None]:
    """The line's arguments with `--store` and `~/data` pointed at the test's, and the file of
    a `> FILE` redirection."""
    args = [str(data) if a == "~/data" else a for a in line.args]
    redirect = None
    if ">" in args:
        i = args.index(">")
        args, redirect = args[:i], args[i + 1]
    if "--store" in args:
        args[args.index("--store") + 1] = str(store)
    return args, redirect


@pytest.mark.parametrize("line", RUN, ids=str)
def test_line_runs(line, stores, tmp_path, monkeypatch, capsys):
    for name in LINKED:
        (tmp_path / name).symlink_to(REPO / name)
    for name, source in FILES.items():
        if name in line.args:
            shutil.copy(source, tmp_path / name)
    if "mystudy.yaml" in line.args:
        (tmp_path / "mystudy.yaml").write_text(_readme_yaml("# mystudy.yaml"))
    if "population.parquet" in line.args:
        shutil.copy(stores["population"], tmp_path / "population.parquet")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSD_DATA", str(stores["data"]))
    monkeypatch.setenv("COLUMNS", "80")
    for name, value in line.exports:
        monkeypatch.setenv(name, value.replace("$PWD", str(REPO)))
    store = _store_for(line, stores, tmp_path)
    monkeypatch.setenv("DSD_STORE", str(store))
    args, redirect = _args(line, store, stores["data"])
    if args[0] in SUBPROCESS:
        done = subprocess.run([sys.executable, "-m", "dsd", *args], capture_output=True,
                              text=True, timeout=300)
        code, out, err = done.returncode, done.stdout, done.stderr
    else:
        code = run(args)
        out, err = capsys.readouterr()
    assert code == 0, f"{line}\nexit {code}\n{out}\n{err}"
    assert "Traceback" not in out + err and not re.search(r"^error:", err, re.M), err
    if redirect:
        (tmp_path / redirect).write_text(out)
        assert out.strip(), f"{line}: nothing on stdout"
    for opt in ("-o", "--output"):
        if opt in args:
            written = tmp_path / args[args.index(opt) + 1]
            assert written.is_file() and written.stat().st_size > 0, f"{line}: no {written}"


@pytest.mark.parametrize("line", TAGGED, ids=str)
def test_tagged_line_parses(line):
    """The command and its options exist and convert (nothing runs): click parses the line."""
    import typer

    import dsd.cli as cli

    run(["--help"])  # registers every command module, as `dsd` does
    group = typer.main.get_command(cli.app)
    name, *rest = line.args
    ctx = group.context_class(group, info_name="dsd")
    command = group.get_command(ctx, name)
    assert command is not None, f"{line}: no command {name}"
    command.make_context(name, rest, parent=ctx)   # raises a UsageError on a bad option
