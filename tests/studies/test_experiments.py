"""Smoke tests of the experiment scripts under docs/experiments: each runs end to end on tiny runs and
writes what it promises (the real figures come from real runs; these prove the scripts still work
with the package as it is)."""
import importlib.util
import json
from pathlib import Path

import pytest

from tinysqueeze.training.train import TrainConfig

EXPERIMENTS = Path(__file__).resolve().parents[2] / "docs" / "experiments"
pytestmark = pytest.mark.slow


def script(name):
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def two_runs(tiny_runs):
    """Two finished tiny runs (seeds 0 and 1) of squeezenet1_1 on synthetic images at 32 px."""
    return [tiny_runs(epochs=2, synthetic_train=32, synthetic_val=16, seed=seed) for seed in (0, 1)]


def test_seed_table_prints_each_run_and_the_mean(two_runs, capsys):
    script("seed_table").main([f"tiny=={','.join(map(str, two_runs))}"])
    out = capsys.readouterr().out.splitlines()
    assert out[2].startswith("| tiny= | 0 |") and out[3].startswith("| tiny= | 1 |")
    assert out[4].startswith("| **tiny=: 2 seed(s)** | | **") and " ± " in out[4]


def test_runs_side_by_side_prints_a_table_and_draws(two_runs, tmp_path, capsys):
    picture = tmp_path / "side.png"
    script("runs_side_by_side").main(str(picture), f"a={two_runs[0]}", f"b={','.join(map(str, two_runs))}")
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("| a | 1 | 727,626 | 2.91 |") and lines[3].startswith("| b | 2 |")
    assert picture.stat().st_size > 1000


def test_conv1_filters_draws_the_filters(two_runs, tmp_path):
    picture = tmp_path / "filters.png"
    script("conv1_filters").main(str(two_runs[0] / "last.npz"), str(picture))
    assert picture.stat().st_size > 1000


def test_compression_runs_the_pipeline_and_plots(two_runs, tmp_path, monkeypatch):
    compression = script("compression")
    monkeypatch.setattr(compression, "POINTS", [(0.5, 4)])
    monkeypatch.setattr(compression, "PRUNE_EPOCHS", 1)
    compression.main(str(two_runs[0] / "best.npz"), None, str(tmp_path))
    results = json.loads((tmp_path / "compression-imagenette72.json").read_text())
    assert [(r["density"], r["bits"]) for r in results] == [(1.0, 32), (0.5, 4)]
    assert results[1]["bytes"] < results[0]["bytes"] and (tmp_path / "compression-imagenette72.png").is_file()
    compression.plot({"a": results, "b": results}, tmp_path / "two.png")
    assert (tmp_path / "two.png").is_file()


def test_overfit_recipes_takes_train_steps():
    overfit = script("overfit_recipes")
    make_optimizer, lr, margin = overfit.RECIPES["LARS 0.001, margin 3 (default)"]
    result, dead = overfit.overfit(make_optimizer, lr, margin, seed=0, steps=3)
    assert result.endswith("after 3") and dead == 0


def test_first_steps_traces_three_recipes(tmp_path, monkeypatch):
    first_steps = script("first_steps")
    monkeypatch.setattr(first_steps, "TrainConfig",
                        lambda **kw: TrainConfig(**dict(kw, image_size=32, synthetic_train=64, synthetic_val=16)))
    first_steps.main(str(tmp_path / "steps.png"), steps=3)
    assert (tmp_path / "steps.png").stat().st_size > 1000


def test_the_scaling_model_is_the_ring_formula_and_draws(tmp_path, capsys):
    """By hand: 1,250,000 float32 gradients are 5 MB; on 2 workers over 10 Gbit/s (1.25 GB/s) the ring sends
    2 (2-1)/2 x 5 MB = 5 MB, 4 ms, plus 2 messages of 25 us: 4.05 ms; a 1 s step then runs at 1/1.00405."""
    model = script("scaling_model")
    assert model.allreduce_seconds(1_250_000, 2, 10) == pytest.approx(4.05e-3)
    assert model.allreduce_seconds(1_250_000, 1, 10) == 0.0
    assert model.efficiency(1_250_000, 1.0, 2, 10) == pytest.approx(1 / 1.00405)
    inputs = {"small": (1_250_000, 0.03), "large": (61_100_840, 0.03)}
    lines = model.table(inputs)
    assert lines[2].startswith("| small | 5.0 | 0.96 s | 10 Gbit/s | 100% |") and len(lines) == 2 + 2 * 2 * 3
    model.draw(tmp_path / "scaling.png", inputs)
    assert (tmp_path / "scaling.png").stat().st_size > 10_000
