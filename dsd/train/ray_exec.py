"""`dsd train --executor ray`: every model is one Ray task on an existing (or local) Ray cluster.

Ray places the tasks (core tasks API: fractional `num_gpus=1/per_gpu` on a cluster with GPUs,
`num_cpus` on a CPU-only one); dsd keeps no scheduler of its own, only a bound on the number of
tasks in flight (the cluster's slots, so that `running` in the store means running), submitted
in the plan's order (longest first by default), the first wave dealt over the GPUs. The driver
(the `dsd train` process and its `Coordinator`) stays the only writer of the store:

- a task reports ('started', 'epoch', 'images') records to a small inbox actor pinned to the
  driver's node, fire-and-forget, and flushes it before it returns its final record; the driver
  drains the inbox, hands the records to `Coordinator.handle`, and applies each final record once
  per result id (a duplicate or late record of a finished model is dropped);
- a task whose worker process or node dies is retried by Ray (`max_retries`, system failures
  only); the retry resumes from the model's last epoch checkpoint (`<store>.ckpt/<id>.pt`) when
  that directory is shared by the nodes (else tasks checkpoint to a node-local directory, and
  only a retry on the same node resumes); when the retries are spent the model is `failed`;
- a GPU task runs in a fresh worker process (Ray sets CUDA_VISIBLE_DEVICES per task); CPU worker
  processes are reused and keep their data between models;
- datasets held whole in memory (CIFAR-10; a registry entry with `read_arrays`) are read once by
  the driver and shipped through Ray's object store (uint8 arrays, zero copy on every node);
  image trees (ImageNet) are read by each node from the same `--data-dir` path;
- Ctrl-C asks the tasks to stop at their next check (models go back to pending, checkpoints kept);
  a second Ctrl-C cancels them. If the driver dies, Ray ends its tasks; `dsd train` again resets
  the stale `running` rows and continues from the store and the checkpoints.

Ray is imported only inside these functions (it is an optional extra: `pip install 'dsd[ray]'`).
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
from collections import deque

from ..errors import DsdError

CAPACITY_EVERY = 5.0    # seconds between reads of the cluster's resources (autoscaling clusters)
STOP_POLL = 1.0         # seconds between a task's checks of the stop flag
MAX_CPUS_PER_GPU_TASK = 8
INSTALL = "pip install 'dsd[ray]'"


def check_executor(executor: str, *, gpus=None, per_gpu: int = 4, address: str | None = None,
                   max_retries: int = 3, cpus_per_task: float = 1.0) -> dict | None:
    """Validate the executor options early (before the store is touched); the kwargs of
    `run_ray`, or None for the local executor."""
    if executor in (None, "local"):
        return None
    if executor != "ray":
        raise DsdError(f"unknown executor {executor!r}; allowed: local, ray")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise DsdError(f"--executor ray needs Ray, which is not installed: {INSTALL}") from None
    if gpus:
        raise DsdError("--gpus picks local GPUs; with --executor ray every GPU of the cluster is "
                       "used (Ray assigns them; use --per-gpu for models per GPU)")
    if per_gpu < 1:
        raise DsdError(f"--per-gpu must be >= 1, got {per_gpu}")
    if max_retries < 0:
        raise DsdError(f"--max-retries must be >= 0, got {max_retries}")
    if not cpus_per_task > 0:
        raise DsdError(f"--cpus-per-task must be > 0, got {cpus_per_task}")
    return {"address": address, "per_gpu": per_gpu, "max_retries": max_retries,
            "cpus_per_task": cpus_per_task}


# ---- the inbox: records from the tasks to the driver -----------------------------------------
class Inbox:
    """A Ray actor (num_cpus=0, on the driver's node) holding the records tasks send until the
    driver drains them; also counts attempts per result id and carries the stop flag."""

    def __init__(self):
        self.items: list[tuple] = []
        self.attempts: dict[int, int] = {}
        self.stop = False

    def put(self, item: tuple) -> None:
        self.items.append(item)

    def begin(self, rid: int, info: dict) -> tuple[int, bool]:
        self.attempts[rid] = self.attempts.get(rid, 0) + 1
        self.items.append(("started", rid, {**info, "attempt": self.attempts[rid]}))
        return self.attempts[rid], self.stop

    def drain(self) -> list[tuple]:
        items, self.items = self.items, []
        return items

    def set_stop(self) -> None:
        self.stop = True

    def stopped(self) -> bool:
        return self.stop


# ---- the task (runs in a Ray worker process) -------------------------------------------------
_CACHES: dict = {}   # per worker process: (device, data_dir) → DataCache (CPU workers are reused)


def _cache(device, data_dir, workers: int):
    """The worker's data cache, kept between the tasks a (CPU) worker process runs."""
    from .worker import DataCache

    key = (str(device), str(data_dir))
    cache = _CACHES.get(key)
    if cache is None:
        _CACHES.clear()
        cache = _CACHES[key] = DataCache(device, data_dir=data_dir, workers=workers)
    return cache


@contextlib.contextmanager
def _shipped(arrays):
    """Make `DataCache` build the job's in-memory dataset from the arrays shipped by the driver
    (not from disk).

    A Ray task worker runs one task at a time, so swapping the module global is safe here."""
    from . import worker

    if arrays is None:
        yield
        return
    import functools
    import warnings

    real = worker.make_data
    worker.make_data = functools.partial(real, arrays=arrays)
    try:
        with warnings.catch_warnings():   # zero-copy object-store arrays are read-only
            warnings.filterwarnings("ignore", message=".*not writable.*")
            yield
    finally:
        worker.make_data = real


def _usable_ckpt(job) -> bool:
    """Keep `job.ckpt` when its directory is the driver's, seen through a shared file system
    (the driver holds `<store>.ckpt/lock` there); else checkpoint to a node-local directory, so
    a retry resumes only on this node. True when moved (the task then deletes it at the end)."""
    if os.path.exists(os.path.join(os.path.dirname(job.ckpt), "lock")):
        return False
    import hashlib
    import tempfile

    tag = hashlib.sha1(job.ckpt.encode()).hexdigest()[:12]
    job.ckpt = os.path.join(tempfile.gettempdir(), f"dsd-ckpt-{tag}", os.path.basename(job.ckpt))
    return True


def train_task(job, inbox, arrays, data_dir, deadline, cpus: float) -> dict:
    """Train one job in a Ray worker; records go to `inbox`; returns the final record."""
    import ray
    import torch

    from .engine import use_gpu
    from .worker import run_job

    rid = job.result_id
    local = _usable_ckpt(job)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "gpus": ray.get_gpu_ids(),
            "node": ray.get_runtime_context().get_node_id(),
            "resumed": os.path.exists(job.ckpt), "ckpt_local": local}
    attempt, stop = ray.get(inbox.begin.remote(rid, info))
    if ray.get_gpu_ids() and torch.cuda.is_available():
        device = torch.device("cuda", 0)   # Ray sets CUDA_VISIBLE_DEVICES to the assigned GPU
        use_gpu(device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, int(cpus)))
    cache = _cache(device, data_dir, workers=max(1, int(cpus)))
    state = {"stop": stop, "checked": time.time()}

    def should_stop() -> bool:
        if not state["stop"] and time.time() - state["checked"] > STOP_POLL:
            state["checked"] = time.time()
            with contextlib.suppress(Exception):   # the driver is gone or slow: keep training
                state["stop"] = ray.get(inbox.stopped.remote(), timeout=30)
        return state["stop"]

    def emit(kind: str, rec: dict) -> None:
        inbox.put.remote((kind, rid, rec))   # in order: one caller, one actor

    with _shipped(arrays):
        final = run_job(job, cache, emit, should_stop, deadline)
    if local and final["status"] != "stopped":   # the driver deletes only the shared one
        with contextlib.suppress(OSError):
            os.unlink(job.ckpt)
    final["attempt"] = attempt
    ray.get(inbox.stopped.remote())   # barrier: every record sent above is in the inbox now
    return final


# ---- the driver ------------------------------------------------------------------------------
def _import_ray():
    try:
        import ray
    except ImportError:
        raise DsdError(f"--executor ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def _shipped_arrays(ray, coord) -> dict:
    """dataset → object-store reference of its arrays, for every dataset of the plan held whole
    in memory (its registry entry reads arrays: CIFAR-10), read once by the driver (only the
    images the recipes use)."""
    from ..datasets import get_dataset

    out = {}
    for name in sorted({j.dataset for j in coord.plan.jobs}):
        d = get_dataset(name)
        if d.read_arrays is None:
            continue
        jobs = [j for j in coord.plan.jobs if j.dataset == name]
        tx, ty, vx, vy = d.read_arrays(d.find(coord.data_dir))
        sub = [j.recipe.get("subset") for j in jobs]
        tsub = [j.recipe.get("test_subset") for j in jobs]
        n = None if None in sub else max(sub)
        m = None if None in tsub else max(tsub)
        out[name] = ray.put((tx[:n], ty[:n], vx[:m], vy[:m]))
    return out


class Resources:
    """What one task asks for, and how many fit in the cluster now."""

    def __init__(self, ray, per_gpu: int, cpus_per_task: float):
        self.ray, self.per_gpu, self.cpus_per_task = ray, per_gpu, cpus_per_task
        self.read_at, self.slots, self.options = 0.0, 1, {}
        self.refresh()

    def refresh(self) -> int:
        if time.time() - self.read_at < CAPACITY_EVERY:
            return self.slots
        self.read_at = time.time()
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        gpu_nodes = [n for n in nodes if n.get("GPU", 0) >= 1]
        if gpu_nodes:   # per node: its CPUs shared by the models on its GPUs
            slots = sum(int(n["GPU"] + 1e-6) * self.per_gpu for n in gpu_nodes)
            per = min(min(n.get("CPU", 0.0) / (int(n["GPU"] + 1e-6) * self.per_gpu)
                          for n in gpu_nodes), MAX_CPUS_PER_GPU_TASK)
            cpu = float(int(per)) if per >= 1 else math.floor(per * 100) / 100
            self.options = {"num_gpus": 1.0 / self.per_gpu, "num_cpus": cpu}
            gpus = sum(int(n["GPU"] + 1e-6) for n in gpu_nodes)
            self.mode = f"{gpus} GPUs × {self.per_gpu} models"
            self.gpus = gpus
        else:
            slots = sum(int(n.get("CPU", 0.0) / self.cpus_per_task + 1e-6) for n in nodes)
            self.options = {"num_gpus": 0, "num_cpus": self.cpus_per_task}
            cpus = sum(n.get("CPU", 0.0) for n in nodes)
            self.mode = f"{cpus:g} CPUs, {self.cpus_per_task:g} per model"
            self.gpus = 0
        self.slots = max(1, slots)
        return self.slots


def deal(jobs: list, gpus: int, per_gpu: int) -> list:
    """The first wave's jobs reordered so that each run of `per_gpu` holds a fair share of
    them: Ray gives a fractional GPU task the fullest GPU it fits on (best fit), so jobs
    submitted in plan order (longest first) would put the longest models on one GPU together.
    The first gpus × per_gpu jobs are dealt to the GPUs back and forth (0, 1, …, g-1, g-1, …,
    0, …). With fewer jobs than that, Ray packs them onto the first GPUs whatever the order."""
    n = gpus * per_gpu
    if gpus < 2 or len(jobs) < n:
        return list(jobs)
    hands: list[list] = [[] for _ in range(gpus)]
    for i, job in enumerate(jobs[:n]):
        k = i % (2 * gpus)
        hands[k if k < gpus else 2 * gpus - 1 - k].append(job)
    return [j for hand in hands for j in hand] + list(jobs[n:])


def _started(coord, rid: int, info: dict, max_retries: int) -> None:
    """A task (re)started; a retry is told on the console."""
    if info["attempt"] > 1 and rid in coord.running:
        job = coord.running[rid]
        coord.progress.note(
            f"[yellow]{job.sweep} #{job.index}: Ray worker lost, retry {info['attempt'] - 1}/"
            f"{max_retries} on {info['host']}"
            f"{', resuming from its checkpoint' if info['resumed'] else ', from the start'}[/]")


def _failure(e: Exception, max_retries: int) -> dict:
    ray = _import_ray()
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    if isinstance(e, ray.exceptions.RayTaskError):   # an exception outside run_job
        return {"status": "failed", "error": f"Ray task error: {first}\n{str(e)[-1500:]}"}
    return {"status": "failed", "error": f"Ray worker or node died; no retry left after "
                                         f"{max_retries} (--max-retries): {type(e).__name__}: "
                                         f"{first}"}


def _runtime_env() -> dict:
    """Task options that carry $DSD_BLOCKS and $DSD_DATASETS (blocks and datasets from files:
    `dsd.blocks`, `dsd.datasets`) to the workers, which a cluster started before they were set
    would not have; the files must be at the same path on every node, like the store."""
    env = {k: os.environ[k] for k in ("DSD_BLOCKS", "DSD_DATASETS") if os.environ.get(k)}
    return {"runtime_env": {"env_vars": env}} if env else {}


def run_ray(coord, *, address: str | None = None, per_gpu: int = 4, max_retries: int = 3,
            cpus_per_task: float = 1.0) -> None:
    """Train `coord.plan.jobs` as Ray tasks; the Coordinator writes every record."""
    from .coordinator import HARD_GRACE

    if not coord.plan.jobs:
        return   # nothing pending: no cluster needed
    ray = _import_ray()
    owned = not ray.is_initialized()
    if owned:
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except ConnectionError as e:
            raise DsdError(f"no Ray cluster at --address {address}: {e} (start one with "
                           f"`ray start --head`)") from None
    inbox = arrays = None
    inflight: dict = {}
    try:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # the inbox lives and dies with the driver's node: with a soft affinity Ray put it on
        # another node when the driver's had no CPUs (a head started with --num-cpus=0), and
        # that node's death then ended the whole run (tests/test_ray.py, the node-kill test)
        here = ray.get_runtime_context().get_node_id()
        inbox = ray.remote(num_cpus=0, max_restarts=0)(Inbox).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()
        arrays = _shipped_arrays(ray, coord)
        res = Resources(ray, per_gpu, cpus_per_task)
        # A GPU task gets a fresh worker process (Ray's default for GPU tasks, which the options
        # below would not set): CUDA_VISIBLE_DEVICES differs per task, and a reused process
        # would keep its first GPU and its CUDA memory. CPU workers are reused (data cached).
        tasks = {True: ray.remote(max_calls=1)(train_task), False: ray.remote(train_task)}
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        coord.progress.note(f"ray: {nodes} node{'s' * (nodes != 1)}, {res.mode}: up to "
                            f"{res.slots} models at once; retries {max_retries}")
        todo, relayed = deque(deal(coord.plan.jobs, res.gpus, per_gpu)), False
        # workers run in another directory (and on other nodes): absolute paths only
        data_dir = os.path.abspath(os.path.expanduser(coord.data_dir)) if coord.data_dir else None
        while True:
            todo.extendleft(reversed(coord.requeue))  # failed under a graph: again, eagerly
            coord.requeue.clear()
            while todo and len(inflight) < res.refresh() and coord.can_start():
                job = todo.popleft()
                coord.start(job)
                job.ckpt = os.path.abspath(job.ckpt)
                task = tasks[res.options["num_gpus"] > 0]
                ref = task.options(max_retries=max_retries, retry_exceptions=False,
                                   **res.options, **_runtime_env()).remote(
                    job, inbox, arrays.get(job.dataset), data_dir, coord.deadline,
                    res.options["num_cpus"])
                inflight[ref] = job.result_id
            if coord.stop_reason == "interrupted" and not relayed:
                inbox.set_stop.remote()
                relayed = True
            if not inflight:
                break
            if coord.deadline and time.time() > coord.deadline + HARD_GRACE:
                coord.stop_reason = "time"
                break   # the finally below cancels the tasks; run() returns them to pending
            ready, _ = ray.wait(list(inflight), num_returns=len(inflight), timeout=0.25)
            _deliver(coord, ray.get(inbox.drain.remote()), max_retries)
            for ref in ready:
                rid = inflight.pop(ref)
                try:
                    final = ray.get(ref)
                except ray.exceptions.TaskCancelledError:
                    continue
                except ray.exceptions.RayError as e:
                    final = _failure(e, max_retries)
                if rid in coord.running:   # the final record is applied once per result id
                    final.pop("attempt", None)
                    if final["status"] == "stopped" and not coord.stop_reason:
                        coord.stop_reason = "time"   # a task stopped at the deadline
                    coord.handle("final", rid, final)
    finally:
        for ref in inflight:   # aborted (second Ctrl-C, time limit): run() marks them pending
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if inbox is not None:
            with contextlib.suppress(Exception):
                ray.kill(inbox)
        del arrays
        if owned:
            ray.shutdown()


def _deliver(coord, items: list[tuple], max_retries: int) -> None:
    for kind, rid, payload in items:
        if rid not in coord.running:
            continue   # a late record of a finished or cancelled model
        if kind == "started":
            _started(coord, rid, payload, max_retries)
        else:
            coord.handle(kind, rid, payload)
