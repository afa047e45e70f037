"""When a sample is too thin for the number shown (issue 30): one rule, `minimum(kind)`, for
every statistic the analysis commands print, the note that stands in for a number below it
(`note`), and the warning that a sweep's models are still near chance (`chance_warning`).

The minimum number of models of each kind follows from the level of the tests (ALPHA = 0.05)
and of the intervals (95%); none is chosen by hand:

- "test" (KS, rank and within-bin permutation tests; per side): 4. The smallest two-sided p of
  an exact rank or KS test of n against n models is 2/C(2n, n) (complete separation): 0.10 at
  3 and 3, 0.029 at 4 and 4. Below 4 no outcome could reach p < 0.05.
- "interval" (bootstrap intervals and bands; per side): 4. A resample repeats one model n
  times with probability n^-n: with 3 models 1 in 27 (> 2.5%), so the 95% interval is the
  sample's own range; with 4, 1 in 256.
- "correlation" (Spearman ρ): 5. The smallest two-sided exact p of n pairs is 2/n!: 0.083 at
  4, 0.017 at 5.
- "spread" (a standard deviation): 2.
- "best range" (DDS: the value of the best of k = round(25% of n) drawn): 22. The best of k
  lies in the worse half of the models with probability 2^-k, below 2.5% only from k = 6 on
  (22 models); with fewer, the 95% interval cannot leave out the worse half of the values.
- the expected best of m random models (search efficiency): m ≤ n (`search_limit`); larger m
  would draw the same models again.

Below its minimum a number is not computed (NaN, printed "–") and `note` names each sweep
below it with its n. Pure; no torch.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from math import comb, factorial

import numpy as np
import pandas as pd

from ..chance import near_chance_margin
from ..spec import chance_error, layout
from .verdicts import ALPHA

LEVEL = 0.95  # of every interval the commands print
FRAC = 0.25  # the DDS best range keeps the best of this fraction drawn (`stats.best_range`)


def min_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p an exact rank or KS test of n_a against n_b models can give:
    2/C(n_a + n_b, n_a), both orders of complete separation."""
    return min(1.0, 2.0 / comb(n_a + n_b, n_a))


def best_k(n: int, frac: float = FRAC) -> int:
    """Models drawn per resample of the DDS best range (as `stats.best_range`)."""
    return max(1, int(round(frac * n)))


def _smallest(ok: Callable[[int], bool]) -> int:
    n = 1
    while not ok(n):
        n += 1
    return n


_TAIL = (1 - LEVEL) / 2
MINIMUM = {
    "test": _smallest(lambda n: min_p(n, n) < ALPHA),
    "interval": _smallest(lambda n: n ** -n < _TAIL),
    "correlation": _smallest(lambda n: 2 / factorial(n) < ALPHA),
    "spread": 2,
    "best range": _smallest(lambda n: 0.5 ** best_k(n) < _TAIL),
}


def _why(kind: str) -> str:
    m = MINIMUM[kind]
    below = m - 1
    return {
        "test": f"with {below} and {below} models the smallest two-sided p of a rank or KS test "
                f"is {min_p(below, below):.2f}, so none could reach p < {ALPHA}",
        "interval": f"with {below} models, 1 bootstrap resample in {below ** below} repeats one "
                    f"model {below} times, so a {LEVEL:.0%} interval is the sample's own range",
        "correlation": f"with {below} models the smallest two-sided p of Spearman's test is "
                       f"2/{below}! = {2 / factorial(below):.3f}",
        "spread": "one model has no spread",
        "best range": f"it keeps the best of {FRAC:.0%} drawn ({best_k(m)} at {m}); with fewer "
                      f"than {best_k(m)} drawn the best lies in the worse half of the models "
                      f"more than {_TAIL:.1%} of the time",
    }[kind]


WHAT = {"test": "a test", "interval": f"a {LEVEL:.0%} interval", "correlation": "a correlation",
        "spread": "a spread", "best range": "a best range"}
PER_SIDE = ("test",)  # kinds whose minimum is per side of a pair


def minimum(kind: str | Sequence[str]) -> int:
    """The fewest models (per side for tests and intervals) a statistic of `kind` needs; for
    several kinds, the most of theirs."""
    kinds = [kind] if isinstance(kind, str) else list(kind)
    return max(MINIMUM[k] for k in kinds)


def enough(kind: str | Sequence[str], *ns: int) -> bool:
    """Whether every sample size in `ns` reaches `minimum(kind)`."""
    m = minimum(kind)
    return all(int(n) >= m for n in ns)


def note(kind: str | Sequence[str], counts: Mapping[str, int], *, lead: str = "–"
         ) -> str | None:
    """The note that replaces numbers of `kind` (one kind, or several needed together) for the
    sweeps of `counts` (sweep → models) below the minimum, or None when none is:
    '–: a test needs at least 4 models per side; demo-xa has 3 (with 3 and 3 …)' (`lead`
    names what is missing: "–" where the table prints it, "no band", …)."""
    kinds = [kind] if isinstance(kind, str) else list(kind)
    m = minimum(kinds)
    low = {s: int(n) for s, n in counts.items() if int(n) < m}
    if not low:
        return None
    decisive = max(kinds, key=lambda k: MINIMUM[k])
    what = " or ".join(WHAT[k] for k in kinds)
    side = " per side" if any(k in PER_SIDE for k in kinds) else ""
    has = ", ".join(f"{s} has {n}" for s, n in low.items())
    return f"{lead}: {what} needs at least {m} models{side}; {has} ({_why(decisive)})"


def search_limit(n: int) -> int:
    """The largest experiment size m whose expected best error a sweep of n models gives."""
    return int(n)


def search_note(counts: Mapping[str, int], ms: Sequence[int], *, lead: str = "–"
                ) -> str | None:
    """The note for sweeps whose size is below the largest m shown, or None."""
    top = max(ms) if len(ms) else 0
    low = {s: int(n) for s, n in counts.items() if search_limit(n) < top}
    if not low:
        return None
    has = ", ".join(f"{s} has {n}" for s, n in low.items())
    return (f"{lead}: the expected best of m models is shown for m up to the sweep's size "
            f"({has}); a larger m would draw the same models again")


# ---- near chance --------------------------------------------------------------------------
def num_classes_of(spec, dataset: str) -> int:
    """Classes of a model: its spec's num_classes, else the dataset layout's."""
    try:
        return int((json.loads(spec) if isinstance(spec, str) else spec)["num_classes"])
    except (TypeError, KeyError, ValueError):
        return layout(dataset).num_classes


def test_size_of(df: pd.DataFrame) -> int | None:
    """Test images of the results' recipe: its test_subset (None: the whole test set)."""
    if "recipe_json" not in df:
        return None
    for text in df["recipe_json"].dropna():
        try:
            n = (json.loads(text) if isinstance(text, str) else text).get("test_subset")
        except (TypeError, ValueError, AttributeError):
            continue
        return int(n) if n else None
    return None


def near_chance(df: pd.DataFrame, test_size: int | None = None) -> pd.DataFrame:
    """Per sweep of a results frame (sweep, top1, spec, dataset): median error, chance error,
    the near-chance margin (`chance.near_chance_margin` on the recipe's test images) and
    whether the median lies within it of chance."""
    n_test = test_size if test_size is not None else test_size_of(df)
    rows = []
    for s, part in df.groupby("sweep", sort=False):
        dataset = part["dataset"].iloc[0] if "dataset" in part else "cifar10"
        k = num_classes_of(part["spec"].iloc[0] if "spec" in part else None, dataset)
        median = float(np.median(part["top1"].astype(float)))
        chance, margin = chance_error(k), near_chance_margin(k, n_test)
        rows.append({"sweep": s, "median": median, "classes": k, "chance": chance,
                     "margin": margin, "near": median >= chance - margin})
    return pd.DataFrame(rows, columns=["sweep", "median", "classes", "chance", "margin", "near"])


def chance_warning(df: pd.DataFrame, test_size: int | None = None) -> str | None:
    """One sentence saying which sweeps are near chance (`near_chance`), or None: their models
    have barely learned, so comparisons of them mean nothing yet."""
    t = near_chance(df, test_size)
    t = t[t["near"]]
    if t.empty:
        return None
    first = t.iloc[0]
    same = t["chance"].nunique() == 1
    which = ", ".join(f"{r['sweep']} {r['median']:.1f}%" for r in t.to_dict("records"))
    ref = (f"{first['chance']:.0f}% by guessing ({first['classes']} classes)" if same else
           "guessing")
    return (f"near chance: median error {which}, within {first['margin']:.0f} points of "
            f"{ref}; there (Cohen's κ against guessing ≤ 0.2) the models have "
            f"barely learned, so comparisons of them mean nothing yet (train longer)")
