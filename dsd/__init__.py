"""dsd: design space design (Radosavovic et al., "Designing Network Design Spaces", CVPR 2020).

Data flows one way: YAML space → DesignSpace → ModelSpec → complexity / nn.Module → training
record → store → analysis → figure. This package imports no torch at import time.
"""
from .complexity import complexity
from .errors import DsdError
from .regnet import regnet_spec
from .spec import ModelSpec, Stage, adjust_compatibility, make_spec
from .store import Store, load
from .zoo import ZOO, zoo_spec

__version__ = "0.1.0"


def build(spec: ModelSpec, **kwargs):
    """The torch module of a spec (imports torch on first use)."""
    from .model import build as _build

    return _build(spec, **kwargs)


__all__ = ["ModelSpec", "Stage", "Store", "DsdError", "ZOO", "adjust_compatibility", "build",
           "complexity", "load", "make_spec", "regnet_spec", "zoo_spec"]
