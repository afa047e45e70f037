"""Extensions from outside the repository: Python files named by an environment variable
($DSD_BLOCKS, $DSD_DATASETS; worker processes and Ray tasks inherit it) and installed packages'
entry points (`dsd.blocks`, `dsd.datasets`). A file registers what it defines when imported
(`@dsd.blocks.register`, `dsd.datasets.register`); each is imported once per process.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from .errors import DsdError


class Plugins:
    """The files and entry points of one kind of extension (`kind`: "block", "dataset")."""

    def __init__(self, kind: str, env: str, group: str):
        self.kind, self.env, self.group = kind, env, group
        self.loaded: set[str] = set()

    def load_file(self, path: str | Path, registered) -> list[str]:
        """Import a Python file; returns the names it added to what `registered()` lists."""
        path = Path(path).expanduser().resolve()
        if str(path) in self.loaded:
            return []
        if not path.is_file():
            raise DsdError(f"{self.kind} file not found: {path} (from ${self.env} or the "
                           f"command line)")
        before = set(registered())
        spec = importlib.util.spec_from_file_location(
            f"dsd_user_{self.kind}s_{len(self.loaded)}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        self.loaded.add(str(path))
        try:
            spec.loader.exec_module(module)
        except DsdError as e:
            raise DsdError(f"{path}: {e}") from None
        except Exception as e:  # a user's file: name it and the error in one line
            raise DsdError(f"{path}: cannot load ({type(e).__name__}: {e})") from e
        return sorted(set(registered()) - before)

    def load_all(self, registered) -> None:
        """The files of $ENV (os.pathsep-separated) and, once, the entry points of `group`."""
        for p in filter(None, os.environ.get(self.env, "").split(os.pathsep)):
            self.load_file(p, registered)
        if "entry-points" not in self.loaded:
            self.loaded.add("entry-points")
            from importlib.metadata import entry_points

            for ep in entry_points(group=self.group):
                ep.load()
