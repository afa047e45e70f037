"""Training of sampled models (`dsd train`): recipes, data, the per-model engine, the coordinator.

`recipes` and `options` import no torch; `train` (the coordinator entry) imports it on first
call. Datasets (layouts, where they live, how they load) are `dsd.datasets`'s. Modules: recipes
(named recipes), options (`TrainOptions`, one call's settings), data (CIFAR-10-like arrays on
the device, synthetic data; `make_data`), imagenet (the two loaders of ImageFolder trees),
resample (batched crop/resize), optim (graph-capturable SGD), engine (one model), worker,
coordinator, runner, progress, cost (job order), ray_exec (the optional `--executor ray`).
"""
from .options import TrainOptions
from .recipes import RECIPES, Recipe, get_recipe, parse_duration


def train(store, options: TrainOptions | None = None, **kwargs):
    """Train every pending model (see `dsd.train.runner.train`)."""
    from .runner import train as _train

    return _train(store, options, **kwargs)


__all__ = ["RECIPES", "Recipe", "TrainOptions", "get_recipe", "parse_duration", "train"]
