"""The networks of the paper, pinned: shapes, parameter counts, names, initialisation, gradients."""
import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.models import (Fire, alexnet, fire_sizes_from_metaparameters, get_model, squeezenet1_0,
                                squeezenet1_1, squeezenet_from_metaparameters)
from tinysqueeze.evaluation.gradcheck import model_cases
from tinysqueeze.models.summary import table

CASES = model_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.layer}[{c.config}]" for c in CASES])
def test_fire_and_network_gradients(case):
    errors = case.run()
    assert "x" in errors and len(errors) > 2
    for name, err in errors.items():
        assert err < case.tolerance, f"{case.layer} {case.config}: d{name} relative error {err:.2e}"


def test_parameter_counts_exactly():
    assert squeezenet1_0().num_parameters() == 1_248_424
    assert squeezenet1_1().num_parameters() == 1_235_496
    assert alexnet().num_parameters() == 61_100_840
    assert squeezenet1_0(bypass="simple").num_parameters() == 1_248_424
    assert squeezenet1_0(bypass="complex").num_parameters() == 1_248_424 + 341_248


@pytest.mark.parametrize("sr,params", [(0.125, 1_248_424), (0.25, 1_967_080), (0.5, 3_404_392),
                                       (0.75, 4_841_704), (1.0, 6_279_016)])
def test_squeeze_ratio_sizes_match_the_paper(sr, params):
    assert squeezenet_from_metaparameters(sr=sr).num_parameters() == params


@pytest.mark.parametrize("pct,params", [(0.01, 1_478_248), (0.125, 1_929_832), (0.25, 2_421_352),
                                        (0.5, 3_404_392), (0.99, 5_330_536)])
def test_pct_3x3_sizes_match_the_paper(pct, params):
    assert squeezenet_from_metaparameters(sr=0.5, pct_3x3=pct).num_parameters() == params


def test_default_metaparameters_give_v1_0_fire_sizes():
    assert fire_sizes_from_metaparameters() == [(16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
                                                (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)]


def rows_by_name(model, size):
    return {r.name: r.output for r in table(model, size)}


def test_v1_0_shapes_follow_table_1_at_227():
    rows = rows_by_name(squeezenet1_0(), 227)
    assert rows["conv1"] == (111, 111, 96)
    assert rows["maxpool1"] == (55, 55, 96)
    assert rows["fire2"] == rows["fire3"] == (55, 55, 128) and rows["fire4"] == (55, 55, 256)
    assert rows["maxpool4"] == (27, 27, 256)
    assert rows["fire5"] == (27, 27, 256) and rows["fire8"] == (27, 27, 512)
    assert rows["maxpool8"] == (13, 13, 512)
    assert rows["fire9"] == (13, 13, 512) and rows["conv10"] == (13, 13, 1000)
    assert rows["avgpool10"] == (1, 1, 1000)


def test_v1_0_shapes_at_224_and_v1_1_pools():
    rows = rows_by_name(squeezenet1_0(), 224)
    assert [rows[k][0] for k in ("conv1", "maxpool1", "maxpool4", "maxpool8")] == [109, 54, 27, 13]
    rows = rows_by_name(squeezenet1_1(), 224)
    assert rows["conv1"] == (111, 111, 64) and rows["maxpool3"] == (27, 27, 128) and rows["maxpool5"] == (13, 13, 256)
    params = {r.name: r.parameters for r in table(squeezenet1_0(), 227)}
    assert params["fire2"] == 11_920 and params["fire9"] == 197_184 and params["conv10"] == 513_000


def test_v1_1_needs_less_compute():
    macs10 = sum(r.macs for r in table(squeezenet1_0(), 224))
    macs11 = sum(r.macs for r in table(squeezenet1_1(), 224))
    assert 2.2 < macs10 / macs11 < 2.6  # "2.4x less computation"


@pytest.mark.parametrize("size", [32, 33, 64, 97])
def test_any_input_size_from_32(size):
    model = squeezenet1_1(num_classes=7).eval()
    assert model(np.zeros((2, 3, size, size), np.float32)).shape == (2, 7)


def test_torchvision_state_dict_names():
    keys = list(squeezenet1_0().state_dict())
    assert keys[:4] == ["features.0.weight", "features.0.bias", "features.3.squeeze.weight", "features.3.squeeze.bias"]
    assert "features.3.expand1x1.bias" in keys and "features.12.expand3x3.weight" in keys
    assert keys[-2:] == ["classifier.1.weight", "classifier.1.bias"]
    keys11 = list(squeezenet1_1().state_dict())
    assert "features.12.expand3x3.weight" in keys11 and "features.3.squeeze.weight" in keys11
    alex = [k for k in alexnet(num_classes=10).state_dict()]
    assert alex == ["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
                    "features.6.weight", "features.6.bias", "features.8.weight", "features.8.bias",
                    "features.10.weight", "features.10.bias", "classifier.1.weight", "classifier.1.bias",
                    "classifier.4.weight", "classifier.4.bias", "classifier.6.weight", "classifier.6.bias"]
    assert "features.3.bypass.weight" in squeezenet1_0(bypass="complex").state_dict()


def test_initialisation_follows_torchvision():
    model = squeezenet1_0(seed=1)
    state = model.state_dict()
    assert all(not v.any() for k, v in state.items() if k.endswith("bias"))
    conv10 = state["classifier.1.weight"]
    assert abs(conv10.std() - 0.01) < 0.001 and abs(conv10.mean()) < 0.001
    w = state["features.0.weight"]                       # kaiming uniform, fan_in = 3 * 7 * 7
    bound = np.sqrt(6 / 147)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert all(v.dtype == np.float32 for v in state.values())
    again = squeezenet1_0(seed=1).state_dict()
    assert all(np.array_equal(state[k], again[k]) for k in state)


def test_initial_loss_is_log_num_classes():
    model = squeezenet1_1(num_classes=10, seed=0)
    x = np.random.default_rng(0).standard_normal((8, 3, 64, 64)).astype(np.float32)
    loss = nn.SoftmaxCrossEntropy()(model.eval()(x), np.arange(8) % 10)
    assert abs(loss - np.log(10)) < 0.15  # conv10 ~ N(0, 0.01): logits start near zero


def test_fire_gradient_of_squeeze_is_the_sum_of_both_branches():
    fire = Fire(3, 2, 2, 2, rng=np.random.default_rng(0)).to(np.float64)
    x = np.abs(np.random.default_rng(1).standard_normal((1, 3, 4, 4))) + 0.1
    fire.squeeze_activation.backward = lambda ds: ds  # look at what reaches the squeeze output
    out = fire(x)
    captured = {}
    original = fire.squeeze.backward

    def capture(ds):
        captured["ds"] = ds
        return original(ds)

    fire.squeeze.backward = capture
    dout = np.ones_like(out)
    fire.backward(dout)
    d1 = fire.expand1x1.backward(fire.expand1x1_activation.backward(dout[:, :2]))
    d3 = fire.expand3x3.backward(fire.expand3x3_activation.backward(dout[:, 2:]))
    np.testing.assert_allclose(captured["ds"], d1 + d3)


def test_bypass_rules():
    with pytest.raises(ValueError, match="simple bypass adds the input to the output"):
        Fire(96, 16, 64, 64, bypass="simple")
    with pytest.raises(ValueError, match="bypass must be one of"):
        Fire(4, 2, 2, 2, bypass="sideways")
    model = squeezenet1_0(bypass="simple")
    kinds = [m.bypass_kind for m in model.features if isinstance(m, Fire)]
    assert kinds == [None, "simple", None, "simple", None, "simple", None, "simple"]
    model = squeezenet1_0(bypass="complex")
    kinds = [m.bypass_kind for m in model.features if isinstance(m, Fire)]
    assert kinds == ["complex", "simple"] * 4
    with pytest.raises(ValueError, match="simple bypass around fire3"):
        squeezenet_from_metaparameters(freq=1, bypass="simple")


@pytest.mark.parametrize("kwargs,message", [
    (dict(sr=0), "sr .* must be positive"), (dict(sr=-1), "must be positive"),
    (dict(pct_3x3=1.5), r"pct_3x3 must be in \[0, 1\]"), (dict(pct_3x3=-0.1), "pct_3x3"),
    (dict(pct_3x3=0.0), "fire2 would have .* expand3x3=0"), (dict(sr=0.001), "squeeze=0"),
    (dict(freq=0), "freq must be a positive integer"), (dict(base_e=0), "base_e must be positive"),
])
def test_invalid_metaparameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fire_sizes_from_metaparameters(**kwargs)


def test_registry_and_bad_input():
    assert get_model("squeezenet1_1", num_classes=5).num_classes == 5
    with pytest.raises(ValueError, match="unknown model 'resnet'.*squeezenet1_1"):
        get_model("resnet")
    model = squeezenet1_1(num_classes=3)
    with pytest.raises(ValueError, match="at least 32x32"):
        model(np.zeros((1, 3, 31, 40), np.float32))
    with pytest.raises(ValueError, match=r"shape \(N, 3, H, W\)"):
        model(np.zeros((1, 1, 64, 64), np.float32))
    assert alexnet(num_classes=4).eval()(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 4)


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1", "squeezenet_meta",
                                  pytest.param("alexnet", marks=pytest.mark.slow)])
def test_skipping_the_image_gradient_leaves_every_weight_gradient_as_it_was(name):
    """get_model(..., image_grad=False), as training builds a model: conv1 (it sees the images) is built
    with input_grad=False, model.backward returns None, and every parameter's gradient is what it was,
    bit for bit."""
    from tinysqueeze.models import get_model

    x = np.random.default_rng(0).standard_normal((2, 3, 67, 67)).astype(np.float32)
    full, training = get_model(name, num_classes=4, seed=1), get_model(name, num_classes=4, seed=1, image_grad=False)
    assert [m.input_grad for m in training.modules() if isinstance(m, nn.Conv2d)][:3] == [False, True, True]
    assert "input_grad=False" in repr(training.features[0])
    loss = nn.SoftmaxCrossEntropy()
    loss(full(x), np.array([0, 3]))
    assert full.backward(loss.backward()).shape == x.shape
    loss(training(x), np.array([0, 3]))
    assert training.backward(loss.backward()) is None
    for (name, a), (_, b) in zip(full.named_parameters(), training.named_parameters()):
        np.testing.assert_array_equal(a.grad, b.grad, err_msg=name)


@pytest.mark.parametrize("version", ["1_0", "1_1"])
def test_logits_equal_pytorchs_on_torchvisions_layout_without_pytorch(version):
    """tests/fixtures/torch_logits.npz holds what PyTorch 2.13 computed with these same weights in
    torchvision's layout (written by tests/fixtures/make_logits_fixture.py)."""
    from pathlib import Path
    from tinysqueeze.models import squeezenet1_0, squeezenet1_1
    fixture = np.load(Path(__file__).parents[1] / "fixtures" / "torch_logits.npz")
    model = (squeezenet1_0 if version == "1_0" else squeezenet1_1)(num_classes=5, seed=0)
    model.classifier[1].bias.data[:] = 0.3
    logits = model.eval()(fixture[f"x_{version}"])
    np.testing.assert_allclose(logits, fixture[f"logits_{version}"], rtol=1e-4, atol=1e-5)
    assert fixture[f"logits_{version}"].std() > 0.01          # a real signal, not a constant
