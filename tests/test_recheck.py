"""scripts/recheck_cifar10.py: retrained copies of a study's models keep their seeds and recipe,
so on the CPU they reproduce the stored errors exactly (real training, real SQLite stores); the
stratified sample covers every space and every device of the published population, and the
published recheck.json is such a sample whose summary numbers are those of its models."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

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
            "--per-space", "2", "--data-dir", str(data_root), "--out", str(tmp_path / "re.json")]
    assert recheck_cifar10.main(args) == 0
    out = json.loads((tmp_path / "re.json").read_text())
    assert out["summary"]["copies"] == 2 and out["summary"]["done"] == 2
    assert out["summary"]["max_abs_diff"] == 0.0
    assert out["per_space"]["test"]["done"] == 2 and out["per_space"]["test"]["mean_diff"] == 0
    assert sum(d["done"] for d in out["per_device"].values()) == 2
    re = Store(tmp_path / "re.sqlite")
    assert re.sweep_names() == ["tiny-recheck"] and re.sweep("tiny-recheck")["seed"] == 5
    picked = [m["index"] for m in out["models"]]
    assert picked == sorted(picked) and len(set(picked)) == 2
    # a second call trains nothing more and compares the same pairs
    assert recheck_cifar10.main(args[:-2] + ["--report"]) == 0
    assert '"max_abs_diff": 0.0' in capsys.readouterr().out
    # the study's published population file works in place of its store
    from dsd.analysis.population import population_frame, write_population

    pop = write_population(population_frame(Store(tmp_path / "study.sqlite"), ["tiny"]),
                           tmp_path / "pop.parquet")
    args = ["--store", str(pop), "--recheck", str(tmp_path / "re2.sqlite"), "--per-space", "1",
            "--seed", "3", "--data-dir", str(data_root), "--out", str(tmp_path / "re2.json")]
    assert recheck_cifar10.main(args) == 0
    out = json.loads((tmp_path / "re2.json").read_text())
    assert out["summary"]["done"] == 1 and out["summary"]["max_abs_diff"] == 0.0


def test_an_empty_study_is_a_one_line_error(tmp_path, capsys):
    Store(tmp_path / "empty.sqlite")
    assert recheck_cifar10.main(["--store", str(tmp_path / "empty.sqlite"),
                                 "--recheck", str(tmp_path / "re.sqlite"), "--report"]) == 1
    assert "no finished models in" in capsys.readouterr().err


POPULATION = Path(__file__).resolve().parent.parent / "results/cifar10/population.parquet"


@pytest.mark.skipif(not POPULATION.exists(), reason="published population not in checkout")
def test_stratified_pick_covers_every_space_and_device_of_the_published_population(capsys):
    from dsd.analysis.population import read_population

    df = read_population(POPULATION)[0]
    pick = recheck_cifar10.stratified_pick(df, 6, seed=0)
    assert pick.groupby("space").size().to_dict() == dict.fromkeys(
        ["anynetxa", "anynetxb", "anynetxc", "anynetxd", "anynetxe", "regnetx", "regnety"], 6)
    assert (pick["status"] == "done").all() and not pick.duplicated(["sweep", "index"]).any()
    per = pick.groupby(["space", "device"]).size()
    trained = df[df["status"] == "done"].groupby(["space", "device"]).size()
    assert set(per.index) == set(trained.index)  # every (space, device) stratum is sampled
    assert per["regnetx"].tolist() == [3, 3] and per["anynetxd"].tolist() == [3, 3]
    assert per["regnety"].tolist() == [6]  # RegNetY trained on H200s only
    again = recheck_cifar10.stratified_pick(df, 6, seed=0)
    assert again[["sweep", "index"]].equals(pick[["sweep", "index"]])
    other = recheck_cifar10.stratified_pick(df, 6, seed=1)
    assert not other[["sweep", "index"]].reset_index(drop=True).equals(
        pick[["sweep", "index"]].reset_index(drop=True))
    # more than a stratum holds: the other device fills in (AnyNetXD has 4 done H200 models)
    big = recheck_cifar10.stratified_pick(df, 12, seed=0).groupby(["space", "device"]).size()
    assert big["anynetxd"].tolist() == [8, 4]
    assert recheck_cifar10.main(["--pick", str(POPULATION)]) == 0
    assert "regnety   NVIDIA H200 bf16             6:" in capsys.readouterr().out


def test_stratified_pick_rejects_an_empty_study():
    with pytest.raises(recheck_cifar10.DsdError, match="no finished models"):
        recheck_cifar10.stratified_pick(pd.DataFrame({"sweep": [], "status": [], "top1": []}),
                                        6, 0)


RECHECK = POPULATION.parent / "recheck.json"


@pytest.mark.skipif(not RECHECK.exists() or not POPULATION.exists(),
                    reason="published recheck or population not in checkout")
def test_published_recheck_is_the_stratified_sample_and_its_summary_adds_up():
    """results/cifar10/recheck.json: >= 6 done copies in every space of the population, covering
    every device that trained that space; stored errors and devices are the population's; the
    summary, per-space and per-device numbers are those of its `models` list."""
    import numpy as np

    from dsd.analysis.population import read_population

    pop = read_population(POPULATION)[0]
    pop = pop[pop["status"] == "done"].set_index(["sweep", "index"])
    out = json.loads(RECHECK.read_text())
    models = pd.DataFrame(out["models"])
    assert {"space", "stored_device", "retrained", "stored", "status"} <= set(models.columns)
    done = models[models["status"] == "done"]
    for space, trained in pop.groupby("space"):
        mine = done[done["space"] == space]
        assert len(mine) >= 6, space
        assert set(mine["stored_device"]) >= set(trained["device"]), space
    for _, m in models.iterrows():
        assert pop.loc[(m["sweep"], m["index"]), "top1"] == pytest.approx(m["stored"])
        assert pop.loc[(m["sweep"], m["index"]), "device"] == m["stored_device"]

    def numbers(rows):
        d = (rows["retrained"] - rows["stored"]).to_numpy()
        return {"copies": len(rows), "done": len(d), "mean_diff": pytest.approx(d.mean()),
                "sd_diff": pytest.approx(d.std(ddof=1)),
                "max_abs_diff": pytest.approx(np.abs(d).max()),
                "over_1_point": int((np.abs(d) > 1).sum())}

    assert len(done) == len(models)  # every copy finished, so copies == done below
    assert {k: out["summary"][k] for k in numbers(done)} == numbers(done)
    for key, col in (("per_space", "space"), ("per_device", "stored_device")):
        assert set(out[key]) == set(done[col])
        for name, rows in done.groupby(col):
            assert out[key][name] == numbers(rows), (key, name)
