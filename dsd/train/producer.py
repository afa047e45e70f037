"""Batches of a data source prepared ahead of training on a producer thread, so decoding
overlaps the steps."""
from __future__ import annotations

import queue
import threading
from typing import Iterator

import torch

PREFETCH = 2   # batches a producer prepares ahead of training
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
