"""The benchmark's arithmetic and its worker protocol (never a timing: benchmarks print figures)."""
import pytest

from tinysqueeze.studies.bench import compare, ratio_with_spread


def test_the_ratio_is_of_the_medians_and_the_spread_is_per_round():
    ours = [0.20, 0.10, 0.40]          # seconds per step in three rounds (median 0.20)
    theirs = [0.10, 0.10, 0.10]        # median 0.10
    result = ratio_with_spread(ours, theirs)
    assert result["ratio"] == pytest.approx(0.5)              # 0.10 / 0.20: we run at half their speed
    assert result["low"] == pytest.approx(0.25)               # round 3: 0.10 / 0.40
    assert result["high"] == pytest.approx(1.0)               # round 2: 0.10 / 0.10


@pytest.mark.slow
def test_a_worker_measures_our_side_and_reports_its_profile():
    result = compare("squeezenet1_1", 32, 2, rounds=2, steps=1, with_torch=False)
    ours = result["ours"]
    assert result["torch"] is None and result["ratios"] is None
    assert ours["step_s"] > 0 and ours["infer_s"] > 0 and ours["peak_mb"] >= 0
    assert ours["train_img_s"] == pytest.approx(2 / ours["step_s"])
    assert {"by_type", "by_layer", "twins", "first_call", "macs"} <= set(ours)


def test_the_products_flops_are_counted_as_derived_by_hand():
    """2*K FLOPs per entry of a product, batched or not: (3x4)@(4x5) is 2*4*15 = 120; (2, 3, 4)@(2, 4, 5)
    is 240."""
    import numpy as np

    from tinysqueeze.studies.bench import counted

    spent = {"matmul": 0.0, "matmul_flop": 0.0}
    product = counted(np.matmul, spent)
    product(np.ones((3, 4)), np.ones((4, 5)))
    assert spent["matmul_flop"] == 120
    product(np.ones((2, 3, 4)), np.ones((2, 4, 5)))
    assert spent["matmul_flop"] == 120 + 240 and spent["matmul"] > 0


def test_a_training_steps_products_are_three_times_the_forwards_but_for_the_image_gradient():
    """Every multiply-accumulate of the forward (the summary's count, worked out from the layer shapes)
    happens three times in a step -- forward, weight gradient, input gradient -- except the input
    gradient of conv1, which needs none (image_grad=False): the FLOPs every product reports add up."""
    import numpy as np

    from tinysqueeze.models import squeezenet1_1
    from tinysqueeze.models.summary import table
    from tinysqueeze.studies.bench import instrumented_step

    model = squeezenet1_1(num_classes=10, image_grad=False)
    rows = table(model, 32)
    macs, conv1 = sum(r.macs for r in rows), rows[0].macs
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 3, 32, 32)).astype(np.float32), np.array([1, 2])
    flop = instrumented_step(model.train(), x, y)["kernels"]["matmul_flop"]
    assert flop == 2 * 2 * (3 * macs - conv1)


def test_the_report_names_the_cpu_it_ran_on(tmp_path):
    from tinysqueeze.studies.bench import cpu_name

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n")
    assert cpu_name(str(info)) == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert cpu_name(str(tmp_path / "missing")) != ""                # another system: Python's guess
