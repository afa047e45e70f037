"""Sample n models of a design space inside a complexity window (DDS §3.2).

Candidates are drawn from the space, their complexity is counted analytically, and those inside
the window (the paper: 360MF–400MF) are kept, skipping duplicates, until n are kept. What a
duplicate is, is the `dedup` option: "network" (dsd's spaces) the same `spec.id`, i.e. equal
after the compatibility adjustment; "params" (pycls sweep configs, `dsd.pycls_config`) the same
drawn parameter values, as pycls's sweep_setup compares its parameter strings, so draws that
build one network are all kept. The search is bounded: it stops after
`max_draws` candidates, or after 50,000 that kept nothing, with an error that says how far it got.

Randomness is explicit and reproducible: the generator is seeded from (seed, crc32(space name))
and consumed in fixed batches of 1,024 candidates, so the same (space, seed, dataset, window)
always yields the same models in the same order, and the first k models of a run with n > k are
exactly the models of a run with n = k.

Speed: candidate flops are first counted by `dsd.complexity.flops` (plain integer arithmetic,
pinned equal to `dsd.complexity.complexity` by the tests) before a spec is built and checked
(`SpaceDef.draw_batch(flops_range=…)`); only candidates inside the flops range get the full
count. RegNet draws with the wrong stage count are mostly dropped before any spec is built.

Differences from pycls (`sweep/samplers.py`): no global seeding, duplicate networks are dropped
(unless dedup="params"), and the search is bounded instead of looping until n are found.
"""
from __future__ import annotations

import gc
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .complexity import complexity
from .errors import DsdError
from .spec import ModelSpec, layout
from .space import OUTSIDE, SpaceDef, Window, load_space, parse_count  # noqa: F401

#: Candidates drawn per batch (vectorized raw draws; part of the definition of the stream).
BATCH = 1024
#: Give up early when the first this-many candidates kept nothing.
EARLY_STOP_DRAWS = 50_000
#: `sample`'s duplicate rules: the same network (spec.id) or the same drawn parameters (pycls).
DEDUP = ("network", "params")


@dataclass(frozen=True)
class SampledModel:
    """One kept model: its position in the sample, spec, raw drawn parameters, complexity."""

    index: int
    spec: ModelSpec
    params: dict
    flops: int
    params_count: int
    acts: int


@dataclass(frozen=True)
class Sampled:
    """The result of `sample`: kept models in order and how many candidates it took."""

    space: str
    dataset: str
    window: Window
    seed: int
    models: list[SampledModel]
    draws: int
    rejected: dict[str, int] = field(default_factory=dict)  # reason → count

    @property
    def acceptance(self) -> float:
        """Kept / drawn candidates."""
        return len(self.models) / self.draws if self.draws else 0.0


def default_max_draws(n: int) -> int:
    return 2000 * n + 100_000


def space_rng(space_name: str, seed: int) -> np.random.Generator:
    """The generator of a (space, seed) pair: SeedSequence([seed, crc32(name)])."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(space_name.encode())]))


def check_sample_args(n, seed, max_draws=None, flag: str = "") -> None:
    """The integer arguments of `sample` (n >= 1, seed >= 0, max_draws >= 1 or None); `flag`
    "--" names them as the CLI options."""
    for key, value, low in (("n", n, 1), ("seed", seed, 0), ("max_draws", max_draws, 1)):
        if value is None and key == "max_draws":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            name = flag + key.replace("_", "-") if flag else key
            raise DsdError(f"{name} must be an integer >= {low}, got {value!r}")


def sample(space: SpaceDef | str, n: int, *, dataset: str = "imagenet",
           window: Window | str | None = None, seed: int = 0,
           max_draws: int | None = None, progress=None, dedup: str = "network") -> Sampled:
    """Draw candidates of `space` until `n` models, distinct by `dedup`, lie in `window`.

    Args:
        space: a SpaceDef, or a name/path for `load_space`.
        n: number of models to keep (>= 1).
        dataset: the dataset whose layout the specs get ("imagenet", "cifar10", or one
            registered in `dsd.datasets`).
        window: a Window, a string for `Window.parse` ("400MF", "360MF-400MF"), or None for
            the space's default window for `dataset`.
        seed: non-negative integer; with the space name it fixes the random stream.
        max_draws: candidate budget; default 2000·n + 100,000.
        progress: optional callback(kept, draws), called after each batch of candidates.
        dedup: "network" drops a candidate whose spec equals a kept one; "params" (pycls's
            sweep_setup) only one whose drawn parameters equal a kept one's.

    Returns:
        Sampled, with `models` in draw order (index 0..n-1).

    Raises:
        DsdError: bad arguments, no default window, or fewer than n models found within the
            budget (or none in the first 50,000 draws).
    """
    check_sample_args(n, seed, max_draws)
    layout(dataset)   # an unknown dataset (or one without a layout) first, naming the known
    if dedup not in DEDUP:
        raise DsdError(f"dedup must be one of {', '.join(DEDUP)}, got {dedup!r}")
    if isinstance(space, str):
        space = load_space(space)
    if window is None:
        window = space.window(dataset)
    elif isinstance(window, str):
        window = Window.parse(window)
    max_draws = default_max_draws(n) if max_draws is None else max_draws

    with _no_cyclic_gc():
        return _sample(space, n, dataset, window, seed, max_draws, progress, dedup)


@contextmanager
def _no_cyclic_gc():
    """Pause Python's cyclic garbage collector while sampling. The kept models are many small
    acyclic objects (freed by reference counting anyway), and each full collection walks all
    of them, so the time grew quadratically with n (AnyNetXC, 50,000 models, 2.4M candidates:
    91 s of CPU with 245 full collections, 51 s without; 2-core machine, BENCHMARKS.md)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _sample(space: SpaceDef, n: int, dataset: str, window: Window, seed: int, max_draws: int,
            progress, dedup: str) -> Sampled:
    rng = space_rng(space.name, seed)
    f_lo, f_hi = window.flops if window.flops is not None else (0, float("inf"))
    kept: list[SampledModel] = []
    seen: set[str] = set()
    rejected = {"stages": 0, "window": 0, "duplicate": 0}
    draws = 0
    while len(kept) < n:
        # Fixed-size batches keep the random stream independent of n and max_draws.
        for cand in space.draw_batch(rng, BATCH, dataset, flops_range=(f_lo, f_hi)):
            if draws >= max_draws or (draws >= EARLY_STOP_DRAWS and not kept):
                early = ("" if draws >= max_draws else
                         f" (none in the first {EARLY_STOP_DRAWS:,}; stopped early)")
                raise DsdError(
                    f"found {len(kept)} of {n} models in the window [{window}] of space "
                    f"{space.name!r} ({dataset}) after {draws} draws (acceptance "
                    f"{100 * len(kept) / max(draws, 1):.3g}%){early}; widen the window or "
                    f"raise --max-draws")
            draws += 1
            if cand is None:
                rejected["stages"] += 1
                continue
            if cand is OUTSIDE:  # counted by draw_batch, not built: most candidates
                rejected["window"] += 1
                continue
            spec, raw = cand
            cx = complexity(spec)
            if not window.contains(cx):
                rejected["window"] += 1
                continue
            sid = spec.id if dedup == "network" else repr(tuple(raw.items()))
            if sid in seen:
                rejected["duplicate"] += 1
                continue
            seen.add(sid)
            kept.append(SampledModel(len(kept), spec, raw, cx["flops"], cx["params"],
                                     cx["acts"]))
            if len(kept) == n:
                break
        if progress is not None:
            progress(len(kept), draws)
    return Sampled(space.name, dataset, window, seed, kept, draws, rejected)
