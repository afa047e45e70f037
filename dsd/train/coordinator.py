"""The coordinator loop: hands jobs to workers, writes every record to the store, stops cleanly.

Workers (inline on CPU, spawned processes on GPUs, each holding up to `streams` models) only
send (kind, slot, result_id, payload) records; this process alone writes the store. Jobs are
handed out in the plan's order (longest first by default: `cost.order_jobs`), one per worker in
turn across the devices. Ctrl-C stops workers at their next check (their models go back to
pending, checkpoints kept); a second Ctrl-C aborts at once. With a deadline, no model starts
whose next epoch (with `whole_models`: whole run) would not fit, and workers stop before it
passes. A model that fails with a CUDA error under a graph is trained again eagerly; a worker
whose CUDA context is poisoned announces its exit ('exit', with the jobs it holds), and its
other models are handed to a fresh process. A worker that dies after it was ready (a segfault)
hands its models back to be trained again eagerly, each alone in a worker; one held by CRASHES
dying workers fails. A worker that dies before it is ready fails no model (see `_reap`).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import time
from collections import deque
from pathlib import Path

from ..datasets import get_dataset
from ..errors import DsdError
from ..store import Store
from .engine import Job, hardware_queues
from .progress import TrainProgress
from .worker import DataCache, run_job, worker_main

HARD_GRACE = 20.0      # seconds past the deadline before workers are terminated
START_DEATHS = 2       # a slot whose worker dies this often in a row before it is ready: given up
REAP_EVERY = 0.5       # seconds between checks for dead workers
CRASHES = 2            # a model held by this many dying workers is failed (its neighbours may
                       # be to blame: a worker holds `streams` models)


def fill_order(slots: list[str]) -> list[int]:
    """Worker slots in the order jobs are handed to them: in turn across devices (cuda:0's
    first worker, cuda:1's first, …, then cuda:0's second, …), so that the first jobs (the
    longest, by default) spread over the GPUs and processes."""
    return sorted(range(len(slots)), key=lambda i: slots[:i].count(slots[i]))


class Coordinator:
    def __init__(self, store: Store, plan, ckpt_dir: Path, *, slots: list[str],
                 deadline: float | None, data_dir, progress: TrainProgress,
                 streams: int = 1, whole_models: bool = False, ray: dict | None = None):
        self.ray = ray  # kwargs of ray_exec.run_ray (--executor ray), else None
        self.store, self.plan, self.ckpt_dir, self.slots = store, plan, ckpt_dir, slots
        self.streams = streams  # models at once in each worker process
        self.whole_models = whole_models  # start a model only if it should end before deadline
        self.model_times: list[float] = []
        self.requeue: deque[Job] = deque()  # models to train again (eagerly) in this run
        self.deadline, self.data_dir, self.progress = deadline, data_dir, progress
        self.running: dict[int, Job] = {}
        self.seen_epochs: dict[int, int] = {}
        self.epoch_times: list[float] = []
        self.counts: dict[str, int] = {}
        self.stop_reason: str | None = None
        self.signum: int | None = None   # SIGINT or SIGTERM, when one stopped the run
        self.ready: set[int] = set()            # worker slots whose process has started
        self.start_deaths: dict[int, int] = {}  # slot -> worker deaths in a row before ready
        self.lost: list[str] = []                # devices of the slots given up (those deaths)
        self.queues: list[int | None] = []       # slot -> hardware queues its worker gets

    # ---- store writes -------------------------------------------------------------------
    def start(self, job: Job) -> None:
        mid = job.meta["model_id"]
        job.result_id = self.store.start_result(
            mid, dataset=job.dataset, recipe=job.recipe["name"], recipe_json=job.recipe,
            seed=job.seed, synthetic=get_dataset(job.dataset).synthetic)
        job.ckpt = str(self.ckpt_dir / f"{job.result_id}.pt")
        self.running[job.result_id] = job
        self.seen_epochs[job.result_id] = self.plan.done_epochs.get(mid, 0)

    def handle(self, kind: str, rid: int, payload: dict) -> None:
        if kind == "epoch":
            self.store.add_epoch(rid, payload["epoch"], train_loss=payload["train_loss"],
                                 top1=payload["top1"], top5=payload["top5"], lr=payload["lr"],
                                 seconds=payload["seconds"],
                                 eval_seconds=payload.get("eval_seconds"))
            if payload["epoch"] > self.seen_epochs.get(rid, 0):
                self.seen_epochs[rid] = payload["epoch"]
                self.epoch_times.append(payload["seconds"])
                self.progress.epoch(rid)
        elif kind == "images":
            self.progress.images(payload["n"], rid, payload.get("of"))
        elif kind == "final":
            self.finish(rid, payload)

    def finish(self, rid: int, final: dict) -> None:
        job = self.running.pop(rid)
        if final["status"] == "failed" and not job.eager and "CUDA error" in final.get("error", ""):
            # a CUDA error under the graph path (seen once: an illegal address in one shape):
            # train the model again eagerly, from its last checkpoint; exec_path will say so
            job.eager = True
            self.requeue.append(job)
            final = {**final, "status": "stopped"}
            self.progress.note(f"[yellow]{job.sweep} #{job.index}: CUDA error on the graph "
                               f"path; retrying it eagerly[/]")
        elif final["status"] not in ("stopped", "failed") and final.get("seconds"):
            self.model_times.append(final["seconds"])
        status = "pending" if final["status"] == "stopped" else final["status"]
        self.store.finish_result(rid, status, top1=final.get("top1"), top5=final.get("top5"),
                                 train_loss=final.get("train_loss"),
                                 seconds=final.get("seconds"), device=final.get("device"),
                                 exec_path=final.get("exec_path"), error=final.get("error"),
                                 provenance=final.get("provenance") and {
                                     **final["provenance"], "exec_path": final.get("exec_path")})
        if status != "pending":
            Path(job.ckpt).unlink(missing_ok=True)
            self.counts[status] = self.counts.get(status, 0) + 1
        self.progress.model_done(job.sweep, job.index, job.flops, {**final, "status": status})

    # ---- control ------------------------------------------------------------------------
    def can_start(self) -> bool:
        if self.stop_reason:
            return False
        if self.deadline is None:
            return True
        est = sum(self.epoch_times) / len(self.epoch_times) if self.epoch_times else 0.0
        need = 1.5 * est  # the next epoch, with a margin
        if self.whole_models and self.model_times:  # the whole model, as long as others took
            need = max(need, sum(self.model_times) / len(self.model_times))
        if time.time() + need >= self.deadline:
            self.stop_reason = "time"
            return False
        return True

    def _on_signal(self, signum, frame) -> None:
        """SIGINT (Ctrl-C) or SIGTERM (timeout, Slurm and most schedulers): stop, the current
        models back to pending; a second signal aborts at once."""
        if self.stop_reason == "interrupted":
            raise KeyboardInterrupt
        self.stop_reason, self.signum = "interrupted", signum
        if hasattr(self, "stop_event"):
            self.stop_event.set()
        self.progress.note(f"[yellow]stopping ({signal.Signals(signum).name}): current models "
                           "go back to pending (Ctrl-C again to abort now)[/]")

    def run(self) -> str | None:
        """Train every planned job; returns why it stopped early (None, 'interrupted', 'time')."""
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        epochs = sum(max(0, j.recipe["epochs"] - self.plan.done_epochs.get(j.meta["model_id"], 0))
                     for j in self.plan.jobs)
        try:
            with self.progress.live(len(self.plan.jobs), epochs):
                if self.ray is not None:
                    from .ray_exec import run_ray
                    run_ray(self, **self.ray)
                elif self.slots == ["cpu"]:
                    self._run_inline()
                else:
                    self._run_processes()
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            for rid in list(self.running):  # aborted: leave them pending, checkpoints kept
                self.store.finish_result(rid, "pending")
                self.running.pop(rid)
        return self.stop_reason

    def _run_inline(self) -> None:
        import torch

        cache = DataCache(torch.device("cpu"), data_dir=self.data_dir, workers=2)
        todo = deque(self.plan.jobs)
        while todo or self.requeue:
            job = self.requeue.popleft() if self.requeue else todo.popleft()
            if not self.can_start():
                break
            self.start(job)
            rid = job.result_id
            final = run_job(job, cache, lambda kind, rec: self.handle(kind, rid, rec),
                            lambda: self.stop_reason is not None, self.deadline)
            self.handle("final", rid, final)

    def _run_processes(self) -> None:
        ctx = mp.get_context("spawn")
        results, self.stop_event = ctx.Queue(), ctx.Event()
        # CPU loader workers: the machine's cores shared by every model training at once
        loaders = max(1, (os.cpu_count() or 2) // (len(self.slots) * self.streams))
        procs: dict[int, tuple] = {}   # slot -> (process, its task queue); given-up slots leave
        # each GPU's hardware queues shared by its workers; CUDA's default (None) after a worker
        # died as it started, as MPS clients do when the GPU's queues run out
        self.queues = [hardware_queues(self.slots.count(s)) for s in self.slots]

        def spawn(i: int) -> None:
            self.ready.discard(i)
            tasks = ctx.Queue()
            p = ctx.Process(target=worker_main, args=(
                i, self.slots[i], tasks, results, self.stop_event, self.deadline,
                self.data_dir, loaders, self.streams, self.queues[i]))
            p.start()
            procs[i] = (p, tasks)

        for i in range(len(self.slots)):
            spawn(i)
        fill = fill_order(self.slots)
        todo = deque(self.plan.jobs)
        busy: dict[int, set[int]] = {i: set() for i in range(len(self.slots))}
        closing: set[int] = set()  # workers that announced their exit (a sticky CUDA error)
        reaped = time.time()
        try:
            while True:
                todo.extendleft(reversed(self.requeue))
                self.requeue.clear()
                handed = True
                while handed:  # one job per worker and pass
                    handed = False
                    for i in (i for i in fill if i in procs):
                        if (i not in closing and len(busy[i]) < self.streams and todo
                                and self._fits(todo[0], busy[i]) and self.can_start()):
                            job = todo.popleft()
                            self.start(job)
                            procs[i][1].put(job)
                            busy[i].add(job.result_id)
                            handed = True
                if not any(busy.values()):
                    break
                if self.deadline and time.time() > self.deadline + HARD_GRACE:
                    self.stop_reason = "time"
                    break  # the finally of run() returns the unfinished models to pending
                if time.time() - reaped > REAP_EVERY:  # not only after a quiet spell: busy
                    reaped = time.time()               # workers report every second
                    dead = [p for p, _ in procs.values() if not p.is_alive()]
                    if dead and results.empty():  # what they sent before dying is read first
                        self._reap(procs, busy, spawn, closing, todo)
                try:
                    kind, slot, rid, payload = results.get(timeout=REAP_EVERY)
                except queue.Empty:
                    continue
                if kind == "ready":
                    self.ready.add(slot)
                    self.start_deaths[slot] = 0
                    continue
                if kind == "exit":  # jobs it never took go back to the queue
                    for rid in sorted(busy[slot] - set(payload["held"]), reverse=True):
                        self._requeue(rid, todo)
                    busy[slot] &= set(payload["held"])
                    closing.add(slot)
                    continue
                job = self.running.get(rid)
                if job is None:  # a late record of a job already handed back
                    continue
                self.handle(kind, rid, payload)
                if kind == "final":
                    busy[slot].discard(rid)
                    if payload.get("retry") and job is not None:
                        todo.appendleft(job)  # stopped by another model's CUDA error
                    if slot in closing and not busy[slot]:
                        procs[slot][0].join(timeout=30)
                        closing.discard(slot)
                        spawn(slot)
        finally:
            for p, tasks in procs.values():
                if p.is_alive():
                    tasks.put(None)
            for p, _ in procs.values():
                p.join(timeout=10)
                if p.is_alive():
                    p.kill()

    def _fits(self, job: Job, held: set[int]) -> bool:
        """A model retried after its worker died is trained alone in its worker, so that a
        second death is its own."""
        return not held or not (job.crashes or any(self.running[r].crashes for r in held))

    def _requeue(self, rid: int, todo: deque) -> None:
        """Put a handed-out job back at the front of the queue, its result pending again."""
        todo.appendleft(self.running[rid])
        self.finish(rid, {"status": "stopped"})

    def _reap(self, procs, busy, spawn, closing, todo) -> None:
        """A worker that died (segfault, killed) hands its models back, to be trained again
        eagerly from their checkpoints, each alone in a worker (`_fits`), since any one of them
        (or the graph path) may be to blame; a model that was in CRASHES dying workers fails.
        One that died before it was ready (CUDA would not start in it) counts against no model
        and is respawned with CUDA's default hardware queues; a slot whose workers die so
        START_DEATHS times in a row is given up (`lost`); with every slot given up the run
        stops with an error, its models still pending."""
        for i, (p, _) in list(procs.items()):
            if p.is_alive():
                continue
            for rid in sorted(busy[i], reverse=True):  # back to the queue's front, in order
                job = self.running[rid]
                if i in self.ready:
                    job.crashes += 1
                    job.eager = True
                if job.crashes >= CRASHES:
                    self.handle("final", rid, {
                        "status": "failed", "error": f"worker process died (exit code "
                                                     f"{p.exitcode}), {job.crashes} times"})
                else:
                    if i in self.ready:
                        self.progress.note(f"[yellow]{job.sweep} #{job.index}: its worker died "
                                           f"(exit code {p.exitcode}); retrying it eagerly[/]")
                    self._requeue(rid, todo)
            busy[i].clear()
            closing.discard(i)
            if i not in self.ready:
                self.start_deaths[i] = self.start_deaths.get(i, 0) + 1
                self.queues[i] = None
                if self.start_deaths[i] >= START_DEATHS:
                    del procs[i]
                    self.lost.append(self.slots[i])
                    self.progress.note(f"[red]{self.slots[i]}: its worker processes die as "
                                       f"they start (exit code {p.exitcode}); not used[/]")
                    if not procs:
                        raise DsdError(
                            f"every worker process died as it started (last: {self.slots[i]}, "
                            f"exit code {p.exitcode}; its error is printed above); no model "
                            f"was marked failed")
                    continue
            spawn(i)
