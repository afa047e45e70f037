"""How long a model takes to train, estimated from its flops, activations and depth, so that a
sweep can start its longest models first (`dsd train --order longest`, the default).

A sweep's wall time is decided by its tail: when models differ 5× in cost, a long model started
last keeps the machine waiting for it alone. Training time is modelled as

    seconds ≈ epochs · [images · (per_flop·flops + per_act·acts) + steps · per_block·depth]

flops and acts (per image, at the spec's resolution) carry the work that grows with the data;
depth (residual blocks) carries the per-step cost of launching a block's small kernels, which
dominates CIFAR-sized models. images, steps and epochs come from the dataset and recipe, so sweeps
of different layouts, subsets and resumed models (epochs left) compare. `STUDY` was fitted by
`fit` on the CIFAR-10 study's H200 models (8 at once per GPU), so its seconds are of that setting;
only the order matters for scheduling. No torch here.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..complexity import complexity
from ..datasets import get_dataset
from ..errors import DsdError
from ..spec import ModelSpec

ORDERS = ("longest", "store")


@dataclass(frozen=True)
class CostModel:
    """Seconds per multiply-add and per activation of one training image, per block and step."""

    per_flop: float
    per_act: float
    per_block: float

    def seconds(self, *, flops: float, acts: float, depth: float, images: float, steps: float,
                epochs: float) -> float:
        return epochs * (images * (self.per_flop * flops + self.per_act * acts)
                         + steps * self.per_block * depth)


#: `fit(population[population.device == "NVIDIA H200 bf16"])` of results/cifar10/ (135 models);
#: tests/test_cost.py refits it and checks these digits.
STUDY = CostModel(per_flop=2.16e-13, per_act=1.05e-10, per_block=9.90e-4)


def workload(dataset: str, resolution: int, recipe: dict) -> tuple[int, int]:
    """(training images, steps) per epoch of `recipe` on `dataset`, as the data loaders count
    them (the last partial batch dropped); the images are the registry's (`dsd.datasets`:
    the full training set's, or generated data's at this resolution)."""
    n = get_dataset(dataset).images(resolution, recipe.get("subset"))
    return n, max(1, n // recipe["batch_size"])


def spec_seconds(spec: ModelSpec, dataset: str, recipe: dict, epochs_done: int = 0,
                 model: CostModel = STUDY) -> float:
    """Estimated seconds to train `spec` for the recipe's epochs left after `epochs_done`."""
    c = complexity(spec)
    images, steps = workload(dataset, spec.resolution, recipe)
    return model.seconds(flops=c["flops"], acts=c["acts"], depth=sum(spec.ds), images=images,
                         steps=steps, epochs=max(0, recipe["epochs"] - epochs_done))


def check_order(order: str) -> None:
    if order not in ORDERS:
        raise DsdError(f"unknown --order {order!r}; allowed: {', '.join(ORDERS)}")


def order_jobs(jobs: list, order: str, done_epochs: dict[int, int] | None = None) -> list:
    """`jobs` (engine.Job) in the order to start them: 'longest' (estimated time left, longest
    first; ties keep the store's order) or 'store' (sweep, then model index)."""
    check_order(order)
    if order == "store":
        return list(jobs)
    done = done_epochs or {}

    def seconds(j) -> float:
        try:
            spec = ModelSpec.from_json(j.spec_json)
        except DsdError:  # a stored spec this dsd refuses: its worker fails it, with the reason
            return 0.0
        return spec_seconds(spec, j.dataset, j.recipe, done.get(j.meta.get("model_id"), 0))

    cost = {id(j): seconds(j) for j in jobs}
    return sorted(jobs, key=lambda j: -cost[id(j)])


def terms(df):
    """The three terms of the model (epochs·images·flops, epochs·images·acts,
    epochs·steps·depth) for every row of a population or `Store.results` frame (columns flops,
    acts, depth, dataset, recipe_json, spec), as an n×3 array."""
    import json

    import numpy as np

    rows = []
    for flops, acts, depth, dataset, recipe_json, spec in zip(
            df["flops"], df["acts"], df["depth"], df["dataset"], df["recipe_json"], df["spec"]):
        recipe = json.loads(recipe_json)
        images, steps = workload(dataset, ModelSpec.from_json(spec).resolution, recipe)
        e = recipe["epochs"]
        rows.append([e * images * flops, e * images * acts, e * steps * depth])
    return np.asarray(rows, dtype=float).reshape(-1, 3)


def fit(df) -> CostModel:
    """Least squares with non-negative coefficients of the measured `seconds` of the finished
    rows of `df` (see `terms`) against the three terms."""
    from scipy.optimize import nnls

    df = df[df["seconds"].notna() & (df["status"] == "done")]
    if len(df) < 3:
        raise DsdError(f"fitting the cost model needs at least 3 finished models, got {len(df)}")
    x = terms(df)
    scale = x.mean(axis=0)   # columns of similar size for the solver
    coef, _ = nnls(x / scale, df["seconds"].to_numpy(dtype=float))
    return CostModel(*(coef / scale).tolist())


def estimate(df, model: CostModel = STUDY):
    """Estimated seconds of every row of `df` (see `terms`)."""
    return terms(df) @ [model.per_flop, model.per_act, model.per_block]
