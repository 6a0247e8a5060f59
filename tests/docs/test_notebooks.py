"""`make notebooks` (lessons/make_notebooks.py): every lesson becomes a valid notebook whose code cells are
the lesson's snippets, in order, each followed by its expected output as text; and a notebook runs top
to bottom in a Jupyter kernel and prints what the lesson says.

Needs the `notebooks` extra (jupytext, nbformat, nbclient, ipykernel), which `make test` installs."""
import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.docs.test_lessons import LESSONS, normalise, snippets

WHY = "needs the notebooks extra: make notebooks (or make test) installs it"
pytest.importorskip("jupytext", reason=WHY)
nbformat = pytest.importorskip("nbformat", reason=WHY)

SCRIPT = Path(__file__).parents[2] / "lessons" / "make_notebooks.py"
FENCED = re.compile(r"```text\n(.*?)```", re.S)


def load_script():
    spec = importlib.util.spec_from_file_location("make_notebooks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tagged(cell, tag):
    return tag in cell.metadata.get("tags", [])


def lesson_cells(notebook):
    """[(code cell, the expected-output text that follows it before the next code cell, or None)]"""
    pairs = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and not tagged(cell, "scratch-folder"):
            pairs.append([cell, None])
        elif tagged(cell, "expected-output") and pairs and pairs[-1][1] is None:
            pairs[-1][1] = FENCED.search(cell.source).group(1)
    return pairs


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The folder where `make notebooks`' command wrote a notebook of every lesson."""
    out = tmp_path_factory.mktemp("notebooks")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    print(f"{len(LESSONS)} lessons converted in {time.perf_counter() - start:.1f} s")
    return out


def test_every_lesson_has_a_notebook_and_nothing_else(made):
    assert sorted(p.stem for p in made.glob("*.ipynb")) == [p.stem for p in LESSONS]


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_notebook_is_the_lessons_snippets_in_order_each_with_its_expected_output(lesson, made):
    notebook = nbformat.read(made / f"{lesson.stem}.ipynb", as_version=4)
    nbformat.validate(notebook)                                   # raises if not valid nbformat v4
    assert notebook.nbformat == 4
    first_code = next(c for c in notebook.cells if c.cell_type == "code")
    assert notebook.cells[0].cell_type == "markdown" and "temporary folder" in notebook.cells[0].source
    assert tagged(first_code, "scratch-folder") and "os.chdir(tempfile.mkdtemp(" in first_code.source
    expected = snippets(lesson.read_text())
    cells = lesson_cells(notebook)
    assert [c.source.rstrip() for c, _ in cells] == [code.rstrip() for code, _ in expected], \
        f"{lesson.name}: the notebook's code cells are not the lesson's snippets, one for one, in order"
    for number, ((_, shown), (_, output)) in enumerate(zip(cells, expected), 1):
        assert (shown is None) == (output is None), f"{lesson.name} snippet {number}: expected output missing or extra"
        if output is not None:
            assert normalise(shown) == normalise(output), f"{lesson.name} snippet {number}: another expected output"


# the lessons whose snippets train or start processes: seconds each (tests/docs/test_lessons.py --durations)
SLOW_NOTEBOOKS = {"05b-your-first-training-loop.md", "11-sgd-and-the-plateau.md", "13-checkpoints-and-resume.md",
                  "19-data-parallel-sgd.md", "11b-initialisation-and-activation-statistics.md"}


@pytest.mark.parametrize("lesson", [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW_NOTEBOOKS else p
                                    for p in LESSONS], ids=[p.name for p in LESSONS])
def test_every_notebook_runs_top_to_bottom_and_prints_what_the_lesson_says(lesson, tmp_path, monkeypatch):
    """Each lesson's notebook, executed in a Jupyter kernel as a learner runs it (lesson 19's with the
    dist extra's mpiexec, which `make notebooks` installs): no cell raises, every printed output is
    the lesson's, and nothing is written beside the notebook."""
    nbclient = pytest.importorskip("nbclient", reason=WHY)
    pytest.importorskip("ipykernel", reason=WHY)
    notebook = load_script().lesson_notebook(lesson)
    opened_here = tmp_path / "opened-here"
    opened_here.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path))                    # where the first cell's scratch folder goes
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(opened_here)}}).execute()   # raises on an error
    printed = ["".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
               for cell, _ in lesson_cells(notebook)]
    expected = snippets(lesson.read_text())
    assert len(printed) == len(expected)
    for number, (out, (_, output)) in enumerate(zip(printed, expected), 1):
        if output is not None:
            assert normalise(out) == normalise(output), f"{lesson.name} snippet {number} printed otherwise in the notebook"
    assert list(opened_here.iterdir()) == [], "the notebook wrote beside itself instead of into its scratch folder"
