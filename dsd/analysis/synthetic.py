"""Synthetic results for demos and tests: errors from a known formula of the spec plus noise.

The numbers are NOT measurements. They are written through the normal store API
(`start_result` / `add_epoch` / `finish_result`) under the recipe name "synthetic-formula" and,
by default, with `synthetic=True`, so analysis commands skip them unless asked (`--synthetic`)
and every figure made from them says so.

The formula loosely mimics the paper's findings (DDS §3): bottleneck ratio b = 1 and group width
g > 1 are better, shrinking widths between stages cost accuracy, about 20 blocks is the best
depth, and more flops help a little.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..spec import ModelSpec

RECIPE = "synthetic-formula"
FORMULA = ("6 + 0.6·log2(mean b) + 0.5·[mean g = 1] + 0.8·Σ log2(w_i / w_{i+1})⁺ "
           "+ 0.004·(depth - 20)² - 2·log(flops / 125M) + N(0, noise²)")


def formula_error(spec: ModelSpec, flops: float, *, noise: float = 0.0,
                  rng: np.random.Generator | None = None) -> float:
    """Top-1 error (%) of a spec by FORMULA (noise-free when noise = 0)."""
    b = float(np.mean(spec.bs))
    g = float(np.mean(spec.gs))
    ws = spec.ws
    shrink = sum(max(0.0, math.log2(a / c)) for a, c in zip(ws, ws[1:]))
    err = (6.0 + 0.6 * math.log2(b) + (0.5 if g <= 1 else 0.0) + 0.8 * shrink
           + 0.004 * (spec.depth - 20) ** 2 - 2.0 * math.log(flops / 125e6))
    if noise:
        err += float((rng or np.random.default_rng()).normal(0.0, noise))
    return float(min(max(err, 0.5), 99.0))


def add_formula_results(store, sweep: str, *, dataset: str = "cifar10", recipe: str = RECIPE,
                        noise: float = 0.3, seed: int = 0, synthetic: bool = True,
                        epochs: int = 1, statuses: dict[int, str] | None = None) -> int:
    """Write a done result with a formula error for every model of a sweep.

    statuses: model index → final status other than done (failed, diverged, collapsed,
    pending, running), or "untrained" for no result at all, to plant skipped models.
    Returns the number of results written.
    """
    rng = np.random.default_rng(seed)
    recipe_json = {"name": recipe, "formula": FORMULA, "noise": noise, "epochs": epochs}
    statuses = statuses or {}
    n = 0
    for m in store.models(sweep).to_dict("records"):
        err = formula_error(ModelSpec.from_json(m["spec"]), m["flops"], noise=noise, rng=rng)
        status = statuses.get(int(m["index"]), "done")
        if status == "untrained":
            continue
        rid = store.start_result(int(m["model_id"]), dataset=dataset, recipe=recipe,
                                 recipe_json=recipe_json, seed=seed, synthetic=synthetic)
        if status == "done":
            for e in range(1, epochs + 1):
                store.add_epoch(rid, e, top1=err + (epochs - e), lr=0.1)
            store.finish_result(rid, "done", top1=err, top5=err / 4, seconds=0.0,
                                device="formula")
        elif status != "running":
            store.finish_result(rid, status, error=f"planted {status} result")
        n += 1
    return n


def demo_store(store, spaces: Iterable[str] = ("anynetxa", "anynetxc", "anynetxe", "regnetx"),
               *, n: int = 100, dataset: str = "cifar10", seed: int = 0, noise: float = 0.3,
               synthetic: bool = True):
    """Sample each space with `dsd.sample` (sweep named after its space) and add formula
    results. Returns the store."""
    from ..sample import sample
    from ..space import load_space

    for i, name in enumerate(spaces):
        space = load_space(name)
        s = sample(space, n, dataset=dataset, seed=seed)
        store.add_sweep(name, space=space.name, space_def=space.to_dict(), dataset=dataset,
                        window=s.window.to_dict(), seed=seed, draws=s.draws, models=s.models)
        add_formula_results(store, name, dataset=dataset, noise=noise, seed=seed + i,
                            synthetic=synthetic)
    return store
