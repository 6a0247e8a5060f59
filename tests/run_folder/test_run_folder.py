"""RunFolder (tinysqueeze/training/runs.py): the one code that knows a run folder."""
import ast
import shutil

from tinysqueeze.training.runs import RunFolder

from ..training.test_step import ROOT, python_files


def test_finished_epochs_are_those_the_resume_point_holds(tiny_runs, tmp_path):
    """A kill between metrics.csv and last.npz leaves a row more than the resume point holds: the run
    has not finished that epoch (a sweep must train it again), so finished_epochs counts last.npz."""
    folder = RunFolder(shutil.copytree(tiny_runs(epochs=2), tmp_path / "run"))
    assert folder.finished_epochs() == 2 and len(folder.metrics()) == 2
    shutil.copy(RunFolder(tiny_runs(epochs=1)).last, folder.last)     # epoch 2's last.npz never came
    assert folder.meta().epoch == 0 and folder.finished_epochs() == 1 and len(folder.metrics()) == 2
    folder.last.write_bytes(b"damaged")
    assert folder.finished_epochs() == 0
    folder.last.unlink()
    assert folder.finished_epochs() == 0


def test_only_the_run_folder_knows_the_run_files_names():
    """RunFolder (training/runs.py) is the one place a run's file names are written as paths; every
    other module asks it (folder.last, folder.metrics(), folder.resume_point(), ...)."""
    names = {"last.npz", "best.npz", "metrics.csv", "curves.png", "config.json", ".lock", "train.log"}
    found = []
    for path in python_files():
        if path == ROOT / "tinysqueeze" / "training" / "runs.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert found == []
