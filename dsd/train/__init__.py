"""Training of sampled models (`dsd train`): recipes, data, the per-model engine, the coordinator.

`recipes`, `options` and `paths` import no torch; `train` (the coordinator entry) imports it on
first call. Modules: recipes (named recipes), options (`TrainOptions`, one call's settings), paths
(data root), data (CIFAR-10 on device, ImageNet trees, synthetic), imagenet (its two loaders),
resample (batched crop/resize), optim (graph-capturable SGD), engine (one model), worker,
coordinator, runner, progress, cost (job order), ray_exec (the optional `--executor ray`).
"""
from .options import TrainOptions
from .recipes import DEFAULT_RECIPE, RECIPES, Recipe, get_recipe, parse_duration


def train(store, options: TrainOptions | None = None, **kwargs):
    """Train every pending model (see `dsd.train.runner.train`)."""
    from .runner import train as _train

    return _train(store, options, **kwargs)


__all__ = ["DEFAULT_RECIPE", "RECIPES", "Recipe", "TrainOptions", "get_recipe", "parse_duration",
           "train"]
