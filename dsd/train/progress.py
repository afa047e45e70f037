"""The `dsd train` display: one rich progress bar (models done/total, img/s, ETA) and one line
per finished model (sweep, index, flops, final top-1 error, seconds, status, execution path),
e.g. `anynetxa-cifar10-s0 #3       118.2MF  error  18.90%    41.2s  done (graph)`; the same
lines, and every note, go to the run's log file (plain text, each line timestamped) when one is
given, so what a run printed survives the terminal it ran in (a batch job, a closed ssh)."""
from __future__ import annotations

import time
from collections import deque
from contextlib import contextmanager

from rich.console import Console
from rich.text import Text
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..store import IMAGE_LOADERS

STYLE = {"done": "green", "collapsed": "yellow", "diverged": "yellow", "failed": "red",
         "pending": "dim"}


class TrainProgress:
    """Counts epochs (the bar), models and images; the coordinator calls it, nothing else does."""

    def __init__(self, console: Console | None = None, log=None):
        self.console = console or Console()
        self.log = log  # a text file open for appending, or None
        self.window: deque[tuple[float, int]] = deque()
        self.images_total = 0
        self.partial: dict = {}  # model → fraction of its current epoch already on the bar
        self.models_done = self.models_total = 0
        self.bar: Progress | None = None
        self.task = None
        self.started = time.time()

    @contextmanager
    def live(self, models: int, epochs: int):
        self.models_total, self.started = models, time.time()
        self.bar = Progress(TextColumn("[bold]train"), BarColumn(),
                            TextColumn("models {task.fields[done]}/{task.fields[models]}"),
                            TextColumn("{task.fields[ips]} img/s"), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=self.console,
                            transient=False)
        self.task = self.bar.add_task("train", total=max(epochs, 1), done=0, models=models,
                                      ips="-")
        with self.bar:
            yield self

    def epoch(self, model=None) -> None:
        """An epoch of `model` ended: the bar advances by what its image reports left."""
        self.bar.advance(self.task, max(0.0, 1.0 - self.partial.pop(model, 0.0)))

    def images(self, n: int, model=None, of: int | None = None) -> None:
        """`n` more images trained since the last report: img/s over the last 15 s, and the
        bar (in epochs) advanced by n/`of` (the epoch's images) so that it and the ETA move
        within an epoch, as a model on a CPU takes minutes for one.

        A report covers the time since the one before it (or since the bar started), so the
        rate shows from the first report on, also when a resumed run reports rarely."""
        if of:
            step = min(n / of, 1.0 - self.partial.get(model, 0.0))
            self.partial[model] = self.partial.get(model, 0.0) + step
            self.bar.advance(self.task, step)
        now = time.time()
        self.images_total += n
        self.window.append((now, n))
        while len(self.window) > 1 and now - self.window[1][0] > 15:
            self.window.popleft()   # window[0] only marks where the span starts
        start = self.window[0][0] if len(self.window) > 1 else self.started
        images = sum(k for _, k in self.window) - (self.window[0][1] if len(self.window) > 1
                                                   else 0)
        if now - start > 0.2:
            self.bar.update(self.task, ips=f"{images / (now - start):,.0f}")

    def model_done(self, sweep: str, index: int, flops: int, final: dict) -> None:
        status = final["status"]
        if status != "pending":
            self.models_done += 1
        self.bar.update(self.task, done=self.models_done)
        top1 = final.get("top1")  # the store's name; it holds the top-1 *error*
        err = f"error {top1:6.2f}%" if top1 is not None else "error    -   "
        secs = final.get("seconds")
        secs = f"{secs:7.1f}s" if secs is not None else "      -"
        # the execution path, and for ImageNet the input pipeline that ran (e.g. gpu loader)
        path = ", ".join(v for v in (final.get("exec_path"), final.get("loader") in IMAGE_LOADERS
                                     and f"{final['loader']} loader") if v)
        note = f" ({path})" if path and status != "failed" else ""
        if status == "failed":
            note = f": {final.get('error', '').splitlines()[0][:100]}"
        if status == "diverged":
            note += f": {final.get('error', '')}"
        line = f"{sweep} #{index:<4d} {flops / 1e6:8.1f}MF  {err}  {secs}  "
        self.bar.console.print(f"{line}[{STYLE.get(status, '')}]{status}[/]{note}",
                               highlight=False)
        self.write(f"{line}{status}{note}")

    def note(self, text: str) -> None:
        (self.bar.console if self.bar else self.console).print(text, highlight=False)
        self.write(Text.from_markup(text).plain)

    def write(self, line: str) -> None:
        """One timestamped line in the log file (flushed: a killed run keeps what it wrote)."""
        if self.log is not None:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            self.log.write(f"{stamp}Z {line}\n")
            self.log.flush()
