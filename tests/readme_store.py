"""Small stores and data on which README.md's `dsd` lines run in CI (tests/test_readme.py).

Sweeps are sampled with the real `dsd sample` command line, under the names README uses
(SPACE-DATASET-sSEED); their results come from a formula of each model's complexity plus
seeded noise, written through the store API under the `nds` recipe (so the analysis
commands see one dataset and recipe, as on a trained store). They are fixture values, not
measurements. The training store's sweep `SWEEP` holds tiny models, most with planted
results and the rest left for `dsd train` to train for real on `tiny_cifar`'s data.
"""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np

from dsd.cli import run
from dsd.spec import ModelSpec
from dsd.store import Store
from dsd.train.recipes import RECIPES

#: The CIFAR-10 sweeps README's analysis examples name, 100 models each as README samples them:
#: `dsd decide` reuses a sweep only with at least --max-n (100) models, a README block samples
#: regnetx again (a no-op only with the same n), and `--bins 20` needs no empty bin.
STUDY_SPACES = ("anynetxa", "anynetxb", "anynetxc", "anynetxd", "anynetxe", "regnetx",
                "regnety")
#: A fixed error offset per space (points), so comparisons have differences to find.
OFFSET = {"anynetxa": 3.0, "anynetxb": 3.0, "anynetxc": 3.0, "anynetxd": 1.5, "anynetxe": 2.0,
          "regnetx": 0.0, "regnety": -0.5, "convnext_space": 0.5, "narrow": 1.0, "wide": 0.0}
EPOCHS = 10
#: README's own study example spaces (`dsd summarize --study`): RegNetX under two names.
STUDY_YAML_SPACES = {"narrow": "RegNetX under another name (README's study example)",
                     "wide": "RegNetX under another name (README's study example)"}


def _sample(store: Path, *args: str) -> None:
    code = run(["sample", *args, "--store", str(store)])
    assert code == 0, f"dsd sample {' '.join(args)} exited {code}"


def _error(spec: ModelSpec, flops: float, offset: float, rng: np.random.Generator) -> float:
    """Top-1 error (%): falls with flops, best near 20 blocks, plus N(0, 1) noise."""
    err = (12.0 + offset - 3.0 * math.log(flops / 100e6) + 0.01 * (spec.depth - 20) ** 2
           + rng.normal(0.0, 1.0))
    return float(min(max(err, 1.0), 89.0))


def add_results(db: Store, sweep: str, *, seed: int, statuses: dict[int, str] | None = None,
                dataset: str = "cifar10", recipe: str = "nds") -> None:
    """A result for every model of `sweep` under `recipe` (as `dsd train` keys it): done with
    per-epoch top-1 and train loss, or the status `statuses` gives its index ("untrained":
    none)."""
    rng = np.random.default_rng(seed)
    recipe_json = RECIPES[recipe].to_dict()
    statuses = statuses or {}
    offset = OFFSET.get(db.sweep(sweep)["space"], 0.0)
    for m in db.models(sweep).to_dict("records"):
        err = _error(ModelSpec.from_json(m["spec"]), m["flops"], offset, rng)
        status = statuses.get(int(m["index"]), "done")
        if status == "untrained":
            continue
        rid = db.start_result(int(m["model_id"]), dataset=dataset, recipe=recipe,
                              recipe_json=recipe_json, seed=int(m["index"]))
        if status != "done":
            db.finish_result(rid, status, error=f"planted {status} result")
            continue
        for e in range(1, EPOCHS + 1):
            left = (EPOCHS - e) / EPOCHS
            db.add_epoch(rid, e, top1=err + 30.0 * left, top5=(err + 30.0 * left) / 4,
                         train_loss=0.4 + 1.8 * left, lr=0.1 * left, seconds=1.0)
        db.finish_result(rid, "done", top1=err, top5=err / 4, train_loss=0.4, seconds=10.0,
                         device="formula")


def study_store(path: Path, work: Path) -> Path:
    """The store of README's analysis examples: every sweep in STUDY_SPACES, the block example's
    `convnext_space-cifar10-s0` (the block file must be loaded: DSD_BLOCKS) and the study
    example's `narrow` and `wide` (spaces written to `work`; 40 models each), all done."""
    repo = Path(__file__).resolve().parent.parent
    for space in STUDY_SPACES:
        _sample(path, "--space", space, "--n", "100", "--dataset", "cifar10", "--seed", "0")
    _sample(path, "--space", str(repo / "examples" / "convnext_space.yaml"), "--n", "100",
            "--dataset", "cifar10")
    for name, description in STUDY_YAML_SPACES.items():
        (work / f"{name}.yaml").write_text(
            f"name: {name}\ndescription: {description}\nextends: regnetx\n")
        _sample(path, "--space", str(work / f"{name}.yaml"), "--n", "40", "--dataset", "cifar10",
                "--name", name)
    db = Store(path)
    try:
        for i, sweep in enumerate(db.sweep_names()):
            add_results(db, sweep, seed=i)
    finally:
        db.close()
    return path


def add_imagenet_sweep(path: Path) -> None:
    """README's walkthrough sweep `anynetxc-imagenet-s0` (`dsd sample --space anynetxc --n 500
    --flops 400MF --seed 0`), its results under `dds`."""
    _sample(path, "--space", "anynetxc", "--n", "500", "--flops", "400MF", "--seed", "0")
    db = Store(path)
    try:
        add_results(db, "anynetxc-imagenet-s0", seed=99, dataset="imagenet", recipe="dds")
    finally:
        db.close()


def train_store(path: Path) -> Path:
    """README's training examples' store: one sweep named `SWEEP` (README's placeholder) of 8
    AnyNetXA models of 1.5–4MF in the CIFAR-10 layout; models 0–5 done, 6 failed, 7 pending
    (so `dsd train` trains one model, `--retry-failed` two, `--index 7` one)."""
    _sample(path, "--space", "anynetxa", "--n", "8", "--dataset", "cifar10",
            "--flops-range", "1.5MF", "4MF", "--name", "SWEEP")
    db = Store(path)
    try:
        add_results(db, "SWEEP", seed=0, statuses={6: "failed", 7: "untrained"})
    finally:
        db.close()
    return path


def tiny_cifar(source: Path, root: Path, *, per_batch: int = 26, test: int = 64) -> Path:
    """A data root whose cifar10/cifar-10-batches-py holds the first `per_batch` images of
    each of `source`'s training batches and its first `test` test images, in CIFAR-10's own
    format: `dsd train`'s full `nds` recipe (10 epochs) runs on it in seconds."""
    src = source / "cifar10" / "cifar-10-batches-py"
    dst = root / "cifar10" / "cifar-10-batches-py"
    dst.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        with open(src / name, "rb") as f:
            d = pickle.load(f, encoding="latin1")
        small = {"data": d["data"][:n], "labels": list(d["labels"][:n]),
                 "batch_label": d.get("batch_label", name)}
        with open(dst / name, "wb") as f:
            pickle.dump(small, f)
    return root
