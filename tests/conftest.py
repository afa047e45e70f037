import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
ZOO_JSON = SHARED / "reference" / "regnet_zoo.json"


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data root holding cifar10/ (DSD_DATA, else ../shared/data); a test that needs it
    fails, with where it looked, when it is absent (it never passes by skipping)."""
    root = Path(os.environ.get("DSD_DATA", SHARED / "data"))
    if not (root / "cifar10" / "cifar-10-batches-py" / "data_batch_1").exists():
        pytest.fail(f"CIFAR-10 not found under {root}/cifar10: set DSD_DATA to the folder "
                    "holding cifar10/cifar-10-batches-py")
    return root
