"""A training worker: trains the jobs it is sent on one device and reports records, never writes.

Runs inline in the coordinator (CPU) or as a spawned process sharing a GPU with others, where it
trains several models at once, interleaved on CUDA streams. Any exception in a model (CUDA
out-of-memory included) becomes a 'failed' record; after a sticky CUDA error the process exits
(its other models go back to the coordinator) so a fresh process with a fresh context replaces it.
"""
from __future__ import annotations

import gc
import json
import os
import queue
import signal
import time
import traceback
from collections import deque
from collections.abc import Iterator
from contextlib import nullcontext

import torch

from .data import make_data
from .engine import Job, die_with_parent, drive, train_steps, use_gpu
from .recipes import Recipe

QUEUE_DEPTH = 3    # steps of one model queued on the GPU at most
POLL = 2e-4        # seconds a worker sleeps when every model it holds has a full queue


class DataCache:
    """Keeps the last data source, so consecutive models of one sweep share the loaded data."""

    def __init__(self, device: torch.device, *, data_dir=None, workers: int = 4):
        self.device, self.data_dir, self.workers = device, data_dir, workers
        self.key, self.data = None, None

    def get(self, job: Job, spec_resolution: int, num_classes: int):
        r = Recipe(**job.recipe)
        bf16 = r.precision == "bf16" or (r.precision == "auto" and self.device.type == "cuda")
        key = (job.dataset, r.batch_size, r.subset, r.test_subset, bf16, spec_resolution,
               num_classes, job.loader)
        if key != self.key:
            self.data = None
            gc.collect()
            self.data = make_data(job.dataset, self.device, batch_size=r.batch_size,
                                  resolution=spec_resolution, num_classes=num_classes,
                                  data_dir=self.data_dir, subset=r.subset,
                                  test_subset=r.test_subset,
                                  dtype=torch.bfloat16 if bf16 else torch.float32,
                                  workers=self.workers, loader=job.loader)
            if self.device.type == "cuda":  # made on the default stream, read on others
                torch.cuda.synchronize(self.device)
            self.key = key
        return self.data


def _failed(e: Exception, device: torch.device) -> dict:
    """The 'failed' record of an exception in one model (CUDA out-of-memory included)."""
    msg = f"{type(e).__name__}: {e}".strip()
    tb = traceback.format_exc(limit=-3)
    if device.type == "cuda":
        try:
            torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001 — a sticky CUDA error (illegal address): the
            pass           # coordinator replaces this process after the failed record
    return {"status": "failed", "error": f"{msg[:500]}\n{tb[-1500:]}"}


def start_job(job: Job, cache: DataCache, emit, should_stop, deadline):
    """The step generator of `job` (see `engine.train_steps`) on the cache's device."""
    spec = json.loads(job.spec_json)
    data = cache.get(job, spec["resolution"], spec["num_classes"])
    return train_steps(job, data, device=cache.device, emit=emit, should_stop=should_stop,
                       deadline=deadline)


def run_job(job: Job, cache: DataCache, emit, should_stop, deadline) -> dict:
    """Train one job; an exception becomes {'status': 'failed', 'error': …}."""
    try:
        return drive(start_job(job, cache, emit, should_stop, deadline))
    except Exception as e:  # noqa: BLE001 — one model's failure must not stop the sweep
        return _failed(e, cache.device)


class Queued:
    """The steps of one model queued on the GPU and not yet run, as CUDA events: a worker
    queues a model's next step only while fewer than `limit` are waiting, so each of its models
    runs at its own pace instead of all at the slowest one's (CPU: never waits)."""

    def __init__(self, stream, limit: int = QUEUE_DEPTH, event=None):
        self.stream, self.limit, self.events = stream, limit, deque()
        self.new_event = event or (torch.cuda.Event if isinstance(stream, torch.cuda.Stream)
                                   else None)

    def full(self) -> bool:
        while self.events and self.events[0].query():
            self.events.popleft()
        return len(self.events) >= self.limit

    def add(self) -> None:
        if self.new_event is not None:
            ev = self.new_event()
            ev.record(self.stream)
            self.events.append(ev)


class Running:
    """A model in progress in a worker: its step generator and the CUDA stream it runs on."""

    def __init__(self, job: Job, cache: DataCache, stream, emit, should_stop, deadline):
        self.job, self.device, self.stream = job, cache.device, stream
        self.queued = Queued(stream)
        self.steps = start_job(job, cache, emit, should_stop, deadline)  # data: default stream

    def _on_stream(self):
        return torch.cuda.stream(self.stream) if self.device.type == "cuda" else nullcontext()

    def advance(self) -> dict | None:
        """Queue one more step of this model; its final record once it has ended."""
        try:
            with self._on_stream():
                next(self.steps)
            self.queued.add()
            return None
        except StopIteration as end:
            final = end.value
        except Exception as e:  # noqa: BLE001 — one model's failure must not stop the sweep
            final = _failed(e, self.device)
        if self.device.type == "cuda":  # nothing of this model may run once its memory is freed
            try:
                self.stream.synchronize()
            except Exception:  # noqa: BLE001 — a sticky CUDA error: the caller checks the context
                pass
        return final


def step_round(running: list[Running]) -> Iterator[tuple[Running, dict]]:
    """Queue one step of every model whose GPU queue has room (sleeping briefly when none has),
    yielding each model that ended, removed from `running`, with its final record; lazily, so a
    caller that stops (a poisoned context) advances no further model."""
    if running and all(m.queued.full() for m in running):
        time.sleep(POLL)  # every model has steps waiting on the GPU
    for model in list(running):
        if not model.queued.full() and (final := model.advance()) is not None:
            running.remove(model)
            yield model, final


def cuda_healthy(device: torch.device) -> bool:
    """False after a sticky CUDA error (illegal address…), which poisons the whole process."""
    try:
        torch.cuda.synchronize(device)
        return True
    except Exception:  # noqa: BLE001
        return False


def _emitter(results, slot: int, rid: int):
    return lambda kind, rec: results.put((kind, slot, rid, rec))


def worker_main(slot: int, device: str, tasks, results, stop, deadline, data_dir,
                loader_workers: int, streams: int = 1, queues: int | None = None) -> None:
    """Process entry: train up to `streams` jobs from `tasks` at once, interleaved step by step
    (each on its own CUDA stream, so the small kernels of several models overlap on the GPU,
    each model queuing at most QUEUE_DEPTH steps ahead), until None; put (kind, slot,
    result_id, payload) records on `results`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a scheduler signals the whole group
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:  # the coordinator died before prctl took effect
        return
    dev = torch.device(device)
    if dev.type == "cuda":
        use_gpu(dev, queues)
    else:  # processes sharing the CPU: one share of the cores each, not all of them each
        torch.set_num_threads(loader_workers)
    cache = DataCache(dev, data_dir=data_dir, workers=loader_workers)
    results.put(("ready", slot, None, {"pid": os.getpid()}))
    # one CUDA stream per concurrent model, reused: memory cached for a stream serves the next
    lanes = [torch.cuda.Stream(dev) if dev.type == "cuda" else i for i in range(streams)]
    running: list[Running] = []
    closed = False
    while running or not closed:
        while not closed and len(running) < streams:
            try:  # block only when idle; otherwise take what the coordinator has sent
                job = tasks.get() if not running else tasks.get_nowait()
            except queue.Empty:
                break
            if job is None:
                closed = True
                break
            lane = next(x for x in lanes if all(m.stream is not x for m in running))
            try:
                running.append(Running(job, cache, lane, _emitter(results, slot, job.result_id),
                                       lambda: stop.is_set() or os.getppid() != parent, deadline))
            except Exception as e:  # noqa: BLE001 — e.g. the dataset failed to load
                results.put(("final", slot, job.result_id, _failed(e, dev)))
        for model, final in step_round(running):
            if final["status"] == "failed" and dev.type == "cuda" and not cuda_healthy(dev):
                # the context is poisoned: announce the exit (with the jobs held), hand back
                # the other models (their last checkpoints stay) and let a fresh process start
                held = [model.job.result_id] + [m.job.result_id for m in running]
                results.put(("exit", slot, None, {"held": held}))
                results.put(("final", slot, model.job.result_id, final))
                for other in running:
                    results.put(("final", slot, other.job.result_id, {
                        "status": "stopped", "retry": True,
                        "error": "stopped: a CUDA error in a model of the same process"}))
                return
            results.put(("final", slot, model.job.result_id, final))
