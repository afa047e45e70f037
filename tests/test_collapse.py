"""The collapse rule (issue 18): chance-level error with an explicit margin, loss judged only
after warm-up; on constructed curves and wired into a real CPU training."""
from __future__ import annotations

import math

import pytest

from dsd import Store
from dsd.train import engine, train
from dsd.train.engine import chance_error, chance_margin, is_collapsed

LN10 = math.log(10)


def curve(*epochs):
    """History records from (top1, train_loss, tail_loss) per epoch."""
    return [{"epoch": i, "top1": e, "train_loss": loss, "tail_loss": tail}
            for i, (e, loss, tail) in enumerate(epochs, 1)]


def test_chance_and_margin():
    assert chance_error(10) == pytest.approx(90.0) and chance_error(1000) == pytest.approx(99.9)
    assert chance_margin(10, None) == 1.0
    assert chance_margin(10, 10_000) == 1.0                        # 3 s.e. = 0.9 < 1 point
    assert chance_margin(10, 1000) == pytest.approx(300 * math.sqrt(0.09 / 1000))  # 2.85
    assert chance_margin(10, 100) == pytest.approx(9.0)


def test_the_issue_case_one_epoch_all_warm_up():
    """After 1 epoch (all warm-up) models at 86.2 % and 83.2 % were collapsed (their loss rose
    with the warm-up lr) while one at 88.9 % was done. Now the error alone decides there."""
    risen = (LN10 * 1.05, LN10 * 1.02)  # loss above the first step's, as the lr ramps up
    for err in (86.2, 83.2, 88.9):
        assert not is_collapsed(curve((err, *risen)), LN10, 10, warmup_epochs=1.0,
                                n_test=10_000), err
    # chance-level errors are collapsed, whatever the loss did
    for err in (89.0, 89.5, 90.0, 95.0):
        assert is_collapsed(curve((err, 1.0, 0.9)), LN10, 10, warmup_epochs=1.0, n_test=10_000)
    # the verdict is monotone in the error: no error below a collapsed one is done and above
    errs = [e / 10 for e in range(700, 1000)]
    verdict = [is_collapsed(curve((e, *risen)), LN10, 10, warmup_epochs=1.0, n_test=10_000)
               for e in errs]
    assert verdict == sorted(verdict)


def test_loss_is_judged_after_warm_up_only():
    flat = (LN10, LN10)  # the loss never dropped
    # without warm-up (plain recipes) the first epoch is judged by its loss
    assert is_collapsed(curve((80.0, *flat)), LN10, 10, warmup_epochs=0.0)
    # with a 1-epoch warm-up, epoch 1 is not; epoch 2 is
    assert not is_collapsed(curve((80.0, *flat)), LN10, 10, warmup_epochs=1.0)
    assert is_collapsed(curve((80.0, 2.0, 1.9), (80.0, *flat)), LN10, 10, warmup_epochs=1.0)
    assert not is_collapsed(curve((80.0, *flat), (60.0, 1.2, 1.1)), LN10, 10,
                            warmup_epochs=1.0)
    # a fractional warm-up: epoch 2 starts inside it (1.5 epochs), so only epoch 3 is judged
    assert not is_collapsed(curve((80.0, *flat), (80.0, *flat)), LN10, 10, warmup_epochs=1.5)
    assert is_collapsed(curve((80.0, *flat), (80.0, *flat), (80.0, *flat)), LN10, 10,
                        warmup_epochs=1.5)


def test_a_smaller_test_set_widens_the_margin():
    # 86 % on 100 test images is within 3 standard errors of guessing (margin 9 points)
    assert is_collapsed(curve((86.0, 1.0, 0.9)), LN10, 10, n_test=100)
    assert not is_collapsed(curve((86.0, 1.0, 0.9)), LN10, 10, n_test=10_000)


def test_training_passes_warm_up_and_test_size(tmp_path, data_root, monkeypatch):
    """A real 1-epoch CPU run of the default recipe (1-epoch warm-up): the rule sees the
    recipe's warm-up and the test set size, and its verdict is the stored status."""
    from test_train import add_sweep

    seen = []

    def spy(history, loss0, num_classes, **kw):
        out = is_collapsed(history, loss0, num_classes, **kw)
        seen.append((history[-1]["top1"], kw, out))
        return out

    monkeypatch.setattr(engine, "is_collapsed", spy)
    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=1)
    train(store, overrides={"epochs": 1, "batch_size": 50, "subset": 500, "test_subset": 400},
          data_dir=data_root)
    (top1, kw, verdict), = seen
    assert kw == {"warmup_epochs": 1.0, "n_test": 400}
    row = store.results(status=None).iloc[0]
    assert row["status"] == ("collapsed" if verdict else "done") and row["top1"] == top1


def test_the_test_size_of_each_data_source():
    from types import SimpleNamespace

    assert engine._test_size(SimpleNamespace(test_size=400, val=[0] * 9)) == 400
    assert engine._test_size(SimpleNamespace(val=[0] * 9)) == 9     # ImageNet loaders
    assert engine._test_size(SimpleNamespace()) is None
