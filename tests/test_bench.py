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
