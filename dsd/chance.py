"""Chance level, shared by training and analysis (torch-free): the error of guessing
(`spec.chance_error`), the margin below it that a trained model must reach to count as learned
(`chance_margin`: the trainer's `collapsed` rule, `train.engine.is_collapsed`), and the wider
margin within which a sweep is still "near chance", so that comparing it means nothing yet
(`near_chance_margin`: the analysis commands' warning, `analysis.thin.chance_warning`).
"""
from __future__ import annotations

import math

from .spec import chance_error

#: Cohen's κ of a classifier against guessing uniformly over k classes is 1 − error/chance_error;
#: at or below 0.2 (the top of "slight agreement" on Landis & Koch's 1977 scale) the models
#: removed at most a fifth of a guess's error: near chance.
NEAR_CHANCE_KAPPA = 0.2


def chance_margin(num_classes: int, n_test: int | None) -> float:
    """How far below chance an error must be to count as learned (points): 1 point, or three
    standard errors of a guessing classifier's error on `n_test` test images when that is more
    (CIFAR-10: 0.9 on 10,000 images, so 1; 2.8 on 1,000)."""
    if not n_test:
        return 1.0
    p = 1.0 - 1.0 / num_classes
    return max(1.0, 300.0 * math.sqrt(p * (1.0 - p) / n_test))


def near_chance_margin(num_classes: int, n_test: int | None = None) -> float:
    """How far below chance a sweep's median error must be before comparing it means anything
    (points): NEAR_CHANCE_KAPPA × the chance error (κ against guessing ≤ 0.2), or the trainer's
    `chance_margin` (a guesser's own noise on `n_test` images) when that is more. CIFAR-10: 18
    points, so median errors of 72 % and more are near chance (the demo's 1-epoch models at
    75–85 % are)."""
    return max(chance_margin(num_classes, n_test),
               NEAR_CHANCE_KAPPA * chance_error(num_classes))
