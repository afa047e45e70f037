"""scripts/recheck_cifar10.py: retrained copies of a study's models keep their seeds and recipe,
so on the CPU they reproduce the stored errors exactly (real training, real SQLite stores)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

from dsd import Store, complexity, make_spec
from dsd.train import train

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import recheck_cifar10  # noqa: E402

QUICK = {"epochs": 2, "batch_size": 50, "subset": 1000, "test_subset": 1000}


def study(path: Path, data_root: Path) -> Store:
    """A finished study of 3 tiny models (sweep seed 5), trained for real."""
    store = Store(path)
    models = []
    for i in range(3):
        spec = make_spec([1, 1, 1, 1], [8, 16, 24, 32], [1] * 4, [8] * 4, dataset="cifar10",
                         stem_w=8 + 8 * i)
        c = complexity(spec)
        models.append(SimpleNamespace(index=i, spec=spec, params={}, flops=c["flops"],
                                      params_count=c["params"], acts=c["acts"]))
    store.add_sweep("tiny", space="test", space_def={}, dataset="cifar10", window={}, seed=5,
                    draws=3, models=models)
    train(store, overrides=QUICK, data_dir=data_root)
    return store


def test_retrained_copies_reproduce_the_stored_errors(tmp_path, data_root, capsys):
    study(tmp_path / "study.sqlite", data_root)
    args = ["--store", str(tmp_path / "study.sqlite"), "--recheck", str(tmp_path / "re.sqlite"),
            "--n", "2", "--data-dir", str(data_root), "--out", str(tmp_path / "re.json")]
    assert recheck_cifar10.main(args) == 0
    out = json.loads((tmp_path / "re.json").read_text())
    assert out["summary"]["copies"] == 2 and out["summary"]["done"] == 2
    assert out["summary"]["max_abs_diff"] == 0.0
    re = Store(tmp_path / "re.sqlite")
    assert re.sweep_names() == ["tiny-recheck"] and re.sweep("tiny-recheck")["seed"] == 5
    picked = [m["index"] for m in out["models"]]
    assert picked == sorted(picked) and len(set(picked)) == 2
    # a second call trains nothing more and compares the same pairs
    assert recheck_cifar10.main(args[:-2] + ["--report"]) == 0
    assert '"max_abs_diff": 0.0' in capsys.readouterr().out


def test_an_empty_study_is_a_one_line_error(tmp_path, capsys):
    Store(tmp_path / "empty.sqlite")
    assert recheck_cifar10.main(["--store", str(tmp_path / "empty.sqlite"),
                                 "--recheck", str(tmp_path / "re.sqlite"), "--report"]) == 1
    assert "no finished models in" in capsys.readouterr().err
