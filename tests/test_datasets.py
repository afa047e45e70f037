"""The dataset registry (`dsd.datasets`): the built-ins' definitions, one-line errors for unknown
names everywhere, `dsd datasets`, the checks of a tree and of in-memory arrays, and a dataset of
one's own in one file: an ImageFolder at 64×64 loaded through $DSD_DATASETS, sampled, trained
on CPU by `dsd train` and shown (README: Adding a dataset), and the CIFAR-100 example trained."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import dsd.cli.core  # noqa: F401  (registers the commands)
import dsd.cli.train  # noqa: F401
from dsd import Store, datasets
from dsd.cli import app
from dsd.datasets import Dataset, Layout, get_dataset, image_folder, layout, register
from dsd.errors import DsdError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
runner = CliRunner()
UNKNOWN = "unknown dataset 'x'; known: imagenet, cifar10, synthetic"


@pytest.fixture
def registry():
    """The registry as it was, restored after the test (datasets it registers do not leak
    into other tests, whose error messages list the built-ins)."""
    saved, loaded = dict(datasets.DATASETS), set(datasets._plugins.loaded)
    yield datasets
    datasets.DATASETS.clear()
    datasets.DATASETS.update(saved)
    datasets._plugins.loaded.clear()
    datasets._plugins.loaded.update(loaded)


def _json(v) -> dict:
    return v if isinstance(v, dict) else json.loads(v)


def _dsd(*args, env=None, ok=True, cwd=None):
    out = subprocess.run([sys.executable, "-m", "dsd", *map(str, args)], capture_output=True,
                         text=True, cwd=cwd or ROOT, env={**os.environ, **(env or {})})
    assert (out.returncode == 0) == ok, out.stdout + out.stderr
    return out.stdout + out.stderr


# ---- the built-ins --------------------------------------------------------------------------
def test_builtins_are_the_old_tables():
    """The values the scattered tables held: layouts, training images, default recipes,
    synthetic data's epoch size, CIFAR-10's and ImageNet's normalization."""
    assert datasets.known_datasets()[:3] == ["imagenet", "cifar10", "synthetic"]
    assert layout("imagenet") == Layout(224, 1000, 2, 2)
    assert layout("cifar10") == Layout(32, 10, 1, 1)
    assert list(datasets.layouts())[:2] == ["imagenet", "cifar10"]
    inet, cifar, syn = (get_dataset(n) for n in ("imagenet", "cifar10", "synthetic"))
    assert (inet.train_images, inet.recipe, cifar.train_images, cifar.recipe) == (
        1_281_167, "dds", 50_000, "nds")
    assert cifar.fixed_size and not inet.fixed_size and syn.synthetic and syn.layout is None
    assert (syn.images(32), syn.images(64), syn.images(65), syn.images(224, 300)) == (
        50_000, 50_000, 10_000, 300)
    assert (cifar.images(32, 100), cifar.images(32, 10**6)) == (100, 50_000)
    assert inet.mean == (0.485, 0.456, 0.406) and inet.std == (0.229, 0.224, 0.225)
    assert cifar.mean == (0.49139968, 0.48215841, 0.44653091)
    from dsd.train.cost import workload
    from dsd.train.recipes import RECIPES, get_recipe

    assert get_recipe(None, "imagenet") is RECIPES["dds"]
    assert workload("imagenet", 224, {"batch_size": 128}) == (1_281_167, 10_009)
    assert workload("cifar10", 32, {"batch_size": 128, "subset": 1000}) == (1000, 7)


def test_cifar10_statistics_are_its_training_images(data_root):
    """MEAN and STD are the per-channel statistics of the 50,000 training images."""
    from dsd.datasets import cifar10

    x = cifar10.read(data_root / "cifar10" / "cifar-10-batches-py")[0]
    v = np.arange(256) / 255
    for c in range(3):   # exact moments from each channel's histogram of pixel values
        p = np.bincount(x[:, c].ravel(), minlength=256) / x[:, c].size
        mean = p @ v
        assert abs(mean - cifar10.MEAN[c]) < 1e-6
        assert abs(np.sqrt(p @ (v - mean) ** 2) - cifar10.STD[c]) < 1e-6


# ---- unknown names --------------------------------------------------------------------------
def test_an_unknown_dataset_is_one_line_everywhere(tmp_path):
    from dsd.sample import sample
    from dsd.train.cost import workload
    from dsd.train.data import make_data
    from dsd.train.recipes import get_recipe

    for call in (lambda: get_dataset("x"), lambda: get_recipe(None, "x"),
                 lambda: get_recipe("nds", "x"), lambda: workload("x", 32, {"batch_size": 8}),
                 lambda: make_data("x", "cpu", batch_size=8, resolution=32, num_classes=10)):
        with pytest.raises(DsdError) as e:
            call()
        assert str(e.value).startswith(UNKNOWN) and "\n" not in str(e.value)
    for call in (lambda: layout("x"), lambda: sample("anynetxa", 1, dataset="x")):
        with pytest.raises(DsdError, match=r"^unknown dataset 'x'; allowed: imagenet, cifar10"):
            call()
    with pytest.raises(DsdError, match="'synthetic' has no layout.*allowed: imagenet, cifar10"):
        layout("synthetic")
    with pytest.raises(DsdError, match="'synthetic' has no default recipe; name one"):
        get_recipe(None, "synthetic")
    res = runner.invoke(app, ["sample", "--space", "anynetxa", "--dataset", "x", "--store",
                              str(tmp_path / "a.sqlite")])
    assert res.exit_code == 1 and "unknown dataset 'x'; allowed: imagenet, cifar10" in res.output
    assert not (tmp_path / "a.sqlite").exists()
    # dsd train: before the store's sweeps are looked at (an empty store), and with sweeps
    for fill in (False, True):
        path = tmp_path / f"t{fill}.sqlite"
        store = Store(path)
        if fill:
            from test_train import add_sweep

            add_sweep(store, n=1)
        store.close()
        res = runner.invoke(app, ["train", "--dataset", "x", "--store", str(path)])
        assert res.exit_code == 1 and UNKNOWN in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(app, ["train", "--dataset", "imagenet", "--store", str(path)])
    assert res.exit_code == 1 and "sampled for cifar10" in res.output
    assert "(use --dataset cifar10 or synthetic)" in res.output


def test_definitions_are_checked(registry):
    good = dict(name="d64", description="", layout=Layout(64, 5, 1, 2), train_images=10,
                test_images=None, mean=(0.5,) * 3, std=(0.25,) * 3, recipe="dds",
                load=lambda *a, **k: None)
    for change, why in (({"name": "My Set"}, "lower-case"), ({"train_images": 0}, ">= 1"),
                        ({"mean": (0.5, 0.5)}, "three numbers"), ({"std": (0, 1, 1)}, "> 0"),
                        ({"locations": lambda root: (root,)}, "both locations and present")):
        with pytest.raises(DsdError, match=why):
            Dataset(**{**good, **change})
    for bad, why in (((64, 1, 1, 1), "num_classes must be an integer >= 2"), ((4, 5, 1, 1), "resolution"),
                     ((64, 5, 3, 1), "stem_stride")):
        with pytest.raises(DsdError, match=why):
            Layout(*bad)
    register(Dataset(**good))
    assert get_dataset("d64").layout.resolution == 64 and "d64" in datasets.layouts()
    with pytest.raises(DsdError, match="'d64' is already registered"):
        register(Dataset(**good))
    with pytest.raises(DsdError, match="'cifar10' is already registered"):
        register(Dataset(**{**good, "name": "cifar10"}))


# ---- checks of the data ---------------------------------------------------------------------
def _jpeg(path: Path, colour: int, seed: int, size=64) -> None:
    """A real 64×64 JPEG whose dominant colour channel is its class (modulo 3)."""
    from PIL import Image

    img = np.random.default_rng(seed).integers(0, 90, (size, size, 3), dtype=np.uint8)
    img[..., colour % 3] += 160
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, format="JPEG", quality=90)


def _tree(root: Path, classes=3, train=8, val=4) -> None:
    for split, n in (("train", train), ("val", val)):
        for c in range(classes):
            for i in range(n):
                _jpeg(root / split / f"c{c}" / f"{i}.JPEG", c, 100 * c + i + (split == "val"))


def test_an_image_folder_tree_is_checked(tmp_path, registry):
    ds = register(image_folder("t64", layout=Layout(64, 5, 1, 2), train_images=24,
                               mean=(0.5,) * 3, std=(0.25,) * 3))
    with pytest.raises(DsdError, match=r"^t64 not found at .*/t64; put an ImageFolder tree"):
        ds.verify(tmp_path)
    tree = tmp_path / "t64"
    _tree(tree, classes=3)
    ds.verify(tmp_path)
    (tree / "val" / "c2").rename(tree / "val" / "c9")
    with pytest.raises(DsdError, match="same class folders.*1 only in train/, 1 only in val/"):
        ds.verify(tmp_path)
    (tree / "val" / "c9").rename(tree / "val" / "c2")
    for split in ("train", "val"):
        (tree / split / "c3").mkdir()
    with pytest.raises(DsdError, match=r"train/c3: an empty class folder"):
        ds.verify(tmp_path)
    for c in (3, 4, 5):
        for split in ("train", "val"):
            _jpeg(tree / split / f"c{c}" / "0.JPEG", c, c)
    with pytest.raises(DsdError, match="6 class folders, more than the 5 classes of the t64"):
        ds.verify(tmp_path)


def _cifar100_files(path: Path, train: int, test: int, classes: int = 100) -> None:
    """CIFAR-100's python-version files (train, test: data and fine_labels) of random images."""
    rng = np.random.default_rng(0)
    path.mkdir(parents=True)
    for name, n in (("train", train), ("test", test)):
        d = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             "fine_labels": (np.arange(n) % classes).tolist(),
             "coarse_labels": (np.arange(n) % 20).tolist()}
        with open(path / name, "wb") as f:
            pickle.dump(d, f)


def _small_cifar100(tmp_path: Path) -> Path:
    """examples/cifar100_dataset.py with the image counts of the files made here."""
    text = EXAMPLES.joinpath("cifar100_dataset.py").read_text()
    assert "train_images=50_000, test_images=10_000" in text
    f = tmp_path / "cifar100_small.py"
    f.write_text(text.replace("train_images=50_000, test_images=10_000",
                              "train_images=200, test_images=50"))
    return f


def test_in_memory_arrays_are_checked(tmp_path, registry):
    registry.load_dataset_file(_small_cifar100(tmp_path))
    ds = get_dataset("cifar100")
    _cifar100_files(tmp_path / "cifar100" / "cifar-100-python", 150, 50)
    with pytest.raises(DsdError, match="150 training images, the cifar100 definition says 200"):
        ds.verify(tmp_path)
    (tmp_path / "cifar100" / "cifar-100-python" / "test").write_bytes(b"not a pickle")
    with pytest.raises(DsdError, match="cannot read cifar100 .UnpicklingError"):
        ds.verify(tmp_path)


def test_a_broken_dataset_file_is_named(tmp_path, registry, monkeypatch):
    f = tmp_path / "broken.py"
    f.write_text("from dsd.datasets import register\nregister(None)\n")
    monkeypatch.setenv("DSD_DATASETS", str(f))
    with pytest.raises(DsdError, match=r"broken.py: register takes a dsd.datasets.Dataset"):
        get_dataset("anything")
    monkeypatch.setenv("DSD_DATASETS", str(tmp_path / "gone.py"))
    with pytest.raises(DsdError, match=r"dataset file not found: .*gone.py"):
        datasets.known_datasets()


# ---- dsd datasets ---------------------------------------------------------------------------
def test_datasets_command(data_root):
    res = runner.invoke(app, ["datasets", "--data-dir", str(data_root)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("imagenet") and "cifar10     CIFAR-10" in res.output
    assert "  layout    32×32, 10 classes; stem stride 1, first stage stride 1" in lines
    assert f"  data      found at {data_root / 'cifar10' / 'cifar-10-batches-py'}" in lines
    assert f"  data      not found at {data_root} or {data_root / 'imagenet'}" in lines
    assert "  images    generated per epoch: 50,000 at 32×32, 10,000 at 224×224" in lines
    assert all(len(ln) <= 80 for ln in lines if "found at" not in ln), lines
    rows = json.loads(runner.invoke(app, ["datasets", "--json"]).output)
    assert rows[1]["layout"] == {"resolution": 32, "num_classes": 10, "stem_stride": 1,
                                 "first_stride": 1} and rows[1]["downloads"]


def test_the_examples_register_without_torch():
    """Both example files load through $DSD_DATASETS in a fresh process (as a worker process
    would) and neither the registry nor `dsd datasets` imports torch."""
    env = {"DSD_DATASETS": os.pathsep.join(
        str(EXAMPLES / f) for f in ("tiny_imagenet_dataset.py", "cifar100_dataset.py"))}
    code = ("import sys; from dsd.datasets import known_datasets, layout; "
            "print(known_datasets(), layout('tiny64'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **env}, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("['imagenet', 'cifar10', 'synthetic', 'tiny64', 'cifar100'] "
                                  "Layout(resolution=64, num_classes=200, stem_stride=1, "
                                  "first_stride=2) False")
    assert "tiny64      Tiny ImageNet" in _dsd("datasets", env=env)


# ---- a dataset of one's own, in one file ----------------------------------------------------
PETS64 = '''"""pets64: a small ImageFolder of 64×64 JPEGs (the test's own)."""
from dsd.datasets import Layout, image_folder, register

register(image_folder(
    "pets64", description="three classes of 64×64 images",
    layout=Layout(resolution=64, num_classes=3, stem_stride=1, first_stride=2),
    train_images=24, test_images=12, mean=(0.45, 0.45, 0.45), std=(0.25, 0.25, 0.25)))
'''

SPACE = """name: regnetx_pets
description: RegNetX with a window for pets64
extends: regnetx
window:
  pets64: {flops: [5MF, 40MF]}
"""


def test_an_image_folder_dataset_in_one_file_samples_trains_and_shows(tmp_path):
    """The README's walk for an ImageFolder at 64×64: a dataset file named in $DSD_DATASETS,
    a space with a window for it, `dsd sample`, `dsd train` (1 epoch, CPU), `dsd show`."""
    _tree(tmp_path / "data" / "pets64", classes=3, train=8, val=4)   # < 5 classes: top-3
    (tmp_path / "pets64.py").write_text(PETS64)
    (tmp_path / "regnetx_pets.yaml").write_text(SPACE)
    env = {"DSD_DATASETS": str(tmp_path / "pets64.py"), "DSD_STORE": str(tmp_path / "s.sqlite")}
    data = ["--data-dir", tmp_path / "data"]
    assert f"found at {tmp_path / 'data' / 'pets64'}" in _dsd("datasets", *data, env=env)
    out = _dsd("sample", "--space", tmp_path / "regnetx_pets.yaml", "--dataset", "pets64",
               "--n", "1", env=env)
    assert "sweep regnetx_pets-pets64-s0: 1 models" in out and "flops 5MF–40MF" in out
    out = _dsd("train", "--epochs", "1", "--batch-size", "8", "--threads", "1", *data, env=env)
    assert "trained:" in out and "pending 0" in out, out
    df = Store(tmp_path / "s.sqlite").results(status=None)
    assert len(df) == 1 and df["status"].iloc[0] in ("done", "collapsed"), df["error"].tolist()
    assert df["dataset"].iloc[0] == "pets64" and df["recipe"].iloc[0] == "dds"
    assert _json(df["provenance"].iloc[0])["loader"] == "cpu"
    spec = _json(df["spec"].iloc[0])
    assert (spec["resolution"], spec["num_classes"], spec["stem_stride"]) == (64, 3, 1)
    assert df["top5"].iloc[0] == 0.0          # fewer than 5 classes: every label in the top 5
    assert "regnetx_pets-pets64-s0: 1 models" in _dsd("show", "regnetx_pets-pets64-s0", env=env)
    # without the file the sweep's dataset is unknown: one line saying where to name it
    out = _dsd("train", *data, env={**env, "DSD_DATASETS": ""}, ok=False)
    assert "unknown dataset 'pets64'; known: imagenet, cifar10, synthetic" in out
    assert "$DSD_DATASETS" in out and len(out.strip().splitlines()) == 1


def test_the_cifar100_example_trains(tmp_path, registry):
    """examples/cifar100_dataset.py (with the counts of the files made here): sampled at a
    window given on the command line, trained 1 epoch on CPU from its in-memory arrays."""
    registry.load_dataset_file(_small_cifar100(tmp_path))
    _cifar100_files(tmp_path / "data" / "cifar100" / "cifar-100-python", 200, 50)
    path = str(tmp_path / "s.sqlite")
    res = runner.invoke(app, ["sample", "--space", "regnetx", "--dataset", "cifar100", "--n", "1",
                              "--flops-range", "5MF", "30MF", "--store", path])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "--epochs", "1", "--batch-size", "50", "--threads", "1",
                              "--data-dir", str(tmp_path / "data"), "--store", path])
    assert res.exit_code == 0, res.output
    df = Store(path).results(status=None)
    assert df["status"].iloc[0] in ("done", "collapsed") and df["recipe"].iloc[0] == "nds"
    assert _json(df["spec"].iloc[0])["num_classes"] == 100
    assert _json(df["provenance"].iloc[0])["loader"] == "device"


@pytest.mark.slow
def test_a_dataset_from_a_file_trains_on_ray(tmp_path, registry, monkeypatch):
    """$DSD_DATASETS reaches Ray's workers (set after the cluster started), and the driver
    ships the in-memory dataset's arrays to them."""
    import ray  # the `ray` extra (in `.[dev]`): missing, the test fails
    from dsd.train import train

    f = _small_cifar100(tmp_path)
    registry.load_dataset_file(f)
    monkeypatch.setenv("DSD_DATASETS", str(f))
    _cifar100_files(tmp_path / "data" / "cifar100" / "cifar-100-python", 200, 50)
    path = str(tmp_path / "s.sqlite")
    res = runner.invoke(app, ["sample", "--space", "regnetx", "--dataset", "cifar100", "--n", "1",
                              "--flops-range", "5MF", "30MF", "--store", path])
    assert res.exit_code == 0, res.output
    owned = not ray.is_initialized()
    if owned:
        ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    try:
        out = train(Store(path), overrides={"epochs": 1, "batch_size": 50},
                    data_dir=tmp_path / "data", executor="ray")
    finally:
        if owned:
            ray.shutdown()
    df = Store(path).results(status=None)
    assert out.counts.get("done", 0) + out.counts.get("collapsed", 0) == 1, df["error"].tolist()
    assert _json(df["provenance"].iloc[0])["loader"] == "device"
