"""What produced a result: the software (dsd version and git commit, Python, torch, CUDA, cuDNN)
and the run (device, execution path, dsd's own layers, precision, data loader, MPS, hardware
queues). Stored with every result (JSON, results.provenance), carried by `dsd export` /
`export-population`, and compared across sweeps by `analysis.compare.provenance_warnings`.
The recipe hash, not this, decides which results are comparable; this says how the numbers
were obtained.
"""
from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path

#: Keys compared across sweeps (one warning line per key that differs).
COMPARED = ("dsd", "commit", "torch", "cuda", "cudnn", "device", "exec_path", "kernels",
            "precision", "loader", "mps")


@functools.lru_cache(maxsize=None)
def git_commit(root: str | None = None) -> str | None:
    """The checkout's commit (+ '-dirty' with uncommitted changes to tracked files), or None
    outside a git checkout."""
    root = root or str(Path(__file__).resolve().parent.parent)
    if not (Path(root) / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sha.strip() + ("-dirty" if dirty.strip() else "")


@functools.lru_cache(maxsize=None)
def environment() -> dict:
    """Versions of this process (computed once per worker): dsd, its commit, Python, torch,
    CUDA and cuDNN (None without them)."""
    from . import __version__

    env = {"dsd": __version__, "commit": git_commit(), "python": platform.python_version()}
    try:
        import torch
    except ImportError:
        return {**env, "torch": None, "cuda": None, "cudnn": None}
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {**env, "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": str(cudnn) if cudnn else None}


def run(*, device: str, exec_path: str, kernels, precision: str, loader: str,
        cuda: bool) -> dict:
    """The provenance of one training result: `environment()` plus how this run went.

    `kernels` are dsd's own layers in use (only on CUDA), `loader` the data source's `loader`
    attribute ("device", "gpu", "cpu", "synthetic"), MPS whether a CUDA MPS daemon served this
    worker, queues its CUDA hardware work queues (`engine.hardware_queues`; None on the CPU)."""
    mps = cuda and ("CUDA_MPS_PIPE_DIRECTORY" in os.environ
                    or Path("/tmp/nvidia-mps/control").exists())
    queues = int(os.environ.get("CUDA_DEVICE_MAX_CONNECTIONS", 8)) if cuda else None
    return {**environment(), "device": device, "exec_path": exec_path,
            "kernels": ",".join(kernels) if cuda and kernels else "none",
            "precision": precision, "loader": loader, "mps": bool(mps), "queues": queues}
