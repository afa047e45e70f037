"""`TrainOptions`: everything one `dsd train` call decides, as one frozen value (no torch here).

The CLI builds one from its flags; `dsd.train.train(store, options)` takes it (or its fields as
keyword arguments, for notebooks and tests). Validation that needs the store or torch stays in
`runner.train`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainOptions:
    sweeps: tuple[str, ...] | None = None   # None: every sweep in the store
    dataset: str | None = None              # None: each sweep's own; or synthetic (no layout)
    recipe: str | None = None               # None: the sweep's dataset's (dsd.datasets)
    overrides: dict[str, Any] | None = None  # recipe fields: epochs, lr, batch_size, subset…
    data_dir: Any = None                    # None: $DSD_DATA, else ~/.cache/dsd
    gpus: tuple[int, ...] | None = None     # None: every visible GPU
    per_gpu: int | None = None              # models at once per GPU (default 8)
    procs_per_gpu: int | None = None        # worker processes per GPU (default 4)
    max_time: float | None = None           # seconds; stop cleanly before
    clock_start: float | None = None        # time.time() the limit counts from (the CLI's
                                            # start); None: this call's start
    threads: int | None = None              # CPU training threads; None: `cpu_threads()`
    whole_models: bool = False              # with max_time: start only models that fit
    retry_failed: bool = False
    eager: bool = False                     # no CUDA graphs
    mps: bool | None = None                 # None: a private MPS daemon where possible
    executor: str = "local"                 # local or ray
    ray_opts: dict[str, Any] | None = None  # address, max_retries, cpus_per_task
    kernels: tuple[str, ...] | None = None  # dsd's own layers; None: the default set
    loader: str = "auto"                    # ImageNet pipeline: auto, gpu, cpu
    order: str = "longest"                  # longest (estimated time) or store
    indices: tuple[int, ...] | None = None  # only these model indices
