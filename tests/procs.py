"""`dsd` in a subprocess for the kill-and-resume tests: start it in its own session (so a test
can signal its whole process group), and wait until the store shows a state (a handshake on what
the run wrote, polled; never a fixed sleep)."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest


def dsd_process(command: str, args, env) -> subprocess.Popen:
    code = "from dsd.cli import main; main()"
    return subprocess.Popen([sys.executable, "-c", code, command, *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_for(pred, proc: subprocess.Popen, what: str = "dsd", timeout: float = 240) -> None:
    """Until `pred()` holds; fails if the process ends first or after `timeout` seconds."""
    t0 = time.time()
    while not pred():
        if proc.poll() is not None:
            pytest.fail(f"{what} ended early:\n{proc.stdout.read()}")
        if time.time() - t0 > timeout:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)
