"""A private CUDA MPS daemon for one `dsd train`: with it, the kernels of a GPU's worker processes
run side by side instead of in time slices, and a small CNN's kernels fill little of an H100."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import DsdError

CONTROL = "nvidia-cuda-mps-control"


@contextmanager
def mps_daemon():
    """Start an MPS control daemon with its own pipe and log folders, point this process's
    environment (inherited by the workers it spawns) at it, and quit it on exit."""
    exe = shutil.which(CONTROL)
    if exe is None:
        raise DsdError(f"--mps: {CONTROL} is not on PATH (it comes with the NVIDIA driver); "
                       "train without --mps")
    root = Path(tempfile.mkdtemp(prefix="dsd-mps-"))
    env = {"CUDA_MPS_PIPE_DIRECTORY": str(root / "pipe"),
           "CUDA_MPS_LOG_DIRECTORY": str(root / "log")}
    for d in env.values():
        Path(d).mkdir()
    full = {**os.environ, **env}
    r = subprocess.run([exe, "-d"], env=full, capture_output=True, text=True, timeout=60)
    if r.returncode:
        shutil.rmtree(root, ignore_errors=True)
        raise DsdError(f"--mps: `{CONTROL} -d` failed ({r.returncode}): "
                       f"{(r.stderr or r.stdout).strip() or 'no message'}")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield root
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        subprocess.run([exe], input="quit\n", env=full, capture_output=True, text=True,
                       timeout=120)
        shutil.rmtree(root, ignore_errors=True)
