"""The `gpu` loader's decode process: one per data source, off the training process.

Why a process: decoding in the training process fell from 17.7 to 516 ms per batch beside a
GPU load, and only to 18.7 beside one in another process (BENCHMARKS.md, runs 8 and 11); the
likely causes, the interpreter lock and hardware queues shared with training, stay behind.
With it, training reads ImageNet-sized JPEGs at 90-94 % of its synthetic-input rate (run 12).

The trainer allocates, per iterator ("channel"), a ring of SLOTS batch buffers (x, y) and
shares them once with the child (CUDA IPC; shared memory on the CPU). The child runs
`imagenet.Pipeline` on a producer thread per channel and writes each batch into a free slot;
a CUDA event the child records says when a slot is written, one the trainer records after its
step has queued its reads of the slot says when the child may overwrite it. So neither side
blocks the GPU on the other, and a batch is valid until the next one is asked for.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import weakref
from collections import defaultdict, deque
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Iterator

import torch

from ..errors import DsdError
from .engine import DECODER_QUEUES, die_with_parent

SLOTS = 4         # batch buffers per channel: one being read, three written ahead at most
POLL = 0.5        # seconds between liveness checks while waiting on the other side
Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class _Ring:
    """One channel's buffers, as the trainer holds them."""

    id: int
    capacity: int
    xs: list
    ys: list
    free: list | None       # events the trainer records (CUDA), the child waits on
    ready: list | None      # events the child records, the trainer waits on


class DecodeProcess:
    """The trainer's side: starts the child at once (it imports torch and makes its CUDA
    context while the model is built) and hands out batches of requests in order."""

    def __init__(self, device: torch.device, train: list, val: list, *, batch_size: int,
                 resolution: int, dtype: torch.dtype, mean: tuple, std: tuple):
        self.cuda = device.type == "cuda"
        if self.cuda and device.index is None:   # the child needs the index: its own current
            device = torch.device("cuda", torch.cuda.current_device())   # device is 0
        self.device = device
        self.shape, self.dtype = (3, resolution, resolution), dtype
        self.config = (str(device), train, val,
                       {"batch_size": batch_size, "resolution": resolution, "dtype": dtype,
                        "mean": mean, "std": std})
        self.proc, self.rings = None, 0   # channel ids: never reused, also across restarts
        self._start()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")   # the trainer holds a CUDA context: fork is unsafe
        self.requests, self.replies = ctx.Queue(), ctx.Queue()
        self.proc = ctx.Process(target=serve, args=(*self.config, self.requests, self.replies),
                                daemon=True, name="dsd-decoder")
        self.proc.start()
        self._stop = weakref.finalize(self, _shutdown, self.proc, self.requests)
        self.inbox: dict = defaultdict(deque)
        self.idle: list[_Ring] = []
        self.up = False

    def _get(self, ch, proc):
        """The next reply for channel `ch` (None: the process itself) of the decode process
        `proc`; replies for other channels are kept for them."""
        if proc is not self.proc:   # closed, or replaced under another model
            raise DsdError("the decode process was closed or died under another model")
        while not self.inbox[ch]:
            try:
                kind, c, payload = self.replies.get(timeout=POLL)
            except queue.Empty:
                if not proc.is_alive():
                    raise DsdError(f"the decode process died (exit code {proc.exitcode}; "
                                   f"its traceback is in the log); the next model starts a "
                                   f"new one, and --loader cpu does without it") from None
                continue
            if kind == "fatal":
                raise DsdError(f"the decode process could not start: {payload}")
            self.inbox[c].append((kind, payload))
        return self.inbox[ch].popleft()

    def _ring(self, capacity: int) -> _Ring:
        """An idle channel holding `capacity` images, or a new one shared with the child."""
        for r in self.idle:
            if r.capacity >= capacity:
                self.idle.remove(r)
                return r
        ch, self.rings = self.rings, self.rings + 1
        layout = torch.channels_last if self.cuda else torch.contiguous_format
        xs = [torch.empty((capacity, *self.shape), dtype=self.dtype, device=self.device,
                          memory_format=layout) for _ in range(SLOTS)]
        ys = [torch.empty(capacity, dtype=torch.int64, device=self.device) for _ in range(SLOTS)]
        if not self.cuda:
            for t in xs + ys:
                t.share_memory_()
        free = [torch.cuda.Event(interprocess=True) for _ in range(SLOTS)] if self.cuda else None
        self.requests.put(("open", ch, (xs, ys, free)))
        kind, ready = self._get(ch, self.proc)
        return _Ring(ch, capacity, xs, ys, free, ready)

    def _release(self, ring: _Ring, slot: int, stream, proc) -> None:
        if stream is not None:
            ring.free[slot].record(stream)
        if proc is self.proc:   # a replaced process's slots are nobody's
            self.requests.put(("free", ring.id, slot))

    def batches(self, request: tuple, capacity: int) -> Iterator[Batch]:
        """The batches of `request` (`Pipeline.batches`' arguments), each a view of a slot."""
        if self.proc is None:
            raise DsdError("this data source was closed")
        if not self.proc.is_alive():   # died under an earlier model (a CUDA error): replace it
            self._stop()
            self._start()
        proc = self.proc
        if not self.up:
            self._get(None, proc)
            self.up = True
        ring = self._ring(capacity)
        self.requests.put(("start", ring.id, request))
        done = False
        try:
            while True:
                kind, payload = self._get(ring.id, proc)
                if kind == "end":
                    done = True
                    break
                if kind == "error":
                    done = True
                    raise DsdError(payload)
                slot, n = payload
                stream = torch.cuda.current_stream(self.device) if self.cuda else None
                if stream is not None:
                    stream.wait_event(ring.ready[slot])
                try:
                    yield ring.xs[slot][:n], ring.ys[slot][:n]
                finally:   # the consumer has queued its reads of this slot (or closed)
                    self._release(ring, slot, stream, proc)
        finally:
            if proc is self.proc:   # else this ring died with its process
                if not done and proc.is_alive():
                    self.requests.put(("stop", ring.id, None))
                    while self._get(ring.id, proc)[0] != "stopped":
                        pass
                self.inbox.pop(ring.id, None)
                self.idle.append(ring)

    def close(self) -> None:
        """Stop the child (also done when this object is collected, or the trainer exits)."""
        if self.proc is not None:
            self._stop()
            self.proc = None


def _shutdown(proc, requests) -> None:
    if proc.is_alive():
        requests.put(None)
        proc.join(timeout=10)
    if proc.is_alive():
        proc.kill()
    requests.cancel_join_thread()   # nobody reads what is left: exiting must not wait on it


class _Producer:
    """The child's side of one channel: a thread writing a request's batches into free slots."""

    def __init__(self, pipe, ch: int, rings: tuple, replies):
        self.pipe, self.ch, self.replies = pipe, ch, replies
        self.xs, self.ys, self.wait = rings
        self.ready = ([torch.cuda.Event(interprocess=True) for _ in self.xs]
                      if pipe.cuda else None)
        self.thread, self.free = None, queue.Queue()
        self.halt = threading.Event()
        replies.put(("opened", ch, self.ready))

    def start(self, request: tuple) -> None:
        self.halt.clear()
        self.free = queue.Queue()
        for s in range(len(self.xs)):
            self.free.put(s)
        self.thread = threading.Thread(target=self._run, args=(request,), daemon=True,
                                       name=f"dsd-decode-{self.ch}")
        self.thread.start()

    def stop(self) -> None:
        self.halt.set()
        if self.thread is not None:
            self.thread.join()

    def _slot(self) -> int | None:
        while not self.halt.is_set():
            try:
                return self.free.get(timeout=0.05)
            except queue.Empty:
                continue
        return None

    def _run(self, request: tuple) -> None:
        cuda = self.pipe.cuda
        stream = torch.cuda.Stream(self.pipe.device) if cuda else None
        try:
            with torch.cuda.stream(stream) if cuda else nullcontext():
                for x, y in self.pipe.batches(*request):
                    if (s := self._slot()) is None:
                        return
                    if cuda:   # the trainer's reads of this slot come first
                        stream.wait_event(self.wait[s])
                    n = len(y)
                    self.xs[s][:n].copy_(x)
                    self.ys[s][:n].copy_(y)
                    if cuda:
                        self.ready[s].record(stream)
                    self.replies.put(("ready", self.ch, (s, n)))
            self.replies.put(("end", self.ch, None))
        except Exception as e:  # noqa: BLE001 — the trainer raises it in the model
            self.replies.put(("error", self.ch, str(e) if isinstance(e, DsdError)
                              else f"decode process: {type(e).__name__}: {e}"))
            if cuda and not _synced(stream):  # a sticky CUDA error: the trainer restarts us
                self.replies.close()
                self.replies.join_thread()
                os._exit(1)
        finally:
            if cuda:   # no write of this run may land in the next run's slots
                _synced(stream)


def _synced(stream) -> bool:
    """Wait for `stream`; False after a sticky CUDA error (the context is lost)."""
    try:
        stream.synchronize()
        return True
    except Exception:  # noqa: BLE001
        return False


def serve(device: str, train: list, val: list, kw: dict, requests, replies) -> None:
    """Child process entry: build the pipeline, then serve requests until None."""
    os.environ["CUDA_DEVICE_MAX_CONNECTIONS"] = str(DECODER_QUEUES)  # before any CUDA call
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the trainer decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a scheduler signals the whole group
    die_with_parent()
    from .imagenet import Pipeline

    try:
        dev = torch.device(device)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        pipe = Pipeline(dev, train, val, **kw)
    except Exception as e:  # noqa: BLE001
        replies.put(("fatal", None, f"{type(e).__name__}: {e}"))
        return
    replies.put(("up", None, None))
    channels: dict[int, _Producer] = {}
    while (msg := requests.get()) is not None:
        kind, ch, payload = msg
        if kind == "open":
            channels[ch] = _Producer(pipe, ch, payload, replies)
        elif kind == "start":
            channels[ch].start(payload)
        elif kind == "free":
            channels[ch].free.put(payload)
        elif kind == "stop":
            channels[ch].stop()
            replies.put(("stopped", ch, None))
    for p in channels.values():
        p.stop()
