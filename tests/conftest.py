"""What many test files share: a tiny training run's settings (as a TrainConfig and as `train`'s flags),
a tiny synthetic set, its loader and a fixed batch of it, finished tiny runs (each trained once per
session), and a run's metrics.csv as rows.

Tiny means seconds: 32 px, 48 training and 20 validation images of `--data synthetic`, batches of 16.
A test that needs other numbers says so where it asks: tiny_config(out, epochs=3, optimizer="sgd")."""
import csv
import shutil

import pytest

from tinysqueeze.datasets import DataLoader, channel_stats, load_split
from tinysqueeze.training.train import TrainConfig, fit, prepare

TINY_RUN = dict(model="squeezenet1_1", data="synthetic", image_size=32, epochs=2, batch_size=16, synthetic_train=48,
                synthetic_val=20, warmup_epochs=0.5, lr=1e-3)


def tiny_config(out=None, **changes) -> TrainConfig:
    """TINY_RUN with `changes`, writing to `out` (None: TrainConfig's own default folder)."""
    if out is not None:
        changes["out"] = str(out)
    return TrainConfig(**{**TINY_RUN, **changes})


def tiny_argv(out, **changes) -> list[str]:
    """The flags of `train` (and `diagnose`) for tiny_config(out, **changes): the same run, typed."""
    return tiny_config(out, **changes).to_argv()


def tiny_data(n=32, size=32, seed=0):
    """n synthetic training images of (at least) `size` px, as `train` loads them."""
    return load_split("synthetic", "train", size, seed=seed, synthetic_sizes=(n, 10), progress=False)


def tiny_loader(n=32, batch_size=16, size=32, train=True, seed=0) -> DataLoader:
    """A loader over tiny_data(n, size, seed), normalised by those images' own channel statistics."""
    data = tiny_data(n, size, seed)
    mean, std = channel_stats(data.images)
    return DataLoader(data, batch_size, size, train, mean, std)


def fixed_batch(n=32, size=32, seed=0):
    """n synthetic images with their labels, centre-cropped and normalised: no augmentation."""
    return next(tiny_loader(n, batch_size=n, size=size, train=False, seed=seed).batches(0))


def read_rows(run):
    """A run folder's metrics.csv -> its rows, as dicts of strings."""
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """tiny_runs(**changes): the folder of a finished run of tiny_config(**changes), trained the first
    time a test asks for it and shared by every test after. Read it only: copy it to change it."""
    finished = {}

    def finished_run(**changes):
        key = tuple(sorted(changes.items()))
        if key not in finished:
            out = tmp_path_factory.mktemp("tiny-run")         # a folder of its own name: tiny-run0, tiny-run1, ...
            fit(prepare(tiny_config(out, **changes), progress=False))
            finished[key] = out
        return finished[key]

    return finished_run


@pytest.fixture(scope="session")
def tiny_run(tiny_runs):
    """A finished one-epoch tiny run (config.json, metrics.csv, best.npz, last.npz). Read it only."""
    return tiny_runs(epochs=1)


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path):
    """A copy of tiny_run at tmp_path / "run", for a test that writes into the run."""
    return shutil.copytree(tiny_run, tmp_path / "run")


# --- The tests of one lesson: `pytest -m lesson1` (or `make test-lesson LESSON=1`) -----------------
# A marker per lesson of lessons/README.md (lesson_start, lesson0, lesson1, ..., lesson5b, lesson11b, ...,
# lesson19) on the tests that protect the code that lesson explains. Each lesson's own checks (its
# snippets, the names it points at, its assignment's grading) are found by file name; the tests of its
# code are listed here, as patterns on "file::test name". tests/docs/test_lessons.py holds every lesson to
# having tests and every pattern to matching one.
LESSON_TESTS = {
    "start": [r"test_scalar\.py::"],
    "0": [r"test_layers\.py::test_(parameters_accumulate|module_names|load_state_dict|bad_input|manual_seed)",
          r"test_gradcheck\.py::test_layer_gradients_match_finite_differences\[(Linear|Flatten|Sequential)",
          r"test_eval_keeps_nothing\.py::"],
    "1": [r"test_layers\.py::test_(conv|pointwise|a_convolution_without|the_small_maps)",
          r"test_kernels\.py::test_(im2col|col2im|the_tap_table)",
          r"test_gradcheck\.py::test_layer_gradients_match_finite_differences\[Conv2d\["],
    "2": [r"test_layers\.py::test_(maxpool|avgpool|squeezenet_pool|adaptive)",
          r"test_kernels\.py::test_(maxpool|the_3x3|argmax|squeezenet_pool|pool_output)",
          r"test_gradcheck\.py::test_layer_gradients_match_finite_differences\[(MaxPool|AvgPool|AdaptiveAvgPool)"],
    "3": [r"test_layers\.py::test_(relu|dropout|concat)", r"test_kernels\.py::test_relu",
          r"test_gradcheck\.py::test_layer_gradients_match_finite_differences\[(ReLU|Dropout|Concat\[)"],
    "4": [r"test_layers\.py::test_(softmax|bad_labels)",
          r"test_gradcheck\.py::test_layer_gradients_match_finite_differences\[SoftmaxCrossEntropy"],
    "5": [r"test_gradcheck\.py::"],
    "5b": [r"test_step\.py::", r"test_training_loop\.py::test_(the_default_recipe_overfits|a_few_steps_move)"],
    "6": [r"test_models\.py::test_(fire|bypass)"],
    "7": [r"test_models\.py::test_(parameter_counts|v1_|any_input|torchvision|initiali|initial_loss|skipping|"
          r"logits|registry)", r"test_layers\.py::test_a_(convolution|concatenation)_with_the_batch_inside"],
    "8": [r"test_models\.py::test_(squeeze_ratio|pct_3x3|default_meta|invalid_meta)"],
    "9": [r"test_io\.py::"],
    "10": [r"test_datasets\.py::"],
    "11": [r"test_optimizers\.py::", r"test_training_loop\.py::test_(the_training_loop|a_new_run|a_dead_network|"
           r"dead_classes|a_healthy_run)", r"test_evaluation\.py::test_the_liveness", r"test_diagnose\.py::"],
    "11b": [r"test_activations\.py::"],
    "12": [r"test_training_loop\.py::test_(metrics_say|validation_sees|each_epoch_has|the_shuffle)",
           r"test_evaluation\.py::test_evaluate_", r"test_command_errors\.py::test_evaluate_json"],
    "13": [r"test_run_folder\.py::", r"test_resume_and_locks\.py::test_(resume|a_kill|best_npz|a_checkpoint_that|"
           r"damaged|interrupting|a_ctrl_c)"],
    "14": [r"test_kernels\.py::test_(the_backends|every_layer_runs|the_fastest|the_environment|an_unknown|a_bad_kernel|"
           r"the_batch_inside_twins|the_fused)", r"test_layers\.py::test_a_convolution_with_its_relu_fused", r"test_memory\.py::", r"test_blas_threads\.py::", r"test_bench\.py::", r"test_layers\.py::test_a_cnhw",
           r"test_gradcheck\.py::test_layer_gradients_match_finite_differences\[(Conv2dCNHW|ConcatCNHW|"
           r"Conv2dSmallMaps|CNHWSequential)"],
    "15": [r"test_compress\.py::test_low_rank"],
    "16": [r"test_compress\.py::test_(magnitude|paper_policy|pruned|gradient_masker|kmeans|centroid|finetuning)"],
    "17": [r"test_compress\.py::test_(huffman|tsq|corrupt_and_truncated_tsq|squeezenet1_0_at|sparse_index|"
           r"a_tsq|a_crafted_tsq|cli_compress)"],
    "18": [r"test_sweep\.py::", r"test_sweep_faults\.py::"],
    "19": [r"test_distributed\.py::", r"test_ring_allreduce\.py::", r"test_step\.py::"],
}


def lesson_of_file(name: str) -> str:
    """A lesson file's number in lessons/README.md: '0-start-here-...' -> 'start', '05b-...' -> '5b'."""
    prefix = name.split("-")[0]
    return "start" if name.startswith("0-start") else (prefix.lstrip("0") or "0")


def lesson_marker(lesson: str) -> str:
    return f"lesson_{lesson}" if lesson == "start" else f"lesson{lesson}"


def lessons_of(item, own_checks: dict) -> set:
    """The lessons whose code or text `item` tests (`own_checks`: a lesson's file or assignment -> lesson)."""
    import re
    where = f"{item.path.name}::{item.name}"
    found = {lesson for lesson, patterns in LESSON_TESTS.items() if any(re.search(p, where) for p in patterns)}
    parameter = item.name.partition("[")[2].rstrip("]")
    if item.path.name in ("test_lessons.py", "test_course.py", "test_notebooks.py"):
        key = parameter.rsplit("-", 1)[0] if item.path.name == "test_course.py" else parameter.split(":")[0]
        found |= {own_checks[key]} if key in own_checks else set()
    return found


def pytest_configure(config):
    from tinysqueeze.course.assignments import ASSIGNMENTS
    from pathlib import Path
    lessons = sorted(p.name for p in (Path(__file__).parent.parent / "lessons").glob("[0-9]*.md"))
    config.lesson_own_checks = {name: lesson_of_file(name) for name in lessons}
    config.lesson_own_checks.update({task.name: lesson_of_file(task.lesson_file) for task in ASSIGNMENTS})
    for name in lessons:
        config.addinivalue_line("markers", f"{lesson_marker(lesson_of_file(name))}: the tests of lessons/{name}")


def pytest_collection_modifyitems(config, items):
    found = {}
    for item in items:
        found[f"{item.path.name}::{item.name}"] = sorted(lessons_of(item, config.lesson_own_checks))
        for lesson in found[f"{item.path.name}::{item.name}"]:
            item.add_marker(lesson_marker(lesson))
    import os
    if os.environ.get("TINYSQUEEZE_LESSON_MAP"):       # tests/docs/test_lessons.py asks for the whole table
        import json
        with open(os.environ["TINYSQUEEZE_LESSON_MAP"], "w") as out:
            json.dump(found, out)
