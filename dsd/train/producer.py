"""Batches of a data source prepared ahead of training, so decoding overlaps the steps.

- `Prefetched`: a producer thread in the training process, on a CUDA stream of its own.
- `ProducerProcess`: a spawned process with its own interpreter and CUDA client (an MPS client
  under dsd's daemon). On an H200, a GPU-load thread in the decoding process slowed nvjpeg's
  batch decode from 18 to 516 ms, while the same load in another process left it at 19 ms
  (BENCHMARKS.md); a process keeps the training loop's Python and CUDA calls out of the
  decoder's way. Batches cross as shared tensors (CUDA IPC, or shared memory on the CPU).
"""
from __future__ import annotations

import pickle
import queue
import threading
from collections import deque
from typing import Iterator

import torch

from ..errors import DsdError

PREFETCH = 2   # batches a producer prepares ahead of training
HELD = 4       # batches a consumer keeps referenced until its stream has used them
STOP = 0       # the pass id that ends a producer process
Batch = tuple[torch.Tensor, torch.Tensor]


class Prefetched:
    """Runs a batch generator on a producer thread and its own CUDA stream, PREFETCH batches
    ahead; the consumer's current stream waits on each batch's event. An exception in the
    producer is raised in the consumer; closing the consumer stops the producer."""

    def __init__(self, produce, chunks, geometry, device):
        self.q: queue.Queue = queue.Queue(maxsize=PREFETCH)
        self.stop, self.device = threading.Event(), device
        self.thread = threading.Thread(target=self._run, args=(produce, chunks, geometry),
                                       daemon=True, name="dsd-decode")
        self.thread.start()

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, produce, chunks, geometry) -> None:
        stream = torch.cuda.Stream(self.device)
        try:
            with torch.cuda.stream(stream):
                for x, y in produce(chunks, geometry):
                    ev = torch.cuda.Event()
                    ev.record(stream)
                    if not self._put((x, y, ev)):
                        return
            self._put(None)
        except BaseException as e:  # noqa: BLE001 — handed to the consumer
            self._put(e)

    def __iter__(self) -> Iterator[Batch]:
        try:
            while (item := self.q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                x, y, ev = item
                current = torch.cuda.current_stream(self.device)
                current.wait_event(ev)
                x.record_stream(current)
                y.record_stream(current)
                yield x, y
        finally:
            self.stop.set()
            self.thread.join()


class ProducerProcess:
    """The passes of a data source (`GpuImageData.passes`) produced in a spawned process.

    `run(kind, args)` yields that pass's batches in order. Each pass has an id; a consumer that
    stops early moves the shared `current` id on, the producer drops the rest of that pass, and
    the next pass skips batches of older ones. The producer synchronizes its stream before
    sending a batch; the consumer keeps each batch referenced until an event recorded on its
    stream after the batch's use has completed, since the memory is the producer's. An error
    in the producer (a file that cannot be decoded) is raised in the consumer; a producer that
    dies is reported as a DsdError."""

    def __init__(self, state: dict):
        import torch.multiprocessing as tmp

        ctx = tmp.get_context("spawn")
        self.cmd, self.out = ctx.Queue(), ctx.Queue(maxsize=PREFETCH)
        self.current = ctx.Value("q", -1)
        self.passes = STOP
        self.device = torch.device(state["device"])
        self.proc = ctx.Process(target=_serve, args=(state, self.cmd, self.out, self.current),
                                daemon=True, name="dsd-decode")
        self.proc.start()

    def _get(self):
        while True:
            try:
                return self.out.get(timeout=1.0)
            except queue.Empty:
                if not self.proc.is_alive():
                    raise DsdError(f"the decoding process exited (code {self.proc.exitcode})"
                                   ) from None

    def run(self, kind: str, args: tuple) -> Iterator[Batch]:
        self.passes += 1
        pid = self.passes
        self.current.value = pid
        self.cmd.put((pid, kind, args))
        cuda = self.device.type == "cuda"
        held: deque = deque()
        try:
            while True:
                tag, payload = self._get()
                if tag != pid:
                    continue   # left over from a pass its consumer stopped early
                if payload is None:
                    return
                if isinstance(payload, BaseException):
                    raise payload
                yield payload
                ev = None
                if cuda:   # the consumer has queued its use of the batch by now
                    ev = torch.cuda.Event()
                    ev.record(torch.cuda.current_stream(self.device))
                held.append((payload, ev))
                while held and (len(held) > HELD or held[0][1] is None or held[0][1].query()):
                    _, e = held.popleft()
                    if e is not None:
                        e.synchronize()
        finally:
            if self.current.value == pid:
                self.current.value = -1
            for _, e in held:
                if e is not None:
                    e.synchronize()

    def close(self) -> None:
        self.current.value = -1
        self.cmd.put((STOP, None, None))
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join()


def _offer(out, current, pid: int, payload, parent=None) -> bool:
    """Put (pid, payload) while pass `pid` is still wanted; False once the consumer moved on
    or its process is gone."""
    while current.value == pid and (parent is None or parent.is_alive()):
        try:
            out.put((pid, payload), timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _picklable(e: BaseException) -> BaseException:
    try:
        pickle.dumps(e)
        return e
    except Exception:  # noqa: BLE001 — e.g. an exception holding a lock or a CUDA handle
        return RuntimeError(f"{type(e).__name__}: {e}")


def _serve(state: dict, cmd, out, current) -> None:
    """The producer process: rebuild the data source, then produce each pass it is sent."""
    import multiprocessing as mp

    from .imagenet import GpuImageData

    out.cancel_join_thread()   # exit without waiting for a consumer that stopped reading
    data = GpuImageData.from_state(state)
    parent = mp.parent_process()
    while True:
        try:
            pid, kind, args = cmd.get(timeout=1.0)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                return
            continue
        if pid == STOP:
            return
        try:
            for x, y in data._produce(*data.passes(kind, *args)):
                if data.cuda:   # sent once complete: the pickling thread is not on our stream
                    torch.cuda.current_stream(data.device).synchronize()
                ok = _offer(out, current, pid, (x, y), parent)
                del x, y
                if data.cuda:
                    torch.cuda.ipc_collect()   # free sent batches the consumer has released
                if not ok:
                    break
            else:
                _offer(out, current, pid, None, parent)
        except BaseException as e:  # noqa: BLE001 — raised in the consumer
            _offer(out, current, pid, _picklable(e), parent)
