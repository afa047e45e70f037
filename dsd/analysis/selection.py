"""Choosing what to compare: sweeps by name, results of one recipe and dataset, and why models
were left out; plus the per-model parameter table that `analyze` plots.

Names are sweep names; a space name selects that space's sweep when exactly one sweep has that
space. Only finished (`done`) results of ONE (recipe, dataset) are compared; every other model
of the selected sweeps is counted as skipped with its reason (failed, diverged, collapsed,
running, pending = no result yet for this recipe, synthetic = synthetic data left out).

With `count_failures`, failed, diverged and collapsed models are used instead, at chance error
100·(1 − 1/classes) (column `at_chance` True): dropping them biases an EDF toward the space
that fails more often. `Selection.caption()` is the line every figure carries: dataset,
recipe, epochs, and how many models were left out or counted at chance.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DsdError
from ..spec import chance_error
from .tables import wrap
from .thin import num_classes_of, test_size_of

SKIP_REASONS = ("failed", "diverged", "collapsed", "running", "pending", "synthetic")
#: outcomes of a finished training that learned nothing usable; `count_failures` uses them
FAILURES = ("failed", "diverged", "collapsed")


def resolve_sweeps(store, names: Iterable[str]) -> list[str]:
    """Sweep names for user names: a sweep name, or a space name with exactly one sweep."""
    names = list(names)
    if not names:
        raise DsdError("name at least one sweep (see `dsd show`)")
    table = store.sweeps()
    known = list(table["name"]) if not table.empty else []
    out: list[str] = []
    for name in names:
        if name in known:
            sweep = name
        else:
            matches = list(table.loc[table["space"] == name, "name"]) if known else []
            if len(matches) == 1:
                sweep = matches[0]
            elif matches:
                raise DsdError(f"space {name!r} has {len(matches)} sweeps: {', '.join(matches)}; "
                               f"name the sweep to use")
            else:
                raise DsdError(f"no sweep or space named {name!r} in {store.path}; sweeps: "
                               f"{', '.join(known) or '(none; run dsd sample)'}")
        if sweep in out:
            raise DsdError(f"sweep {sweep!r} given twice")
        out.append(sweep)
    return out


@dataclass
class Selection:
    """The compared results and the bookkeeping of what was left out.

    data: one row per used model (Store.results columns; `top1` = final-epoch top-1 error, %;
        `at_chance` True for failures counted at chance error).
    counts: per sweep, models, used (at_chance of them counted at chance error) and the number
        skipped for each reason.
    """

    sweeps: list[str]
    recipe: str
    dataset: str
    data: pd.DataFrame
    counts: pd.DataFrame
    synthetic: bool = False  # synthetic results included (and present)
    spaces: dict[str, str] = field(default_factory=dict)
    epochs: int | None = None  # of the recipe (None when not recorded)
    count_failures: bool = False
    chance: dict[str, float] = field(default_factory=dict)  # sweep → its chance error (%)
    subset: int | None = None  # training images of the recipe (--subset; None: all)
    test_subset: int | None = None  # test images of the recipe (--test-subset; None: all)

    def summary(self) -> str:
        """One line per sweep: 'name: N used; skipped M (failed 2, pending 5)', every line
        wrapped at 80 columns."""
        lines = wrap(f"results: recipe {self.recipe}, dataset {self.dataset}"
                     + epochs_text(self.epochs) + subsets_text(self.subset, self.test_subset)
                     + (" (includes SYNTHETIC results)" if self.synthetic else ""), "", "  ")
        for r in self.counts.to_dict("records"):
            parts = [f"{r[k]} {k}" for k in SKIP_REASONS if r[k]]
            skipped = sum(r[k] for k in SKIP_REASONS)
            chance = (f" ({r['at_chance']} failed/diverged/collapsed counted at chance error "
                      f"{self.chance.get(r['sweep'], float('nan')):.0f}%)"
                      if r["at_chance"] else "")
            lines += wrap(f"{r['sweep']}: {r['used']} of {r['models']} models used{chance}"
                          + (f"; skipped {skipped} ({', '.join(parts)})" if skipped else ""),
                          "  ", "    ")
        if not self.count_failures and self.counts[list(FAILURES)].to_numpy().sum():
            lines += wrap("(failed, diverged and collapsed models are left out; "
                          "--count-failures counts them at chance error)", "  ", "   ")
        return "\n".join(lines)

    def caption(self, sweeps: Iterable[str] | None = None, *,
                outside: dict[str, int] | None = None, outside_why: str = "") -> str:
        """The figures' caption: dataset, recipe, epochs, training/test subsets, models shown,
        and how many were left out (by reason) or counted at chance error; of `sweeps`
        (default: all). `outside`: sweep → models a normalized figure leaves out (weight 0),
        `outside_why` the reason ('outside the common flops range [10.8M, 12M]'): they are
        counted as left out, not as shown."""
        head = (f"{self.dataset}, recipe {self.recipe}" + epochs_text(self.epochs)
                + subsets_text(self.subset, self.test_subset))
        c = self.counts
        if sweeps is not None:
            c = c[c["sweep"].isin(list(sweeps))]
        dropped = sum(int(n) for s, n in (outside or {}).items() if s in set(c["sweep"]))
        parts = [f"{int(c['used'].sum()) - dropped} models"]
        if c["at_chance"].sum():
            chance = next(iter(self.chance.values()), float("nan"))
            parts.append(f"{int(c['at_chance'].sum())} failed/diverged/collapsed counted at "
                         f"chance error ({chance:.0f}%)")
        left = {k: int(c[k].sum()) for k in SKIP_REASONS if c[k].sum()}
        if dropped:
            left[outside_why or "outside the normalization's range"] = dropped
        if left:
            parts.append(f"{sum(left.values())} left out ("
                         + ", ".join(f"{n} {k}" for k, n in left.items()) + ")")
        else:
            parts.append("none left out")
        return f"{head}; " + "; ".join(parts)

    def chance_warning(self) -> str | None:
        """One sentence when a sweep's median error is near chance (`thin.chance_warning`)."""
        from .thin import chance_warning

        return chance_warning(self.data, self.test_subset) if not self.data.empty else None


def select(store, names: Iterable[str], *, recipe: str | None = None,
           dataset: str | None = None, synthetic: bool = False, min_models: int = 1,
           count_failures: bool = False) -> Selection:
    """Resolve names and pick the done results of one (recipe, dataset).

    Args:
        store: an open `dsd.store.Store`.
        names: sweep or space names.
        recipe, dataset: which results; required only when the sweeps hold finished results of
            several recipes/datasets (the error names them).
        synthetic: include results stored as synthetic (default: skip them).
        min_models: every sweep must keep at least this many models (0: a sweep may have
            none, e.g. for a report).
        count_failures: use failed, diverged and collapsed models at chance error
            (100·(1 − 1/classes), `at_chance` True) instead of leaving them out.
    """
    sweeps = resolve_sweeps(store, names)
    allres = store.results(sweeps, status=None, synthetic=True)
    if allres.empty:
        raise DsdError(f"no results yet for {', '.join(sweeps)} (train first: dsd train)")
    usable = allres["synthetic"].eq(False) | synthetic
    done = allres[(allres["status"] == "done") & usable]
    if recipe is not None:
        done = done[done["recipe"] == recipe]
    if dataset is not None:
        done = done[done["dataset"] == dataset]
    combos = (done.groupby(["recipe", "dataset"]).size().sort_values(ascending=False)
              if not done.empty else pd.Series(dtype=int))
    if len(combos) == 0:
        have = allres.groupby(["recipe", "dataset", "status"]).size()
        what = ", ".join(f"{r}/{d} {s}: {n}" for (r, d, s), n in have.items())
        extra = "" if synthetic or not allres["synthetic"].any() else \
            " (synthetic results are skipped unless --synthetic)"
        raise DsdError(f"no finished results of recipe {recipe or 'any'} on dataset "
                       f"{dataset or 'any'} for {', '.join(sweeps)}{extra}; have {what}")
    if len(combos) > 1:
        listing = ", ".join(f"--recipe {r} --dataset {d} ({n} done)" for (r, d), n in
                            combos.items())
        raise DsdError(f"finished results of several recipes/datasets: {listing}; choose one")
    (recipe, dataset), = combos.index
    mine = allres[(allres["recipe"] == recipe) & (allres["dataset"] == dataset)]
    hashes = mine["recipe_hash"].unique()
    if len(hashes) > 1:
        raise DsdError(f"recipe {recipe!r} has {len(hashes)} different definitions "
                       f"({', '.join(hashes)}) in these sweeps; their results are not comparable")
    real = mine["synthetic"].eq(False) | synthetic
    used = mine[(mine["status"] == "done") & real].copy()
    used = used[np.isfinite(used["top1"].astype(float))]
    used["at_chance"] = False
    chance = {s: chance_error(num_classes_of(m["spec"].iloc[0], dataset))
              for s, m in mine.groupby("sweep")}
    if count_failures:
        bad = mine[mine["status"].isin(FAILURES) & real].copy()
        if not bad.empty:
            classes = bad["spec"].map(lambda t: num_classes_of(t, dataset))
            bad["top1"] = [chance_error(k) for k in classes]
            bad["top5"] = [100.0 * (1.0 - min(5, k) / k) for k in classes]
            bad["at_chance"] = True
            used = pd.concat([used, bad])
    rank = {s: i for i, s in enumerate(sweeps)}  # the user's order, for legends and tables
    used = used.iloc[np.argsort(used["sweep"].map(rank).to_numpy(), kind="stable")]
    rows = []
    spaces = {}
    for sweep in sweeps:
        info = store.sweep(sweep)
        spaces[sweep] = info["space"]
        n_models = len(store.models(sweep))
        m = mine[mine["sweep"] == sweep]
        mine_used = used[used["sweep"] == sweep]
        row = {"sweep": sweep, "space": info["space"], "models": n_models,
               "used": len(mine_used), "at_chance": int(mine_used["at_chance"].sum())}
        for reason in SKIP_REASONS:
            row[reason] = 0
        left = m[(m["status"] != "done") & ~m.index.isin(mine_used.index)]
        for status, n in left["status"].value_counts().items():
            row[status] += int(n)
        row["synthetic"] = int(((m["status"] == "done") & m["synthetic"]).sum()) \
            if not synthetic else 0
        row["pending"] += n_models - len(m)  # never trained with this recipe
        rows.append(row)
        if row["used"] < min_models:
            raise DsdError(f"sweep {sweep!r} has {row['used']} finished {recipe}/{dataset} "
                           f"results; need at least {min_models}")
    counts = pd.DataFrame(rows, columns=["sweep", "space", "models", "used", "at_chance",
                                         *SKIP_REASONS])
    return Selection(sweeps, recipe, dataset, used.reset_index(drop=True), counts,
                     synthetic=bool(synthetic and used["synthetic"].any()), spaces=spaces,
                     epochs=_epochs(mine), count_failures=count_failures, chance=chance,
                     subset=_recipe_value(mine, "subset"), test_subset=test_size_of(mine))


def epochs_text(epochs: int | None) -> str:
    """', 10 epochs' / ', 1 epoch' / '' (for captions and summaries)."""
    return f", {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else ""


def subsets_text(subset: int | None, test_subset: int | None) -> str:
    """' (first 4,000 training and 1,000 test images: --subset/--test-subset)', or '' when the
    recipe uses whole datasets (for captions and summaries; the wording of `curves`)."""
    subsets = [f"{n:,} {what}" for n, what in ((subset, "training"), (test_subset, "test"))
               if n]
    return (" (first " + " and ".join(subsets) + " images: --subset/--test-subset)"
            if subsets else "")


def _recipe_value(rows: pd.DataFrame, key: str) -> int | None:
    """An integer field of the stored recipe JSON (None when not recorded or null)."""
    texts = rows["recipe_json"].dropna() if "recipe_json" in rows else []
    try:
        rec = texts.iloc[0] if len(texts) else None
        value = (json.loads(rec) if isinstance(rec, str) else rec)[key]
        return int(value) if value else None
    except (TypeError, KeyError, ValueError):
        return None


def _epochs(rows: pd.DataFrame) -> int | None:
    """The recipe's epochs, from the stored recipe JSON (None when not recorded)."""
    return _recipe_value(rows, "epochs")


# ---- parameters ---------------------------------------------------------------------------
#: name → (axis label, log base or None). Log axes where DDS plots them on log scales.
PARAMS: dict[str, tuple[str, int | None]] = {
    **{f"d{i}": (f"depth of stage {i}, $d_{i}$ (blocks)", None) for i in range(1, 5)},
    **{f"w{i}": (f"width of stage {i}, $w_{i}$ (channels)", 2) for i in range(1, 5)},
    **{f"b{i}": (f"bottleneck ratio of stage {i}, $b_{i}$", 2) for i in range(1, 5)},
    **{f"g{i}": (f"group width of stage {i}, $g_{i}$ (channels)", 2) for i in range(1, 5)},
    "b": ("bottleneck ratio $b$", 2),
    "g": ("group width $g$ (channels)", 2),
    "depth": ("total depth (blocks)", None),
    "max_width": ("maximum width (channels)", 2),
    "d": ("RegNet depth $d$ (blocks)", None),
    "w0": ("initial width $w_0$ (channels)", 2),
    "wa": ("slope $w_a$ (channels/block)", 2),
    "wm": ("width multiplier $w_m$", None),
    "flops": ("flops (multiply-adds)", 10),
    "params": ("parameters", 10),
    "acts": ("activations", 10),
    "e_fit": ("$e_{fit}$ (mean |log width ratio|)", None),
    "fit_w0": ("fitted $w_0$ (channels)", 2),
    "fit_wa": ("fitted $w_a$ (channels/block)", 2),
    "fit_wm": ("fitted $w_m$", None),
}


def _shared(row: dict, key: str) -> float:
    """A shared per-stage parameter: the sampled scalar, else the sampled or effective per-stage
    values when all stages agree, else NaN."""
    sampled = json.loads(row["sampled"]) if isinstance(row.get("sampled"), str) else {}
    if isinstance(sampled.get(key), (int, float)):
        return float(sampled[key])
    for source in (sampled, row):
        vals = [source.get(f"{key}{i}") for i in range(1, 5)]
        vals = [v for v in vals if v is not None and not (isinstance(v, float) and np.isnan(v))]
        if vals and len(set(vals)) == 1:
            return float(vals[0])
    return float("nan")


def param_values(data: pd.DataFrame, param: str) -> pd.Series:
    """Values of one parameter for every row (see PARAMS), or a DsdError saying why not."""
    if param not in PARAMS:
        raise DsdError(f"unknown parameter {param!r}; allowed: {', '.join(PARAMS)}")
    if param in ("b", "g"):
        values = pd.Series([_shared(r, param) for r in data.to_dict("records")],
                           index=data.index, dtype=float)
        for sweep, v in values.groupby(data["sweep"]):
            if v.isna().any():
                raise DsdError(f"{param} differs between stages in {int(v.isna().sum())} models "
                               f"of sweep {sweep!r}; use --param {param}1 … {param}4")
        return values
    if param not in data or data[param].isna().all():
        if param in ("d", "w0", "wa", "wm"):
            raise DsdError(f"{param} is a RegNet parameter; none of the selected sweeps is a "
                           f"RegNet sweep (fit AnyNet models with `dsd fit` and use "
                           f"--param fit_{param} or e_fit)" if param != "d" else
                           "d is a RegNet parameter; use depth for AnyNet sweeps")
        if param in ("e_fit", "fit_w0", "fit_wa", "fit_wm"):
            raise DsdError(f"no {param} stored; run `dsd fit SWEEP` first")
        raise DsdError(f"no values of {param} in the selected results")
    values = data[param].astype(float)
    for sweep, v in values.groupby(data["sweep"]):
        if v.isna().all():
            what = ("run `dsd fit " + sweep + "` first" if param in ("e_fit", "fit_w0", "fit_wa",
                                                                      "fit_wm")
                    else "it is not a parameter of that sweep's space")
            raise DsdError(f"no {param} for sweep {sweep!r}: {what}")
    return values


def default_params(data: pd.DataFrame) -> list[str]:
    """Parameters worth plotting that every selected sweep has (used by `report` and
    `analyze` without --param): RegNet d, w0, wa, wm (else depth), max width, shared b and g,
    flops, params, and e_fit once fitted."""
    out = []
    for p in ("d", "w0", "wa", "wm", "depth", "max_width", "b", "g", "flops", "params",
              "e_fit"):
        if p == "depth" and "d" in out:
            continue  # a RegNet's depth is d
        try:
            param_values(data, p)
        except DsdError:
            continue
        out.append(p)
    return out
