"""Training of sampled models (`dsd train`): recipes, data, the per-model engine, the coordinator.

`recipes` and `paths` import no torch; `train` (the coordinator entry) imports it on first call.
Modules: recipes (named recipes), paths (data root), data (CIFAR-10 on device, ImageFolder,
synthetic), optim (graph-capturable SGD), engine (one model), worker, coordinator, runner, progress,
ray_exec (the optional `--executor ray`).
"""
from .recipes import DEFAULT_RECIPE, RECIPES, Recipe, get_recipe, parse_duration


def train(store, **kwargs):
    """Train every pending model (see `dsd.train.runner.train`)."""
    from .runner import train as _train

    return _train(store, **kwargs)


__all__ = ["DEFAULT_RECIPE", "RECIPES", "Recipe", "get_recipe", "parse_duration", "train"]
