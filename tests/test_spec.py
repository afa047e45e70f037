"""ModelSpec: JSON round trip, stable ids, compatibility rule, validation."""
import pytest

from dsd import DsdError, ModelSpec, adjust_compatibility, make_spec, regnet_spec
from dsd.spec import layout


def test_json_round_trip_and_stable_id():
    spec = make_spec([1, 2, 3, 4], [32, 64, 128, 256], [1, 2, 1, 4], [8, 16, 8, 8], block="y",
                     se_ratio=0.25, dataset="cifar10")
    again = ModelSpec.from_json(spec.to_json())
    assert again == spec and again.id == spec.id
    assert spec.id == make_spec([1, 2, 3, 4], [32, 64, 128, 256], [1, 2, 1, 4], [8, 16, 8, 8],
                                block="y", se_ratio=0.25, dataset="cifar10").id
    assert spec.id != make_spec([1, 2, 3, 5], [32, 64, 128, 256], [1, 2, 1, 4], [8, 16, 8, 8],
                                block="y", se_ratio=0.25, dataset="cifar10").id


def test_compatibility_rule():
    # b = 1: width rounded to a multiple of g (half to even); g capped by the bottleneck width
    assert adjust_compatibility([392], [1], [16]) == ([384], [1], [16])
    assert adjust_compatibility([8], [4], [32]) == ([8], [4], [2])
    ws, bs, gs = adjust_compatibility([40, 200, 1000], [2, 4, 1], [16, 8, 32])
    assert all((w // b) % g == 0 and g <= w // b for w, b, g in zip(ws, bs, gs))


def test_layouts():
    cifar = make_spec([1] * 4, [8] * 4, [1] * 4, [8] * 4, dataset="cifar10")
    assert (cifar.resolution, cifar.num_classes, cifar.stem_stride) == (32, 10, 1)
    assert [s.stride for s in cifar.stages] == [1, 2, 2, 2]
    inet = make_spec([1] * 4, [8] * 4, [1] * 4, [8] * 4)
    assert [s.stride for s in inet.stages] == [2, 2, 2, 2] and inet.stem_stride == 2
    with pytest.raises(DsdError, match="allowed: imagenet, cifar10"):
        layout("mnist")


def test_regnet_stage_count_rejection():
    _, n = regnet_spec(22, 24, 24.48, 2.54, 1, 16)
    assert n == 4
    _, n = regnet_spec(3, 24, 1.0, 2.5, 1, 8)  # wa tiny: one stage
    assert n == 1


def test_bad_spec_values():
    with pytest.raises(DsdError, match="block"):
        make_spec([1], [8], [1], [8], block="z")
    with pytest.raises(DsdError):
        adjust_compatibility([0], [1], [8])
