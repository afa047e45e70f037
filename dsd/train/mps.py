"""A private CUDA MPS daemon for one `dsd train`: with it, the kernels of a GPU's worker processes
run side by side instead of in time slices, and a small CNN's kernels fill little of an H100
(+42 % img/s at 8 models in 4 processes on one H100, BENCHMARKS.md)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import DsdError

CONTROL = "nvidia-cuda-mps-control"
SYSTEM_PIPE = Path("/tmp/nvidia-mps")   # where a system-wide MPS daemon listens by default


@contextmanager
def mps(mode: bool | None, note=print):
    """Yield whether the workers spawned inside run under a private MPS daemon.

    `mode` True: start one or raise DsdError; False: none; None (auto): start one where the
    control program exists and no MPS daemon serves this user yet, else none (a `note` says why
    if starting failed). The daemon keeps this process's CUDA_VISIBLE_DEVICES and the workers get
    none: an MPS client numbers devices among those its server sees, so cuda:0..n-1 stay right."""
    exe = shutil.which(CONTROL)
    if mode is False or (mode is None and (exe is None or "CUDA_MPS_PIPE_DIRECTORY" in os.environ
                                           or (SYSTEM_PIPE / "control").exists())):
        yield False
        return
    try:
        root, env = _start(exe)
    except DsdError as e:
        if mode:
            raise
        note(f"{e}; worker processes time-share each GPU instead")
        yield False
        return
    saved = {k: os.environ.get(k) for k in (*env, "CUDA_VISIBLE_DEVICES")}
    daemon_env = {**os.environ, **env}
    try:
        os.environ.update(env)
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        yield True
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        subprocess.run([exe], input="quit\n", env=daemon_env, capture_output=True, text=True,
                       timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def _start(exe: str | None) -> tuple[Path, dict[str, str]]:
    """`nvidia-cuda-mps-control -d` with pipe and log folders of its own: (root, their env)."""
    if exe is None:
        raise DsdError(f"--mps: {CONTROL} is not on PATH (it comes with the NVIDIA driver)")
    root = Path(tempfile.mkdtemp(prefix="dsd-mps-"))
    env = {"CUDA_MPS_PIPE_DIRECTORY": str(root / "pipe"),
           "CUDA_MPS_LOG_DIRECTORY": str(root / "log")}
    for d in env.values():
        Path(d).mkdir()
    r = subprocess.run([exe, "-d"], env={**os.environ, **env}, capture_output=True, text=True,
                       timeout=60)
    if r.returncode:
        shutil.rmtree(root, ignore_errors=True)
        raise DsdError(f"--mps: `{CONTROL} -d` failed ({r.returncode}): "
                       f"{(r.stderr or r.stdout).strip() or 'no message'}")
    return root, env
