"""The coordinator of `dsd train`: plans jobs, runs workers, and is the only writer of the store.

Every pending model of the chosen sweeps becomes a job under (dataset, recipe). On GPUs, `per_gpu`
models train at once on each visible GPU, spread over `procs_per_gpu` worker processes that each
interleave their models on CUDA streams, under a private MPS daemon where one can be started (so
the processes' kernels overlap); on CPU one worker runs inline. A model is marked running
when it is handed out, its epochs are recorded as they arrive, and its checkpoint
(`<store>.ckpt/<result_id>.pt`) is deleted once its final status is written. A lock file keeps a
second trainer off the same store, which makes resetting stale `running` rows at start safe.
"""
from __future__ import annotations

import fcntl
import os
import hashlib
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..datasets import get_dataset, known_datasets
from ..errors import DsdError
from ..store import Store
from .engine import Job
from .options import TrainOptions
from .imagenet import LOADERS
from .mps import mps as mps_context
from .progress import TrainProgress
from .recipes import Recipe, get_recipe

DEFAULT_PER_GPU = 8        # models at once per GPU, measured on one H100 (BENCHMARKS.md)
DEFAULT_PROCS_PER_GPU = 4  # worker processes per GPU; each interleaves per_gpu/procs models


def model_seed(sweep_seed: int, index: int) -> int:
    """Deterministic training seed of a model from (sweep seed, model index)."""
    return int(hashlib.sha1(f"{sweep_seed}:{index}".encode()).hexdigest()[:8], 16) % (2**31)


@dataclass
class Plan:
    """The jobs of one `dsd train` call and the recipe each (sweep, dataset) trains under."""

    jobs: list[Job]
    recipes: dict[str, tuple[str, Recipe]]   # sweep → (dataset, recipe)
    done_epochs: dict[int, int] = field(default_factory=dict)   # model_id → epochs in store


def resolve(store: Store, sweeps, *, dataset, recipe, overrides) -> dict[str, tuple[str, Recipe]]:
    """(dataset, recipe) per sweep: the sweep's own dataset, or one without a layout
    (synthetic) that trains any sweep's models; unknown names are errors."""
    if dataset is not None:
        get_dataset(dataset)   # an unknown --dataset first, whatever the store holds
    # imported populations are trained already: only when named, and only if dsd can build them
    names = ([n for n in store.sweep_names() if store.sweep(n).get("source", "dsd") == "dsd"]
             if not sweeps else list(sweeps))
    if not names:
        raise DsdError(f"no sweeps to train in {store.path}; create one with `dsd sample`")
    out = {}
    for name in names:
        s = store.sweep(name)
        if s.get("source", "dsd") != "dsd" and (k := store.opaque_models(name)):
            raise DsdError(f"sweep {name!r} was imported from {s['source']} and {k} of its "
                           f"models are opaque (NAS cells, or a count that disagrees with the "
                           f"file): dsd cannot build or train them; they are for analysis")
        ds = dataset or s["dataset"]
        if ds != s["dataset"] and get_dataset(ds).layout is not None:
            free = [n for n in known_datasets() if get_dataset(n).layout is None]
            raise DsdError(f"sweep {name!r} was sampled for {s['dataset']}; its models cannot "
                           f"train on {ds} (use --dataset {' or '.join([s['dataset'], *free])})")
        r = get_recipe(recipe, s["dataset"]).override(**overrides)
        out[name] = (ds, r)
    return out


def check_recipes(recipes: dict[str, tuple[str, Recipe]]) -> None:
    """Settings that would make every model fail are one error before anything is written:
    a batch larger than the training images (`--subset`, or a dataset whose files always hold
    the same number of images)."""
    for name, (ds, r) in recipes.items():
        d = get_dataset(ds)
        sizes = [x for x in (r.subset, d.fixed_size and d.train_images) if x]
        if d.synthetic or not sizes or r.batch_size <= min(sizes):
            continue
        given = f" (--subset {r.subset})" if r.subset == min(sizes) else ""
        raise DsdError(f"sweep {name!r}: batch size {r.batch_size} exceeds the {min(sizes):,} "
                       f"training images of {ds}{given}; every model would fail: use "
                       f"--subset >= {r.batch_size} or --batch-size <= {min(sizes)}")


def check_indices(store: Store, names, indices) -> None:
    """`--index` values must name models of every chosen sweep."""
    for name in names:
        n = store.sweep(name)["n"]
        bad = [i for i in indices if not 0 <= i < n]
        if bad:
            raise DsdError(f"--index {bad[0]}: sweep {name!r} has models 0..{n - 1}")


def check_gpus(gpus, count: int) -> None:
    """Each --gpus index is one of the `count` devices torch sees, given once."""
    if not gpus:
        return
    if count == 0:
        raise DsdError(f"--gpus {','.join(map(str, gpus))} given, but torch sees no CUDA device")
    for g in gpus:
        if not 0 <= g < count:
            raise DsdError(f"--gpus: invalid GPU index {g}; torch sees {count} GPU"
                           f"{'s' * (count != 1)} (indices 0..{count - 1})")
    if len(set(gpus)) != len(gpus):
        raise DsdError(f"--gpus {','.join(map(str, gpus))}: each GPU may be given once")


def plan(store: Store, recipes: dict[str, tuple[str, Recipe]], ckpt_dir: Path,
         eager: bool = False, kernels: tuple = (), loader: str = "auto",
         indices=None) -> Plan:
    jobs, done = [], {}
    for name, (ds, r) in recipes.items():
        for row in store.training_queue([name], dataset=ds, recipe_json=r.to_dict()):
            if indices is not None and row["index"] not in indices:
                continue
            jobs.append(Job(result_id=row["result_id"] or -1, sweep=name, index=row["index"],
                            spec_json=row["spec"], flops=row["flops"],
                            seed=model_seed(row["sweep_seed"], row["index"]), dataset=ds,
                            recipe=r.to_dict(), ckpt="", eager=eager, kernels=kernels,
                            loader=loader, meta={"model_id": row["model_id"]}))
            done[row["model_id"]] = row["epochs_done"] or 0
    return Plan(jobs, recipes, done)


def check_data(datasets: set[str], data_dir) -> None:
    """Fail early, in the coordinator, when a dataset is missing or damaged (one clear message
    naming the file; each dataset's registry entry says how it is found and checked)."""
    for ds in sorted(datasets):
        get_dataset(ds).verify(data_dir)


class TrainLock:
    """An exclusive flock on `<ckpt_dir>/lock`; released by the OS even on SIGKILL."""

    def __init__(self, ckpt_dir: Path):
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.f = open(ckpt_dir / "lock", "w")
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.f.close()
            raise DsdError(f"another `dsd train` is using this store ({ckpt_dir}/lock is held)")

    def release(self) -> None:
        self.f.close()


def clean_checkpoints(store: Store, ckpt_dir: Path) -> None:
    """Delete temp files and checkpoints of results that are no longer pending or running."""
    for tmp in ckpt_dir.glob("*.pt.tmp*"):
        tmp.unlink(missing_ok=True)
    files = {int(p.stem): p for p in ckpt_dir.glob("*.pt") if p.stem.isdigit()}
    statuses = store.result_statuses(files)
    for rid, p in files.items():
        if statuses.get(rid) not in ("pending", "running"):
            p.unlink(missing_ok=True)


@dataclass
class Summary:
    counts: dict[str, int]
    stopped: str | None     # None, "interrupted" (SIGINT or SIGTERM) or "time"
    pending: int
    seconds: float
    mps: bool = False       # the GPU workers ran under a private MPS daemon
    workers_lost: int = 0   # worker processes given up because they died as they started
    signum: int | None = None  # the signal that interrupted the run
    threads: int | None = None  # torch threads of a CPU run (None on GPUs)
    log: str | None = None      # the run's log file (None when it trained nothing)


def open_log(store: Store):
    """The run's log file, `<store>.logs/train-<UTC time>-<pid>.log` beside the store's real
    file (None for an in-memory store)."""
    if store.path == ":memory:":
        return None
    folder = Path(f"{os.path.realpath(store.path)}.logs")
    folder.mkdir(parents=True, exist_ok=True)
    name = f"train-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.log"
    return open(folder / name, "a", encoding="utf-8")


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota
    (containers, Slurm's cgroup plugin)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, n or 1)


def cpu_threads(requested: int | None = None) -> tuple[int, str]:
    """Threads for training on the CPU and why: `requested` (--threads), else the available
    cores less those other processes keep busy (the 1-minute load average, rounded). torch's
    default of one thread per core is ruinous on a shared machine: its threads wait for each
    other at every operator, so one busy neighbour slows every step (issue 30 measured one
    model at 162 s with default threads beside two busy loops on 2 cores, 38 s with one)."""
    if requested is not None:
        if requested < 1:
            raise DsdError(f"--threads must be >= 1, got {requested}")
        return requested, "--threads"
    cores = available_cores()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, round(cores - load))), f"{cores} cores, load {load:.1f}"


def train(store: Store, options: TrainOptions | None = None, *, console=None,
          **fields) -> Summary:
    """Train every pending model under `options` (a `TrainOptions`, or its fields as keyword
    arguments): the chosen sweeps (all when None; only the models numbered `indices` when
    given), in `order` (longest: estimated time left first; store: sweep, then index); see the
    module docstring. Bad settings raise DsdError before the store is touched."""
    o = replace(options or TrainOptions(), **fields)
    import torch

    from .cost import check_order, order_jobs

    t_start = o.clock_start or time.time()
    check_order(o.order)
    from .kernels import check_kernels, default_kernels
    from .ray_exec import check_executor

    kernels = default_kernels() if o.kernels is None else check_kernels(o.kernels)
    if o.loader not in LOADERS:
        raise DsdError(f"--loader must be one of {', '.join(LOADERS)}, got {o.loader!r}")
    ray_opts = check_executor(o.executor, gpus=o.gpus, per_gpu=o.per_gpu or DEFAULT_PER_GPU,
                              **(o.ray_opts or {}))  # address, max_retries, cpus_per_task
    recipes = resolve(store, o.sweeps, dataset=o.dataset, recipe=o.recipe,
                      overrides=o.overrides or {})
    check_recipes(recipes)
    if o.indices is not None:
        check_indices(store, recipes, o.indices)
    check_data({ds for ds, _ in recipes.values()}, o.data_dir)
    check_gpus(o.gpus, torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if o.per_gpu is not None and o.per_gpu < 1:
        raise DsdError(f"--per-gpu must be >= 1, got {o.per_gpu}")
    threads, why = cpu_threads(o.threads)   # used when the models train on this CPU
    if o.procs_per_gpu is not None and o.procs_per_gpu < 1:
        raise DsdError(f"--procs-per-gpu must be >= 1, got {o.procs_per_gpu}")
    local_gpu = o.executor == "local" and torch.cuda.is_available()
    if o.mps and not local_gpu:
        raise DsdError("--mps needs the local executor and a CUDA GPU")
    # beside the store's real file, so two runs through different spellings of it (a symlink,
    # a relative path) take the same lock and share checkpoints
    ckpt_dir = Path(tempfile.mkdtemp() if store.path == ":memory:" else
                    f"{os.path.realpath(store.path)}.ckpt")
    on_cpu, log = False, None
    lock = TrainLock(ckpt_dir)
    try:
        store.reset_running()
        if o.retry_failed:
            for name, (ds, r) in recipes.items():
                store.retry_failed([name], dataset=ds, recipe_json=r.to_dict(),
                                   indices=o.indices)
        clean_checkpoints(store, ckpt_dir)
        p = plan(store, recipes, ckpt_dir, o.eager, kernels, o.loader, o.indices)
        p.jobs = order_jobs(p.jobs, o.order, p.done_epochs)
        if torch.cuda.is_available():
            ids = o.gpus if o.gpus else list(range(torch.cuda.device_count()))
            k = o.per_gpu or DEFAULT_PER_GPU
            procs = min(k, o.procs_per_gpu or DEFAULT_PROCS_PER_GPU)
            slots, streams = [f"cuda:{g}" for g in ids for _ in range(procs)], -(-k // procs)
        else:
            slots, streams = ["cpu"], 1
        on_cpu = slots == ["cpu"] and o.executor == "local"
        log = open_log(store) if p.jobs else None
        progress = TrainProgress(console, log)
        progress.write(f"dsd train: {len(p.jobs)} models of {', '.join(recipes)}; "
                       f"devices {', '.join(sorted(set(slots)))}; max_time {o.max_time}; "
                       f"executor {o.executor}")
        if on_cpu:
            old_threads = torch.get_num_threads()
            torch.set_num_threads(threads)
            if p.jobs:
                progress.console.print(f"cpu: {threads} thread{'s' * (threads > 1)} ({why}; "
                                       "--threads to choose)", highlight=False)
                progress.write(f"cpu: {threads} thread{'s' * (threads > 1)} ({why})")
        deadline = t_start + o.max_time - min(30.0, 0.1 * o.max_time) if o.max_time else None
        from .coordinator import Coordinator

        coord = Coordinator(store, p, ckpt_dir, slots=slots, deadline=deadline,
                            data_dir=o.data_dir, progress=progress, streams=streams,
                            whole_models=o.whole_models, ray=ray_opts)
        with mps_context(o.mps if local_gpu else False, note=lambda m: progress.note(f"note: {m}"),
                         devices=torch.cuda.device_count() if local_gpu else 1) as mps_on:
            stopped = coord.run()
        progress.write(f"end: {coord.counts}; stopped: {stopped}; "
                       f"{time.time() - t_start:.0f}s")
    finally:
        lock.release()
        if on_cpu:
            torch.set_num_threads(old_threads)
        if log is not None:
            log.close()
    pending = sum(len(store.training_queue([n], dataset=ds, recipe_json=r.to_dict()))
                  for n, (ds, r) in recipes.items())
    return Summary(coord.counts, stopped, pending, time.time() - t_start, mps_on, len(coord.lost),
                   coord.signum, threads if on_cpu else None, log and log.name)
