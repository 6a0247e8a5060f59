"""The benchmark's arithmetic and its worker protocol (never a timing: benchmarks print figures)."""
import pytest

from tinysqueeze.studies.bench import compare, ratio_with_spread


def test_the_ratio_is_the_median_of_the_rounds_own_ratios_with_its_spread():
    ours = [0.20, 0.10, 0.40]          # seconds per step in three rounds
    theirs = [0.10, 0.10, 0.10]        # per-round ratios (theirs / ours): 0.5, 1.0, 0.25
    result = ratio_with_spread(ours, theirs)
    assert result["ratio"] == pytest.approx(0.5)              # the median of 0.5, 1.0, 0.25
    assert result["low"] == pytest.approx(0.25)               # round 3: 0.10 / 0.40
    assert result["high"] == pytest.approx(1.0)               # round 2: 0.10 / 0.10
    assert result["noisy"]                                    # 1.0 is 4x 0.25: more than 2x apart


def test_a_busy_moment_on_both_sides_does_not_move_the_median_of_ratios():
    """We run at half their speed. Round 3 ran while the machine was busy (both sides 3x slower),
    round 2 while it was busy during their turn only. The rounds' own ratios are 0.5, 3.0, 0.5: the
    median is 0.5. The ratio of the medians would be 1.5 / 1.0 = 1.5x, pairing a quiet round of ours
    with a busy one of theirs."""
    ours = [1.0, 1.0, 3.0]
    theirs = [0.5, 3.0, 1.5]
    result = ratio_with_spread(ours, theirs)
    assert result["ratio"] == pytest.approx(0.5)
    assert (result["low"], result["high"]) == (pytest.approx(0.5), pytest.approx(3.0))
    assert result["noisy"]                                    # round 2 is 6x the others: flagged
    assert ratio_with_spread([1.0, 1.0], [0.5, 1.0])["noisy"] is False   # exactly 2x apart: not flagged
    assert ratio_with_spread([1.0, 1.0], [0.49, 1.0])["noisy"] is True


def test_the_report_warns_when_the_rounds_disagree_and_shows_the_one_process_ratio():
    from tinysqueeze.studies.bench import report

    ours = {"model": "squeezenet1_1", "size": 32, "batch": 2, "rounds": 3, "steps": 1, "step_s": 0.1,
            "train_img_s": 20.0, "infer_s": 0.05, "infer_img_s": 40.0, "peak_mb": 10.0, "train_gflops": 1.0,
            "instrumented_s": 0.1, "loss_s": 0.001, "optim_s": 0.001, "by_type": {}, "by_layer": {}, "twins": {},
            "first_call": {}, "kernels": {}}
    theirs = dict(ours, version="2.13.0")
    quiet = {"ratio": 1.0, "low": 0.9, "high": 1.1, "noisy": False}
    busy = {"ratio": 1.0, "low": 0.3, "high": 1.1, "noisy": True}
    calm = report(ours, theirs, {"train": quiet, "infer": quiet}, 10.0, {"train": quiet, "infer": quiet})
    assert "warning" not in calm and "both in one process" in calm and "train 1.00x (0.90-1.10)" in calm
    loud = report(ours, theirs, {"train": quiet, "infer": busy}, 10.0, {"train": busy, "infer": quiet})
    warning = [line for line in loud.splitlines() if line.startswith("warning")]
    assert len(warning) == 1 and "infer, train" in warning[0] and "re-run" in warning[0]
    assert "NumPy twins" not in calm                          # --quick: no twins measured, no header


def test_quick_measures_one_configuration_in_fewer_rounds():
    from tinysqueeze.cli import build_parser
    from tinysqueeze.studies.bench import QUICK_CONFIG

    args = build_parser().parse_args(["bench", "--quick"])
    assert args.quick and args.rounds is None and args.steps == 1
    assert QUICK_CONFIG == ("squeezenet1_1", 64, 64)


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


def test_the_gemm_ceiling_is_the_fastest_product_not_the_median(monkeypatch):
    """A ceiling is what the machine can do: one busy moment in the repeats must not lower it. With
    products timed at 4, 1, 3, 5, 2, 6, 7 s, the ceiling is 2 n^3 / 1 s (the median, 4 s, would say a quarter)."""
    from tinysqueeze.studies import bench
    clock = iter([0, 4, 10, 11, 20, 23, 30, 35, 40, 42, 50, 56, 60, 67])
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    assert bench.gemm_gflops(n=10, repeats=7) == 2 * 10**3 / 1 / 1e9


def test_a_worker_times_only_the_steps_after_an_untimed_one(monkeypatch, capsys):
    """serve warms up (two training steps, one inference), then for `train SIDE K` runs one untimed
    step and times K. A fake side on a fake clock: a training step after anything but a training step
    is 'cold' (100 clock units; as the first step after a pause finds cold caches and idle threads),
    every other one takes 1 unit, so the times must be exactly K ones."""
    import io
    import json

    from tinysqueeze.studies import bench

    clock = {"now": 0.0}

    class FakeSide:
        def __init__(self, *args):
            self.calls, self.cold = [], True

        def train(self):
            self.calls.append("train")
            clock["now"] += 100.0 if self.cold else 1.0
            self.cold = False

        def infer(self):
            self.calls.append("infer")
            self.cold = True

    made = []
    monkeypatch.setattr(bench, "OurStep", lambda *a: made.append(FakeSide()) or made[-1])
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock["now"])
    monkeypatch.setattr(bench.sys, "stdin", io.StringIO("train ours 3\nquit\n"))
    bench.serve("ours", "squeezenet1_1", 32, 2)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert "peak_mb" in lines[0]
    assert made[0].calls == ["train", "train", "infer", "train", "train", "train", "train"]
    assert lines[1] == {"times": [1.0, 1.0, 1.0]}


def test_the_pinned_kernels_note_says_what_the_pin_costs_and_only_when_it_costs():
    from tinysqueeze.studies.bench import pinned_kernels_note

    note = pinned_kernels_note("Haswell", "Haswell", 200.0, ("SkylakeX", 400.0))
    assert "OPENBLAS_CORETYPE=Haswell" in note and "takes SkylakeX" in note
    assert "400 GFLOP/s against 200 (2.00x)" in note                       # 400 / 200, by hand
    assert pinned_kernels_note("", "SkylakeX", 400.0, None) is None         # nothing pinned
    assert pinned_kernels_note("Haswell", "Haswell", 200.0, None) is None   # the probe could not say
    assert pinned_kernels_note("SkylakeX", "SkylakeX", 400.0, ("SkylakeX", 420.0)) is None   # the same kernels
    assert pinned_kernels_note("Zen", "Haswell", 200.0, ("SkylakeX", 219.0)) is None   # 1.095x: within 10%
    assert pinned_kernels_note("Zen", "Haswell", 200.0, ("SkylakeX", 221.0)) is not None


def skip_unless_openblas_names_x86_kernels():
    """The tests below pin OpenBLAS to Sandybridge's kernels, an x86-64 set."""
    import platform

    from tinysqueeze.studies.bench import openblas_core

    if platform.machine().lower() not in ("x86_64", "amd64") or openblas_core() is None:
        pytest.skip("NumPy's BLAS here is not an x86-64 OpenBLAS that names its kernels")


def unpinned_environ() -> dict:
    """This process's environment without OPENBLAS_CORETYPE (the machine may pin one)."""
    import os

    return {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}


def openblas_says(environ: dict) -> tuple[str, str]:
    """In a fresh process: (the core OpenBLAS prints as it loads, with OPENBLAS_VERBOSE=2; the one
    `openblas_core` names)."""
    import subprocess
    import sys

    code = "from tinysqueeze.studies.bench import openblas_core; print(openblas_core())"
    done = subprocess.run([sys.executable, "-c", code], env={**unpinned_environ(), **environ, "OPENBLAS_VERBOSE": "2"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = [line.split(":", 1)[1].strip() for line in (done.stdout + done.stderr).splitlines()
               if line.startswith("Core:")]
    return (printed[0] if printed else ""), done.stdout.splitlines()[-1]


def test_the_kernels_named_are_the_ones_openblas_loaded_pinned_or_not():
    skip_unless_openblas_names_x86_kernels()
    pinned, named = openblas_says({"OPENBLAS_CORETYPE": "Sandybridge"})
    assert pinned == named == "Sandybridge"                     # what the pin asked for
    chosen, named = openblas_says({})
    assert chosen and named == chosen                           # OpenBLAS's own choice


def test_the_free_choice_is_measured_without_the_pin():
    from tinysqueeze.studies.bench import free_choice

    assert free_choice({}) is None and free_choice({"OPENBLAS_CORETYPE": " "}) is None
    skip_unless_openblas_names_x86_kernels()
    chosen, _ = openblas_says({})
    core, gflops = free_choice({**unpinned_environ(), "OPENBLAS_CORETYPE": "Sandybridge"})
    assert core == chosen and gflops > 0


def test_the_command_line_keeps_a_pin_the_user_set():
    """The command line sets the threads' waits before NumPy loads (distributed/threads.py); a pin of
    OpenBLAS's kernels it leaves as it is, since it is the user's choice about rounding."""
    import os
    import subprocess
    import sys

    skip_unless_openblas_names_x86_kernels()
    code = ("import os, tinysqueeze.cli; from tinysqueeze.studies.bench import openblas_core; "
            "print(os.environ.get('OPENBLAS_CORETYPE', '-'), openblas_core())")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "OPENBLAS_CORETYPE": "Sandybridge"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["Sandybridge", "Sandybridge"]
