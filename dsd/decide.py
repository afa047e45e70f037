"""`dsd decide`: sample and train design spaces interleaved, and stop each pair of them as soon as
a sequential test decides it (issue 28). The statistics are `dsd.analysis.sequential`'s; this
module decides which models to train, which errors each look sees, and what the store records.

Flow. Each space is sampled once, `max_n` models, as `dsd sample` would (a sweep named
SPACE-DATASET-sSEED[-TAG]; an existing sweep with the same settings and at least `max_n` models
is reused: sampling is prefix-stable, so its first `max_n` models are the ones a new sample would
draw). Then, look by look: every space still in an undecided pair trains its models with index
< the look's size (`SequentialDesign.look_sizes()`, all spaces at once, through `dsd.train`),
and every undecided pair is evaluated by `sequential.decide` and its new look recorded. A pair
stops when it is decided, futile or at max n; a space stops training when none of its pairs is
undecided. A pair's design (method, α, max n, looks, futility and the model rule below) is
fixed by the first call that names it: a later call with another design is refused, so nobody
can look at the data and pick a design afterwards.

The model rule (what a look uses; `MODEL_RULE`), chosen so that the look cannot depend on the
errors it is about to test:
- A look of size n uses models 0..n−1 of each space, in model-index order: the sampler's order,
  random and fixed before training. It is evaluated only once every one of those models has a
  final result, so it never depends on which models happened to finish first (`dsd train`
  starts the longest first, and long models have lower errors).
- done: its final top-1 error. collapsed, diverged: chance error 100·(1 − 1/classes) (90 % on
  CIFAR-10): a model that did not learn under the recipe is an outcome of its space, and
  dropping it would favour the space that fails more (as `--count-failures`).
- failed (the training crashed: out of memory, a lost worker, a data error) is retried once;
  failed again, it is excluded: it leaves a hole at its index (NaN for `sequential.decide`), the
  look uses the models that remain, and the look records the excluded indices. Excluding it
  cannot bias the test when the crash is unrelated to the error the model would have reached;
  `dsd decide` says so and exits 3 when a look excluded a model.
Resuming after a kill needs no state besides the store: the looks are recomputed from the
stored results (each recorded look must be reproduced exactly, else it is an error), and the
training resumes from `dsd train`'s checkpoints.

No torch here: `dsd.train` is imported when the first model trains.
"""
from __future__ import annotations

import dataclasses
import fcntl
import itertools
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import DsdError

#: The model rule of the module docstring, stored with every design: a comparison recorded
#: under another rule is not continued under this one.
MODEL_RULE = ("index order; done: error; collapsed, diverged: chance error; failed: retried "
              "once, then a hole")
#: --pairs: consecutive spaces (A–B, B–C: a chain, as DDS compares its spaces) or every pair.
PAIRS = ("consecutive", "all")


# ---- sampling ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sampling:
    """How each space is sampled: `dsd sample`'s options (window from `flops` [0.9F, F] or
    `flops_range`, else the space's default for `dataset`; `samplers` convention), and `tag`, a
    suffix of the sweep names for a second study of the same spaces in one store."""

    dataset: str = "imagenet"
    seed: int = 0
    flops: str | None = None
    flops_range: tuple[str, str] | None = None
    samplers: str | None = None
    spaces_dir: Path | None = None
    tag: str | None = None
    max_draws: int | None = None


def sweep_plan(space: str, s: Sampling):
    """(sweep name, SpaceDef, Window) of one space under `s`, as `dsd sample` names and
    samples it."""
    from .space import Window, load_space, parse_count
    from .spec import layout

    layout(s.dataset)   # an unknown dataset first
    if s.flops and s.flops_range:
        raise DsdError("give either --flops or --flops-range, not both")
    space_def = load_space(space, s.spaces_dir)
    if s.samplers is not None:
        space_def = space_def.with_samplers(s.samplers)
    window = (Window.around(s.flops) if s.flops else
              Window(flops=tuple(parse_count(x) for x in s.flops_range)) if s.flops_range else
              space_def.window(s.dataset))
    name = f"{space_def.name}-{s.dataset}-s{s.seed}" + (f"-{s.tag}" if s.tag else "")
    return name, space_def, window


def plan_sweeps(spaces: list[str], s: Sampling, n: int) -> list[tuple]:
    """`sweep_plan` of every space (each space file read, every option checked) before anything
    is written; a space given twice is an error."""
    from .sample import check_sample_args
    from .store import check_sweep_name

    check_sample_args(n, s.seed, s.max_draws, flag="--")
    plans = [sweep_plan(space, s) for space in spaces]
    names = [p[0] for p in plans]
    for name, space_def, _ in plans:
        check_sweep_name(name)
        if names.count(name) > 1:
            raise DsdError(f"space {space_def.name!r} given twice")
    return plans


def ensure_sweeps(store, plans: list[tuple], s: Sampling, n: int, *, progress=None,
                  say: Callable[[str], None] = print) -> list[str]:
    """The sweep of each planned space (`plan_sweeps`), sampled (`n` models, one transaction
    each) or reused; an existing sweep of that name with other settings, or fewer than `n`
    models, is an error."""
    from .sample import sample
    from .samplers import LEGACY
    from .space import Window

    for name, space_def, window in plans:
        if store.has_sweep(name):
            old = store.sweep(name)
            old_conv = old["space_def"].get("samplers", LEGACY)
            same = (old.get("source", "dsd") == "dsd" and (
                old["space"], old["dataset"], old["seed"], old["window"], old_conv) == (
                space_def.name, s.dataset, s.seed, window.to_dict(), space_def.samplers))
            if not same:
                raise DsdError(f"sweep {name!r} exists in {store.path} with other settings "
                               f"(space {old['space']}, dataset {old['dataset']}, seed "
                               f"{old['seed']}, window {Window.from_dict(old['window'])}, "
                               f"samplers {old_conv}); use --tag to name new sweeps")
            if old["n"] < n:
                raise DsdError(f"sweep {name!r} has {old['n']} models, fewer than --max-n {n};"
                               f" use --tag to sample new sweeps")
            say(f"sweep {name}: reused ({old['n']} models; looks use the first {n})")
            continue
        result = sample(space_def, n, dataset=s.dataset, window=window, seed=s.seed,
                        max_draws=s.max_draws, progress=progress)
        store.add_sweep(name, space=space_def.name, space_def=space_def.to_dict(),
                        dataset=s.dataset, window=window.to_dict(), seed=s.seed,
                        draws=result.draws, models=result.models)
        say(f"sweep {name}: {n} models sampled in {result.window} (samplers "
            f"{space_def.samplers})")
    return [p[0] for p in plans]


def pair_list(sweeps: list[str], mode: str = "consecutive") -> list[tuple[str, str]]:
    """The pairs to decide: consecutive (A–B, B–C, …) or all (every pair, in order)."""
    if mode not in PAIRS:
        raise DsdError(f"--pairs {mode!r}: allowed: {', '.join(PAIRS)}")
    if len(sweeps) < 2:
        raise DsdError(f"dsd decide compares two or more spaces, got {len(sweeps)}")
    twice = next((s for s in sweeps if sweeps.count(s) > 1), None)
    if twice is not None:
        raise DsdError(f"{twice!r} given twice")
    if mode == "consecutive":
        return list(zip(sweeps, sweeps[1:]))
    return list(itertools.combinations(sweeps, 2))


# ---- the model rule ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Slots:
    """Models 0..n−1 of one sweep under the model rule. `errors[i]`: model i's error, chance
    error (collapsed, diverged) or NaN (excluded, or not final yet); `unfinished`: no final
    result yet; `to_retry`: failed, not retried yet."""

    errors: tuple[float, ...]
    at_chance: tuple[int, ...]
    excluded: tuple[int, ...]
    unfinished: tuple[int, ...]
    to_retry: tuple[int, ...]

    @property
    def ready(self) -> bool:
        """Every model has its final place in the look (an error or a hole)."""
        return not self.unfinished and not self.to_retry

    def record(self) -> dict:
        """What a look stores of this side: the models used, at chance and excluded."""
        used = [i for i, e in enumerate(self.errors) if not math.isnan(e)]
        return {"used": used, "at_chance": list(self.at_chance), "excluded": list(self.excluded)}


def slots(outcomes: dict[int, dict], n: int, chance: float) -> Slots:
    """The first `n` models of a sweep from its results (`Store.outcomes`) under the rule (a
    `done` result without a finite error, which `dsd train` never writes, counts as diverged)."""
    errors, at_chance, excluded, unfinished, to_retry = [], [], [], [], []
    for i in range(n):
        o = outcomes.get(i) or {"status": "pending"}
        status = o["status"]
        top1 = o.get("top1")
        if status == "done" and top1 is not None and math.isfinite(top1):
            errors.append(float(top1))
        elif status in ("done", "collapsed", "diverged"):
            errors.append(chance)
            at_chance.append(i)
        elif status == "failed" and o.get("retried"):
            errors.append(math.nan)
            excluded.append(i)
        else:
            errors.append(math.nan)
            (to_retry if status == "failed" else unfinished).append(i)
    return Slots(tuple(errors), tuple(at_chance), tuple(excluded), tuple(unfinished),
                 tuple(to_retry))


# ---- pairs and their records ------------------------------------------------------------------
def design_record(design) -> dict:
    """A design as stored with its pair: every field of the SequentialDesign and the rule."""
    return {**dataclasses.asdict(design), "rule": MODEL_RULE}


def design_text(d: dict) -> str:
    """'group, alpha 0.05, max n 100, 10 looks, futility off' of a stored design."""
    return (f"{d['method']}, alpha {d['alpha']:g}, max n {d['max_n']}, {d['looks']} looks, "
            f"futility {'on' if d['futility'] else 'off'}")


@dataclass
class Pair:
    """One comparison being decided: its record id, sweeps (as first recorded), looks so far."""

    id: int
    a: str
    b: str
    looks: list[dict] = field(default_factory=list)

    @property
    def decision(self) -> str:
        return self.looks[-1]["decision"] if self.looks else "continue"

    @property
    def open(self) -> bool:
        return self.decision == "continue"

    def excluded(self) -> int:
        """Models excluded (failed twice) in the last look, both sides."""
        if not self.looks:
            return 0
        m = self.looks[-1]["models"]
        return len(m["a"]["excluded"]) + len(m["b"]["excluded"])


def open_pair(store, a: str, b: str, *, dataset: str, recipe: str, recipe_hash: str,
              design) -> Pair:
    """The recorded comparison of a and b (created with `design` when new); a recorded one
    with another design is refused in one line naming what differs."""
    rec = store.decision(a, b, dataset=dataset, recipe_hash=recipe_hash)
    want = design_record(design)
    if rec is None:
        pid = store.add_decision(a, b, dataset=dataset, recipe=recipe, recipe_hash=recipe_hash,
                                 design=want)
        return Pair(pid, a, b)
    have = rec["design"]
    if have != want:
        diff = ", ".join(f"{k} {want.get(k)!r} (recorded: {have.get(k)!r})" for k in
                         sorted(set(want) | set(have)) if want.get(k) != have.get(k))
        raise DsdError(f"{rec['sweep_a']} vs {rec['sweep_b']}: this call asks for {diff}; a "
                       f"comparison keeps the design of its first call (one chosen after seeing "
                       f"looks breaks its alpha): repeat it, or --tag new sweeps")
    return Pair(rec["id"], rec["sweep_a"], rec["sweep_b"], store.decision_looks(rec["id"]))


def _same(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def evaluate(pair: Pair, sa: Slots, sb: Slots, design) -> list[dict]:
    """The looks `sequential.decide` gives on these slots that `pair` has not recorded, as
    store rows; every recorded look must come out the same (else DsdError: the results it
    was computed from changed)."""
    from .analysis.sequential import decide

    rows = decide(list(sa.errors), list(sb.errors), design)
    for old, new in zip(pair.looks, rows):
        keep = (old["look"], old["n_a"], old["n_b"], old["decision"])
        if keep != (new.look, new.n_a, new.n_b, new.decision) or not all(
                _same(old[k], getattr(new, k)) for k in ("statistic", "threshold",
                                                        "alpha_spent", "p_prob")):
            raise DsdError(f"{pair.a} vs {pair.b}: look {old['look']} as recorded (n {old['n_a']}"
                           f"/{old['n_b']}, {old['decision']}, statistic {old['statistic']:.4g})"
                           f" no longer follows from the stored results (now n {new.n_a}/"
                           f"{new.n_b}, {new.decision}, statistic {new.statistic:.4g}): results "
                           f"of its models changed since; use another --store or --tag")
    if len(rows) < len(pair.looks):
        raise DsdError(f"{pair.a} vs {pair.b}: {len(pair.looks)} looks are recorded but the "
                       f"stored results reach {len(rows)}")
    sizes = design.look_sizes()
    return [{**r._asdict(), "models": {side: {k: [i for i in v if i < sizes[r.look - 1]]
                                              for k, v in sl.record().items()}
                                       for side, sl in (("a", sa), ("b", sb))}}
            for r in rows[len(pair.looks):]]


# ---- the driver -------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a `run` ended with: its pairs (with every recorded look), why it stopped early
    (None: every pair ended; "time": the deadline; "interrupted": Ctrl-C or SIGTERM, `signum`),
    the results its training produced by status, and the failed models it retried."""

    pairs: list[Pair]
    stopped: str | None = None
    signum: int | None = None
    trained: dict[str, int] = field(default_factory=dict)
    retried: int = 0

    @property
    def ended(self) -> bool:
        """Every pair is decided, futile or at max n."""
        return all(not p.open for p in self.pairs)

    @property
    def excluded(self) -> int:
        """Models excluded (failed twice) from the pairs' last looks."""
        return sum(p.excluded() for p in self.pairs)


@contextmanager
def decide_lock(store) -> Iterator[None]:
    """One `dsd decide` per store: an exclusive flock on `<store>.ckpt/decide.lock` (the store's
    real file, as `dsd train`'s lock), released by the OS even on SIGKILL."""
    if store.path == ":memory:":
        yield
        return
    folder = Path(f"{os.path.realpath(store.path)}.ckpt")
    folder.mkdir(parents=True, exist_ok=True)
    f = open(folder / "decide.lock", "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise DsdError(f"another `dsd decide` is running on this store ({folder}/decide.lock "
                       "is held)") from None
    try:
        yield
    finally:
        f.close()


def _train(store, options, console):
    """`dsd.train.train` (imports torch)."""
    from .train import train

    return train(store, options, console=console)


def run(store, sweeps: list[str], design, *, pairs: str = "consecutive", train=None,
        deadline: float | None = None, trainer=None, console=None,
        on_looks: Callable[[list[tuple[Pair, dict]]], None] | None = None,
        say: Callable[[str], None] = print) -> Outcome:
    """Decide the pairs of `sweeps` (`pair_list(sweeps, pairs)`) under `design` (a
    `sequential.SequentialDesign`), training look by look (module docstring).

    Args:
        store: an open Store holding the sweeps (each of at least design.max_n models, all of
            one dataset).
        train: a `dsd.train.TrainOptions` of the training settings (recipe, overrides, GPUs,
            executor, …); its sweeps, indices, dataset and max_time are set here per look.
        deadline: time.time() at which to stop cleanly (models back to pending, as
            `dsd train --max-time`); the outcome says "time".
        trainer: `trainer(store, options, console) -> dsd.train.runner.Summary`; default
            `dsd.train.train`.
        on_looks: called after each round of looks with the (pair, look row) recorded.
    """
    from .spec import chance_error, layout
    from .train.options import TrainOptions
    from .train.recipes import get_recipe

    design.validate()
    plan = pair_list(sweeps, pairs)
    base = train or TrainOptions()
    datasets = {s: store.sweep(s)["dataset"] for s in sweeps}
    dataset = datasets[sweeps[0]]
    for s, ds in datasets.items():
        if ds != dataset:
            raise DsdError(f"sweeps {sweeps[0]} ({dataset}) and {s} ({ds}) have different "
                           "datasets; a comparison needs one")
        if store.sweep(s)["n"] < design.max_n:
            raise DsdError(f"sweep {s!r} has {store.sweep(s)['n']} models, fewer than max n "
                           f"{design.max_n}")
    recipe = get_recipe(base.recipe, dataset).override(**(base.overrides or {}))
    base = replace(base, dataset=None, retry_failed=False)   # each sweep's own dataset
    chance = chance_error(layout(dataset).num_classes)
    sizes = design.look_sizes()
    key = {"dataset": dataset, "recipe_hash": recipe.hash}
    trainer = trainer or _train

    def slots_of(names: Iterable[str], n_of) -> dict[str, Slots]:
        return {s: slots(store.outcomes(s, **key), n_of(s), chance) for s in names}

    with decide_lock(store):
        out = Outcome([open_pair(store, a, b, recipe=recipe.name, design=design, **key)
                       for a, b in plan])
        for p in out.pairs:   # recorded looks must follow from the stored results
            if p.looks:
                n = sizes[p.looks[-1]["look"] - 1]
                sl = slots_of((p.a, p.b), lambda s: n)
                missing = {s: x.unfinished + x.to_retry for s, x in sl.items() if not x.ready}
                if missing:
                    raise DsdError(f"{p.a} vs {p.b}: look {p.looks[-1]['look']} is recorded, but "
                                   + "; ".join(f"models {list(v)} of {s}" for s, v in
                                               missing.items())
                                   + " have no final result now: results changed since")
                evaluate(p, sl[p.a], sl[p.b], design)
        while live := [p for p in out.pairs if p.open]:
            need: dict[str, int] = {}
            for p in live:
                for s in (p.a, p.b):
                    need[s] = max(need.get(s, 0), sizes[len(p.looks)])
            sl = slots_of(need, need.get)
            for s, x in sl.items():
                if x.to_retry:
                    back = store.retry_failed_once(s, indices=x.to_retry, **key)
                    out.retried += len(back)
                    say(f"{s}: failed model(s) {', '.join(map(str, back))} trained once more "
                        "(a second failure excludes them)")
            todo = {s: n for s, n in need.items() if not sl[s].ready}
            if todo:
                if _train_round(store, todo, base, deadline, trainer, console, out):
                    return out
                for s, x in slots_of(todo, todo.get).items():
                    if x.unfinished:
                        raise DsdError(f"{s}: models {list(x.unfinished)} have no final result "
                                       "after training (messages above)")
                continue
            recorded = []
            for p in live:
                n = sizes[len(p.looks)]
                sl = slots_of((p.a, p.b), lambda s: n)
                new = evaluate(p, sl[p.a], sl[p.b], design)
                store.add_looks(p.id, new)
                p.looks += new
                recorded += [(p, row) for row in new]
            if on_looks:
                on_looks(recorded)
    return out


def _train_round(store, todo: dict[str, int], base, deadline, trainer, console,
                 out: Outcome) -> bool:
    """Train models 0..n−1 of each sweep in `todo` (one `dsd train` call per distinct n, all
    its sweeps at once); True when the training stopped early (time, interrupt)."""
    groups: dict[int, list[str]] = {}
    for s, n in todo.items():
        groups.setdefault(n, []).append(s)
    for n, group in sorted(groups.items()):
        left = None if deadline is None else deadline - time.time()
        if left is not None and left <= 0:
            out.stopped = "time"
            return True
        summary = trainer(store, replace(base, sweeps=tuple(group), indices=tuple(range(n)),
                                         max_time=left), console)
        for k, v in summary.counts.items():
            out.trained[k] = out.trained.get(k, 0) + v
        if summary.stopped:
            out.stopped, out.signum = summary.stopped, summary.signum
            return True
    return False
