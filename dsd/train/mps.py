"""A private CUDA MPS daemon for one `dsd train`: with it, the kernels of a GPU's worker processes
run side by side instead of in time slices, and a small CNN's kernels fill little of an H100
(+42 % img/s at 8 models in 4 processes on one H100, BENCHMARKS.md). A watcher process quits
the daemon when its `dsd train` dies without doing so (SIGKILL)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import DsdError

CONTROL = "nvidia-cuda-mps-control"
SYSTEM_PIPE = Path("/tmp/nvidia-mps")   # where a system-wide MPS daemon listens by default
PREFIX = "dsd-mps-"                     # <tmp>/dsd-mps-*/{pipe,log,owner}: one per dsd train


@contextmanager
def mps(mode: bool | None, note=print, devices: int = 1):
    """Yield whether the workers spawned inside run under a private MPS daemon.

    `mode` True: start one or raise DsdError; False: none; None (auto): start one where the
    control program exists and no MPS daemon (system-wide or another dsd train's) serves yet,
    else none, with a `note` saying why where that is not obvious. The daemon keeps this
    process's CUDA_VISIBLE_DEVICES (`devices` GPUs); an MPS client numbers devices among those
    its server sees, so the workers get the mask 0..devices-1 (none where the user set none).
    Not none under a mask: PyTorch counts devices through NVML, which ignores MPS, and would
    then look for GPUs the server does not have."""
    exe = shutil.which(CONTROL)
    live = _reap_stale(exe) if exe and mode is not False else []
    if mode is None and live:
        note(f"another dsd train runs an MPS daemon ({live[0]}); this one runs without MPS")
    if mode is False or (mode is None and (exe is None or live
                                           or "CUDA_MPS_PIPE_DIRECTORY" in os.environ
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
    watcher = _watch(exe, root)
    saved = {k: os.environ.get(k) for k in (*env, "CUDA_VISIBLE_DEVICES")}
    try:
        os.environ.update(env)
        if "CUDA_VISIBLE_DEVICES" in os.environ:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, range(devices)))
        yield True
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _unwatch(watcher)
        _quit(exe, root)


def _start(exe: str | None) -> tuple[Path, dict[str, str]]:
    """`nvidia-cuda-mps-control -d` with pipe and log folders of its own: (root, their env)."""
    if exe is None:
        raise DsdError(f"--mps: {CONTROL} is not on PATH (it comes with the NVIDIA driver)")
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    env = _env(root)
    for d in env.values():
        Path(d).mkdir()
    (root / "owner").write_text(str(os.getpid()))
    r = subprocess.run([exe, "-d"], env={**os.environ, **env}, capture_output=True, text=True,
                       timeout=60)
    if r.returncode:
        shutil.rmtree(root, ignore_errors=True)
        raise DsdError(f"--mps: `{CONTROL} -d` failed ({r.returncode}): "
                       f"{(r.stderr or r.stdout).strip() or 'no message'}")
    return root, env


#: The watcher: waits on a pipe from this process; at EOF without "done" (this process died,
#: SIGKILL included) it quits the daemon and removes its folders.
_WATCHER = """
import os, shutil, subprocess, sys
exe, root = sys.argv[1], sys.argv[2]
if sys.stdin.read().strip() != "done":
    env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": os.path.join(root, "pipe"),
           "CUDA_MPS_LOG_DIRECTORY": os.path.join(root, "log")}
    try:
        subprocess.run([exe], input="quit\\n", env=env, capture_output=True, timeout=60,
                       text=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
"""


def _watch(exe: str, root: Path) -> subprocess.Popen:
    """A small process tied to this one's lifetime through a pipe only this one writes: the
    daemon does not outlive its `dsd train`. Its own session: Ctrl-C does not reach it."""
    return subprocess.Popen([sys.executable, "-c", _WATCHER, exe, str(root)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, text=True)


def _unwatch(watcher: subprocess.Popen) -> None:
    """A clean exit: the watcher leaves the daemon to `_quit`."""
    try:
        watcher.communicate("done\n", timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        watcher.kill()


def _env(root: Path) -> dict[str, str]:
    return {"CUDA_MPS_PIPE_DIRECTORY": str(root / "pipe"),
            "CUDA_MPS_LOG_DIRECTORY": str(root / "log")}


def _quit(exe: str, root: Path) -> None:
    """Ask the daemon of `root` to quit (it stops its server too) and remove its folders."""
    try:
        subprocess.run([exe], input="quit\n", env={**os.environ, **_env(root)},
                       capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pass    # a daemon that does not answer: nothing more to do from here
    shutil.rmtree(root, ignore_errors=True)


def _reap_stale(exe: str) -> list[Path]:
    """Quit the daemons of dsd trains that died without stopping theirs (SIGKILL); the folders
    of those still alive (or just being set up)."""
    live = []
    for root in sorted(Path(tempfile.gettempdir()).glob(f"{PREFIX}*")):
        try:
            pid = int((root / "owner").read_text())
        except PermissionError:     # another user's
            continue
        except (OSError, ValueError):   # no owner yet: being set up, or left half-made
            pid = None
        young = time.time() - root.stat().st_mtime < 60
        if (pid is None and young) or (pid is not None and _alive(pid)):
            live.append(root)
        elif (root / "pipe" / "control").exists():   # its daemon's named pipe: still running
            _quit(exe, root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return live


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:         # exists, owned by someone else
        return True
    return True
