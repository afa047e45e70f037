"""The cost estimate and longest-first ordering (`dsd train --order`): fitted on the published
CIFAR-10 population, it ranks the study's measured training times; jobs of real sampled specs
start longest first, on both executors' paths; list scheduling predicts the gain."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_train import QUICK, add_sweep

from dsd import Store
from dsd.errors import DsdError
from dsd.sample import sample
from dsd.spec import ModelSpec
from dsd.train import RECIPES, train
from dsd.train import cost
from dsd.train.coordinator import fill_order
from dsd.train.ray_exec import deal
from dsd.train.runner import plan, resolve

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import cost_model  # noqa: E402

H100, H200 = "NVIDIA H100 80GB HBM3 bf16", "NVIDIA H200 bf16"


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    df = pd.read_parquet(REPO / "results" / "cifar10" / "population.parquet")
    return df[(df["status"] == "done") & df["seconds"].notna()]


def test_the_shipped_coefficients_are_the_fit_on_the_h200_models(population):
    fitted = cost.fit(population[population["device"] == H200])
    for name in ("per_flop", "per_act", "per_block"):
        assert getattr(cost.STUDY, name) == pytest.approx(getattr(fitted, name), rel=5e-3)


def test_the_estimate_ranks_the_study_models(population):
    """Thresholds: the H200 models (135; dsd's current training path, each model at its own
    pace) are ranked at ρ 0.88 and 0.87 out of fold: ≥ 0.8. The H100 models (564) ran under
    older code: 41 % of them in lockstep pairs (a pair's fast model held to its neighbour's
    pace, so its seconds are not its own) and in chunks with and without MPS and autotuning,
    so their times are noisy: ρ 0.50 out of sample, ≥ 0.4. Flops alone ranks neither (|ρ| <
    0.1: the window fixes them), so the estimate must beat it by 0.35 on both."""
    r = cost_model.ranks(population)
    assert r[H200]["models"] == 135 and r[H100]["models"] == 564
    assert r[H100]["lockstep_share"] > 0.3 > 0.15 > r[H200]["lockstep_share"]
    assert r[H200]["estimate"] >= 0.8 and r[H200]["refit_cv"] >= 0.8
    assert r[H100]["estimate"] >= 0.4
    for dev in (H100, H200):
        assert abs(r[dev]["flops"]) < 0.1 and r[dev]["estimate"] > r[dev]["flops"] + 0.35


def test_the_estimate_ranks_the_benchmark_models_alone():
    """8 models the fit never saw, timed alone (no neighbours): ρ 0.90; an unrelated ranking of
    8 exceeds 0.8 with probability about 0.015."""
    assert cost_model.alone_check()["estimate"] >= 0.8


def test_the_estimate_scales_with_the_workload():
    spec = sample("regnetx", 1, dataset="cifar10", seed=0).models[0].spec
    nds = RECIPES["nds"].to_dict()
    full = cost.spec_seconds(spec, "cifar10", nds)
    assert cost.spec_seconds(spec, "cifar10", nds, epochs_done=5) == pytest.approx(full / 2)
    assert cost.spec_seconds(spec, "cifar10", nds, epochs_done=10) == 0
    assert cost.spec_seconds(spec, "cifar10", {**nds, "subset": 25_000}) == pytest.approx(
        full / 2, rel=0.01)
    big = sample("regnetx", 1, dataset="imagenet", seed=0).models[0].spec
    assert cost.spec_seconds(big, "imagenet", RECIPES["dds"].to_dict()) > 20 * full
    assert cost.workload("synthetic", 32, {"batch_size": 128, "subset": None}) == (50_000, 390)


def sampled_store(tmp_path, n: int = 16) -> Store:
    store = Store(tmp_path / "s.sqlite")
    models = sample("regnetx", n, dataset="cifar10", seed=3).models
    store.add_sweep("rx", space="regnetx", space_def={}, dataset="cifar10", window={}, seed=3,
                    draws=n, models=models)
    return store


def test_jobs_of_sampled_specs_start_longest_first(tmp_path):
    store = sampled_store(tmp_path)
    p = plan(store, resolve(store, None, dataset=None, recipe=None, overrides={}), tmp_path)
    est = {j.index: cost.spec_seconds(ModelSpec.from_json(j.spec_json), "cifar10", j.recipe)
           for j in p.jobs}
    assert [j.index for j in cost.order_jobs(p.jobs, "store")] == list(range(16))
    longest = [j.index for j in cost.order_jobs(p.jobs, "longest")]
    assert sorted(longest) == list(range(16)) and longest != list(range(16))
    assert [est[i] for i in longest] == sorted(est.values(), reverse=True)
    assert max(est.values()) / min(est.values()) > 2   # the sweep's costs differ: order matters
    # a model resumed with one epoch left goes from first to last
    first = p.jobs[longest[0]]
    again = cost.order_jobs(p.jobs, "longest", {first.meta["model_id"]: 9})
    assert again[-1] is first
    with pytest.raises(DsdError, match=r"unknown --order 'random'; allowed: longest, store"):
        cost.order_jobs(p.jobs, "random")


def test_train_starts_models_in_the_chosen_order(tmp_path, data_root):
    """Results are created as models start: their ids give the start order."""
    for order, expect in (("longest", [2, 1, 0]), ("store", [0, 1, 2])):
        store = Store(tmp_path / f"{order}.sqlite")
        add_sweep(store, n=3)   # model i has a wider stem than model i-1: costs more
        train(store, data_dir=data_root, order=order,
              overrides={**QUICK, "epochs": 1, "subset": 100, "test_subset": 100})
        df = store.results(status=None).sort_values("result_id")
        assert list(df["index"]) == expect and set(df["status"]) <= {"done", "collapsed"}
    with pytest.raises(DsdError, match="unknown --order"):
        train(store, order="shortest")


def test_first_jobs_spread_over_gpus_and_processes():
    assert fill_order(["cuda:0"] * 4 + ["cuda:1"] * 4) == [0, 4, 1, 5, 2, 6, 3, 7]
    assert fill_order(["cpu"]) == [0]
    # Ray: each run of per_gpu submissions lands on one GPU (best fit), so it gets a fair hand
    jobs = list(range(10))
    assert deal(jobs, gpus=2, per_gpu=4) == [0, 3, 4, 7, 1, 2, 5, 6, 8, 9]
    assert deal(jobs, gpus=1, per_gpu=4) == jobs and deal(jobs[:6], 2, 4) == jobs[:6]


def test_list_scheduling_and_the_predicted_gain(population):
    assert cost_model.makespan([5, 1, 1, 1, 4], 2) == 7.0      # store order: 5 | 1,1,1,4
    assert cost_model.makespan([5, 4, 1, 1, 1], 2) == 6.0      # longest first
    g = population[population["device"] == H200]
    sim = cost_model.simulate(g["seconds"], cost.estimate(g), models=16, slots=8, draws=500,
                              seed=0)
    # longest-first by the estimate gains on average, and less than the exact order would
    assert 0.05 < sim["gain_mean"] < sim["gain_oracle_mean"] < 0.4
    same = cost_model.simulate(np.ones(50), np.ones(50), models=16, slots=8, draws=20, seed=0)
    assert same["gain_mean"] == 0 and same["wall_store_mean"] == 2.0


def test_cli_passes_the_order(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import dsd.cli.train  # noqa: F401  (registers the commands)
    from dsd.cli import app
    from dsd.train.runner import Summary

    seen = {}
    monkeypatch.setattr("dsd.train.train", lambda store, **kw: seen.update(kw) or Summary(
        {"done": 1}, None, 0, 1.0))
    Store(tmp_path / "s.sqlite").close()   # train opens an existing store only
    store = ["--store", str(tmp_path / "s.sqlite")]
    for args, expect in (([], "longest"), (["--order", "store"], "store")):
        res = CliRunner().invoke(app, ["train", *args, *store])
        assert res.exit_code == 0, res.output
        assert seen["order"] == expect
    res = CliRunner().invoke(app, ["train", "--order", "random", *store])
    assert res.exit_code != 0 and "random" in res.output
