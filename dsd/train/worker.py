"""A training worker: trains the jobs it is sent on one device and reports records, never writes.

Runs inline in the coordinator (CPU) or as a spawned process sharing a GPU with others. Any
exception in a job (CUDA out-of-memory included) becomes a 'failed' record; a process worker then
exits so the coordinator replaces it with a fresh CUDA context.
"""
from __future__ import annotations

import gc
import os
import signal
import traceback

import torch

from .data import make_data
from .engine import Job, train_model
from .recipes import Recipe


class DataCache:
    """Keeps the last data source, so consecutive models of one sweep share the loaded data."""

    def __init__(self, device: torch.device, *, data_dir=None, workers: int = 4):
        self.device, self.data_dir, self.workers = device, data_dir, workers
        self.key, self.data = None, None

    def get(self, job: Job, spec_resolution: int, num_classes: int):
        r = Recipe(**job.recipe)
        bf16 = r.precision == "bf16" or (r.precision == "auto" and self.device.type == "cuda")
        key = (job.dataset, r.batch_size, r.subset, r.test_subset, bf16, spec_resolution,
               num_classes)
        if key != self.key:
            self.data = None
            gc.collect()
            self.data = make_data(job.dataset, self.device, batch_size=r.batch_size,
                                  resolution=spec_resolution, num_classes=num_classes,
                                  data_dir=self.data_dir, subset=r.subset,
                                  test_subset=r.test_subset,
                                  dtype=torch.bfloat16 if bf16 else torch.float32,
                                  workers=self.workers)
            self.key = key
        return self.data


def run_job(job: Job, cache: DataCache, emit, should_stop, deadline) -> dict:
    """Train one job; an exception becomes {'status': 'failed', 'error': …}."""
    import json

    try:
        spec = json.loads(job.spec_json)
        data = cache.get(job, spec["resolution"], spec["num_classes"])
        return train_model(job, data, device=cache.device, emit=emit, should_stop=should_stop,
                           deadline=deadline)
    except Exception as e:  # noqa: BLE001 — one model's failure must not stop the sweep
        msg = f"{type(e).__name__}: {e}".strip()
        tb = traceback.format_exc(limit=-3)
        if cache.device.type == "cuda":
            try:
                torch.cuda.empty_cache()
            except Exception:  # noqa: BLE001 — a sticky CUDA error (illegal address): the
                pass           # coordinator replaces this process after the failed record
        return {"status": "failed", "error": f"{msg[:500]}\n{tb[-1500:]}"}


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the coordinator dies, so no orphan keeps training (and writing)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def worker_main(slot: int, device: str, tasks, results, stop, deadline, data_dir,
                loader_workers: int) -> None:
    """Process entry: take jobs from `tasks` until None; put (kind, slot, result_id, payload)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides when to stop
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the coordinator died before prctl took effect
        return
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True
    cache = DataCache(dev, data_dir=data_dir, workers=loader_workers)
    results.put(("ready", slot, None, {"pid": os.getpid()}))
    while True:
        job = tasks.get()
        if job is None:
            return
        final = run_job(job, cache,
                        lambda kind, rec: results.put((kind, slot, job.result_id, rec)),
                        lambda: stop.is_set() or os.getppid() != parent, deadline)
        results.put(("final", slot, job.result_id, final))
        if final["status"] == "failed":
            return  # start over in a fresh process (a CUDA error may poison the context)
