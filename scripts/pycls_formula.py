"""The deterministic weights and input both sides of the pycls cross-check compute (numpy only):
scripts/crosscheck_pycls.py (dsd's venv), scripts/pycls_oracle.py (pycls's venv) and
tests/test_pycls_golden.py, so golden logits are reproducible without pycls."""
from __future__ import annotations

import math

import numpy as np


def formula_tensor(i: int, key: str, shape) -> np.ndarray:
    """Deterministic float64 values for the i-th floating state entry in pycls's order
    (identical to scripts/pycls_oracle.py's): a sine of an arange, phase-shifted by i,
    scaled by the entry's role (its torch state_dict key suffix)."""
    shape = list(shape)
    n = int(np.prod(shape)) if len(shape) else 1
    base = np.sin(np.arange(n, dtype=np.float64) * 0.7 + (i + 1) * 1.3)
    if key.endswith("running_var"):
        v = 1.0 + 0.5 * np.abs(base)
    elif key.endswith("running_mean"):
        v = 0.1 * base
    elif len(shape) >= 2:  # conv / linear weight
        fan_in = int(np.prod(shape[1:]))
        v = base * (1.5 / math.sqrt(fan_in))
    elif key.endswith("weight"):  # BN gamma
        v = 1.0 + 0.2 * base
    else:  # BN beta, conv / linear bias
        v = 0.1 * base
    return v.reshape(shape)


def formula_input(shape) -> np.ndarray:
    n = int(np.prod(shape))
    return np.cos(np.arange(n, dtype=np.float64) * 0.37).reshape(shape)
