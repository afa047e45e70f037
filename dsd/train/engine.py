"""Train one model: build, resume from its checkpoint, run epochs, evaluate, classify the outcome.

On CUDA the whole step (forward, backward, SGD update with a tensor lr) is captured once as a CUDA
graph after a few eager warm-up steps and replayed (bf16 autocast, channels_last); where capture
fails the model trains eagerly and `exec_path` says so. On CPU: fp32, eager. After every epoch a
checkpoint is written atomically, so a killed run loses at most the epoch in progress; a model
stopped on purpose (Ctrl-C, SIGTERM, a `--max-time` deadline) writes one at the step it reached
and resumes from that step, with the data of the rest of its epoch exactly as they would have been.
"""
from __future__ import annotations

import itertools
import math
import os
import signal
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import provenance
from ..chance import chance_margin  # torch-free, shared with the analyses
from ..model import build
from ..spec import ModelSpec, chance_error
from .optim import TensorSGD, lr_at, param_groups
from .recipes import Recipe

WARMUP_STEPS = 3        # eager steps before capture (cuDNN algorithm choice, lazy allocations)
REPORT_EVERY = 1.0      # seconds between progress records inside an epoch


def _lost_loss(final: dict, epoch: int, exec_path: str) -> dict:
    """A cross-entropy loss of exactly 0.0 (at the first step, or summed over an epoch) means
    the loss was not accumulated, not that it vanished. Seen once on the graph path (a resumed
    model whose test error fell to 18 % while its loss read 0.0; cause not found): the model
    fails visibly rather than being called collapsed."""
    return {**final, "status": "failed", "epoch": epoch, "exec_path": exec_path,
            "error": f"train loss read 0.0 in epoch {epoch}: it was not accumulated (a "
                     f"measurement fault, not the model's); train it again with --retry-failed"}


@dataclass
class Job:
    """One (model, dataset, recipe) to train; everything a worker process needs, picklable."""

    result_id: int
    sweep: str
    index: int
    spec_json: str
    flops: int
    seed: int
    dataset: str
    recipe: dict
    ckpt: str
    eager: bool = False
    crashes: int = 0            # worker processes that died holding this job (coordinator)
    kernels: tuple = ()         # dsd's own layers to use on CUDA (`kernels/`)
    loader: str = "auto"        # ImageNet input pipeline: auto, gpu, cpu (`imagenet.py`)
    meta: dict = field(default_factory=dict)


#: CUDA hardware work queues (CUDA_DEVICE_MAX_CONNECTIONS; CUDA's default is 8 per process) that
#: the worker processes sharing a GPU split among them. With 8, the gpu loader's many small nvjpeg
#: calls likely waited behind training work queued on a shared queue when it decoded in the
#: training process (regnetx-400mf alone: 4,435 img/s against 5,494 with 32). Under MPS on an
#: H200, clients holding 96 and 112 queues in all started, a client past 112 did not
#: (BENCHMARKS.md); the coordinator retries such a worker with 8.
QUEUES_PER_GPU = 96
DECODER_QUEUES = 4   # of a `gpu` loader's decode process (`decoder.py`): nothing trains there


def hardware_queues(processes: int) -> int:
    """Queues for each of `processes` worker processes on one GPU: their share of
    QUEUES_PER_GPU after each one's decode process has its DECODER_QUEUES, within CUDA's 8
    to 32."""
    n = max(1, processes)
    return min(32, max(8, (QUEUES_PER_GPU - n * DECODER_QUEUES) // n))


def die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies, so no orphan keeps training (and writing)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def use_gpu(device: torch.device, queues: int | None = None) -> None:
    """Bind this worker process to `device` with `queues` hardware queues (None, or the user's
    CUDA_DEVICE_MAX_CONNECTIONS: CUDA's), cuDNN choosing algorithms by its heuristics.
    Autotuning cost 6-20 s per model at start-up and won back at most 4 s of a 10-epoch run
    (BENCHMARKS.md, `bench_train.py startup`)."""
    if queues is not None:   # read when the context is made, by set_device or the first kernel
        os.environ.setdefault("CUDA_DEVICE_MAX_CONNECTIONS", str(queues))
    if device.index is not None:  # a bare "cuda" means the current device
        torch.cuda.set_device(device)
    torch.backends.cudnn.benchmark = False


def is_collapsed(history: list[dict], loss0: float, num_classes: int, *,
                 warmup_epochs: float = 0.0, n_test: int | None = None) -> bool:
    """Whether a finished training did not learn (status `collapsed`):

    - chance-level error: the final top-1 error >= chance_error − chance_margin, or
    - no loss drop: the mean train loss of the last half of the last epoch that lies wholly
      after the warm-up is not below 0.99 × the first step's loss. During warm-up the learning
      rate rises and the loss may rise with it, so warm-up epochs are never judged by loss
      (a 1-epoch run with a 1-epoch warm-up is judged by its error alone).
    """
    last = history[-1]
    if last["top1"] >= chance_error(num_classes) - chance_margin(num_classes, n_test):
        return True
    judged = [h for h in history if h["epoch"] - 1 >= warmup_epochs]
    if not judged:
        return False
    h = judged[-1]
    return h.get("tail_loss", h["train_loss"]) >= 0.99 * loss0


def _test_size(data) -> int | None:
    """Test images of a data source (CIFAR, synthetic: `test_size`; ImageNet: `val`)."""
    n = getattr(data, "test_size", None)
    return n if n is not None else (len(data.val) if hasattr(data, "val") else None)


class Stepper:
    """One training step, eager or replayed from a CUDA graph, under autocast to `amp` (a dtype;
    None: full precision); accumulates the loss on device."""

    def __init__(self, model, opt: TensorSGD, *, amp: torch.dtype | None, graph: bool, device):
        self.model, self.opt, self.amp, self.device = model, opt, amp, device
        self.loss_acc = torch.zeros((), device=device)
        self.use_graph, self.graph, self.calls = graph, None, 0
        self.exec_path = "graph" if graph else "eager"
        self.side = None  # the stream this model warms up and captures on (`_own_stream`)

    def _forward_backward(self, x, y) -> None:
        with torch.autocast(self.device.type, dtype=self.amp or torch.bfloat16,
                            enabled=self.amp is not None, cache_enabled=False):
            loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        self.loss_acc.add_(loss.detach().float())

    def __call__(self, x, y) -> None:
        self.calls += 1
        if self.graph is not None:
            self.static_x.copy_(x)
            self.static_y.copy_(y)
            self.graph.replay()
            return
        if not self.use_graph or self.calls <= WARMUP_STEPS:
            self.opt.zero_grad()
            if self.use_graph:  # warm up off the default stream, as torch.cuda.graphs requires
                with self._on_own_stream():
                    self._forward_backward(x, y)
            else:
                self._forward_backward(x, y)
            return
        self._capture(x, y)

    def _own_stream(self) -> torch.cuda.Stream:
        """This model's stream for warm-up and capture: the current one (a worker's lane), or,
        on the default stream, a side stream of its own. Never a stream another running model
        uses: cuBLAS keys its workspace by (handle, stream), so graphs captured on one stream
        (torch's default capture stream, before the fifth session) share a workspace, and two
        of them replayed at once on two streams race on it (BENCHMARKS.md, memory faults)."""
        current = torch.cuda.current_stream(self.device)
        if not current == torch.cuda.default_stream(self.device):
            return current
        if self.side is None:
            self.side = torch.cuda.Stream(self.device)
        return self.side

    @contextmanager
    def _on_own_stream(self):
        current, own = torch.cuda.current_stream(self.device), self._own_stream()
        if own == current:
            yield
            return
        own.wait_stream(current)
        with torch.cuda.stream(own):
            yield
        current.wait_stream(own)

    def _capture(self, x, y) -> None:
        self.static_x = torch.empty_like(x).copy_(x)
        self.static_y = y.clone()
        self.opt.zero_grad()
        graph = torch.cuda.CUDAGraph()
        try:
            # thread-local: a loader's thread (the cpu loader's pin-memory thread) may use CUDA
            with self._on_own_stream(), torch.cuda.graph(graph, stream=self._own_stream(),
                                                         capture_error_mode="thread_local"):
                self._forward_backward(self.static_x, self.static_y)
        except Exception:  # capture impossible (unsupported op): train eagerly, say so
            torch.cuda.synchronize(self.device)
            self.use_graph, self.exec_path = False, "eager"
            self.opt.zero_grad()
            self._forward_backward(x, y)
            return
        self.graph = graph
        graph.replay()  # capture does not run the step: run it now


@torch.no_grad()
def evaluate(model, data, *, bf16: bool, device) -> tuple[float, float]:
    """Top-1 and top-5 test error (%) with BN running statistics (top-k over all classes
    where a dataset has fewer than 5: its top-5 error is then 0)."""
    model.eval()
    wrong1 = torch.zeros((), device=device, dtype=torch.long)
    wrong5 = torch.zeros_like(wrong1)
    n = 0
    for x, y in data.test():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x).float()
            top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
        wrong1 += (top5[:, 0] != y).sum()
        wrong5 += (top5 != y[:, None]).all(dim=1).sum()
        n += len(y)
    model.train()
    return 100.0 * wrong1.item() / n, 100.0 * wrong5.item() / n


def save_checkpoint(path: str, model, opt: TensorSGD, state: dict) -> None:
    """Write atomically (temp file + os.replace): a kill never leaves half a checkpoint."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), **state}, tmp)
    os.replace(tmp, path)


def device_name(device: torch.device, bf16: bool) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return f"{name} {'bf16' if bf16 else 'fp32'}"


def drive(steps: Generator[None, None, dict]) -> dict:
    """Run a step generator (`train_steps`) to its end; its final record."""
    while True:
        try:
            next(steps)
        except StopIteration as end:
            return end.value


class Clock:
    """The time limit of one model: whether the next epoch (`passes`) or the next step
    (`step_passes`, from the time between this model's last two steps, which counts the steps
    of models interleaved with it) would end past `deadline` (None: no limit)."""

    def __init__(self, deadline: float | None):
        self.deadline, self.prev, self.dt = deadline, None, 0.0

    def passes(self, seconds: float | None) -> bool:
        return bool(self.deadline and seconds and time.time() + seconds > self.deadline)

    def step_passes(self) -> bool:
        now = time.time()
        if self.prev is not None:
            self.dt = now - self.prev
        self.prev = now
        return bool(self.deadline and now + self.dt > self.deadline)


def epoch_batches(data, seed: int, epoch: int, start: int):
    """The batches of an epoch from step `start` on: the same batches an uninterrupted epoch
    would give. Sources that can seek (`seeks = True`, CIFAR-10 on the device) start there;
    others draw and drop the first `start` batches, which keeps their random state exact."""
    if start == 0:
        return data.train_epoch(seed, epoch)
    if getattr(data, "seeks", False):
        return data.train_epoch(seed, epoch, start=start)
    return itertools.islice(data.train_epoch(seed, epoch), start, None)


def train_steps(job: Job, data, *, device: torch.device, emit: Callable[[str, dict], None],
                should_stop: Callable[[], bool] = lambda: False,
                deadline: float | None = None) -> Generator[None, None, dict]:
    """Train `job` on `data` as a generator: it yields after every training step (so one process
    can interleave several models, each on its own CUDA stream), emits 'epoch' and 'images'
    records, and returns the final record (`drive` runs it to the end).

    Final status: done, diverged (NaN/inf loss), collapsed (see `is_collapsed`) or stopped
    (asked to stop, or the next step or epoch would end past `deadline`: a checkpoint of the
    step reached is written, and the next run resumes from it).
    """
    recipe = Recipe(**job.recipe)
    cuda = device.type == "cuda"
    bf16 = recipe.precision == "bf16" or (recipe.precision == "auto" and cuda)
    torch.manual_seed(job.seed)
    model = build(ModelSpec.from_json(job.spec_json), zero_init_last_bn=recipe.zero_init_last_bn)
    kernels = ()
    if job.kernels and cuda:
        from .kernels import swap_kernels

        kernels = swap_kernels(model, job.kernels)
    model = model.to(device, memory_format=torch.channels_last if cuda else torch.preserve_format)
    opt = TensorSGD(param_groups(model, recipe), lr=recipe.lr, momentum=recipe.momentum,
                    nesterov=recipe.nesterov, device=device)
    state = {"history": [], "seconds": 0.0, "loss0": None, "pos": None}
    if os.path.exists(job.ckpt):
        # read on the CPU and copied into the model's own tensors: resuming allocates nothing
        # on the GPU (the study's memory faults all came right after resumes, BENCHMARKS.md)
        saved = torch.load(job.ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        state = {k: saved.get(k) for k in state}
        del saved
    for rec in state["history"]:
        emit("epoch", rec)  # idempotent in the store: a kill between checkpoint and record is fine
    step = Stepper(model, opt, amp=torch.bfloat16 if bf16 else None,
                   graph=cuda and not job.eager, device=device)
    spe, total = data.steps_per_epoch, recipe.epochs * data.steps_per_epoch
    final = {"device": device_name(device, bf16), "exec_path": step.exec_path,
             "loader": getattr(data, "loader", job.dataset),
             "provenance": provenance.run(  # exec_path updated by the coordinator at the end
                 device=device_name(device, bf16), exec_path=step.exec_path,
                 kernels=kernels, precision="bf16" if bf16 else "fp32", cuda=cuda,
                 loader=getattr(data, "loader", job.dataset))}
    clock = Clock(deadline)
    for epoch in range(len(state["history"]), recipe.epochs):
        pos = state["pos"] or {"epoch": epoch, "step": 0, "loss": 0.0, "half": 0.0,
                               "seconds": 0.0}
        state["pos"] = None
        last = state["history"][-1]["seconds"] if state["history"] else None
        if pos["step"] == 0 and (should_stop() or clock.passes(last)):
            return {**final, "status": "stopped"}
        t0 = shown = time.time() - pos["seconds"]
        half = pos["half"]
        step.loss_acc.fill_(pos["loss"])
        seen = pos["step"] * data.batch_size  # images already reported to the progress bar
        i = pos["step"] - 1
        for i, (x, y) in enumerate(epoch_batches(data, job.seed, epoch, pos["step"]),
                                   pos["step"]):
            opt.lr.fill_(lr_at(recipe, epoch * spe + i, total, spe))
            step(x, y)
            yield
            if state["loss0"] is None:
                state["loss0"] = step.loss_acc.item()
                if state["loss0"] == 0.0:
                    return _lost_loss(final, epoch + 1, step.exec_path)
            if i == spe // 2 - 1:
                half = step.loss_acc.item()  # one sync per epoch: splits off the last half
            if i < spe - 1 and (should_stop() or clock.step_passes()):
                # checkpoint the step reached: the run resumes here, not at the epoch's start
                state["pos"] = {"epoch": epoch, "step": i + 1, "loss": step.loss_acc.item(),
                                "half": half, "seconds": time.time() - t0}
                save_checkpoint(job.ckpt, model, opt, state)
                emit("images", {"n": (i + 1) * data.batch_size - seen, "of": spe * data.batch_size})
                return {**final, "status": "stopped"}
            if time.time() - shown > REPORT_EVERY:
                emit("images", {"n": (i + 1) * data.batch_size - seen, "of": spe * data.batch_size})
                seen, shown = (i + 1) * data.batch_size, time.time()
        total_loss = step.loss_acc.item()
        loss = total_loss / spe
        tail = (total_loss - half) / (spe - spe // 2) if spe > 1 else loss
        emit("images", {"n": spe * data.batch_size - seen, "of": spe * data.batch_size})
        if total_loss == 0.0:
            return _lost_loss(final, epoch + 1, step.exec_path)
        if not math.isfinite(loss):
            return {**final, "status": "diverged", "train_loss": loss, "epoch": epoch + 1,
                    "exec_path": step.exec_path,
                    "error": f"train loss {loss} at epoch {epoch + 1}"}
        t_eval = time.time()
        top1, top5 = evaluate(model, data, bf16=bf16, device=device)
        ended = time.time()
        rec = {"epoch": epoch + 1, "train_loss": loss, "top1": top1, "top5": top5,
               "lr": lr_at(recipe, epoch * spe, total, spe), "seconds": ended - t0,
               "eval_seconds": ended - t_eval, "tail_loss": tail}
        state["history"].append(rec)
        state["seconds"] += rec["seconds"]
        save_checkpoint(job.ckpt, model, opt, state)
        emit("epoch", rec)
    last = state["history"][-1]
    collapsed = is_collapsed(state["history"], state["loss0"], data.num_classes,
                             warmup_epochs=recipe.warmup_epochs,
                             n_test=_test_size(data))
    return {**final, "status": "collapsed" if collapsed else "done", "top1": last["top1"],
            "top5": last["top5"], "train_loss": last["train_loss"], "seconds": state["seconds"],
            "exec_path": step.exec_path}
