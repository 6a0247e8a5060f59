"""Runs every Python snippet of every lesson, so a lesson breaks the build when it drifts from the code.

In lessons/*.md, each ```python block runs in order, in one namespace per lesson (a later snippet
may use an earlier one's names), in a temporary folder. A ```output block right after a ```python
block is what that snippet must print, exactly (trailing spaces aside).
"""
import contextlib
import csv
import io
import json
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

LESSONS = sorted((Path(__file__).parents[2] / "lessons").glob("[0-9]*.md"))
BLOCK = re.compile(r"```(python|output)\n(.*?)```", re.S)
# Lessons whose snippets train, sweep or compress a network (seconds to a minute each): `make test` runs
# them, `make test-quick` (-m "not slow") leaves them out.
SLOW_LESSONS = {"05b-your-first-training-loop.md", "07-squeezenet-architecture.md", "11-sgd-and-the-plateau.md",
                "13-checkpoints-and-resume.md", "17-huffman-and-the-tsq-file.md", "18-design-space-sweeps.md",
                "19-data-parallel-sgd.md"}


def snippets(text: str):
    """[(code, expected output or None)] in the order they appear."""
    blocks = [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]
    pairs = []
    for k, (kind, body) in enumerate(blocks):
        if kind == "python":
            following = blocks[k + 1] if k + 1 < len(blocks) else None
            pairs.append((body, following[1] if following and following[0] == "output" else None))
    return pairs


def normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def test_there_are_lessons():
    assert len(LESSONS) >= 5
    assert SLOW_LESSONS <= {p.name for p in LESSONS}, "SLOW_LESSONS names a lesson that is not there"


@pytest.mark.parametrize("lesson", [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW_LESSONS else p
                                    for p in LESSONS], ids=[p.name for p in LESSONS])
def test_lesson_snippets_run_and_print_what_they_say(lesson, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    pairs = snippets(lesson.read_text())
    assert pairs, f"{lesson.name} has no python snippet"
    namespace = {"__name__": f"lesson_{lesson.stem}"}
    for number, (code, expected) in enumerate(pairs, 1):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"{lesson.name} snippet {number}", "exec"), namespace)
        if expected is not None:
            assert normalise(out.getvalue()) == normalise(expected), f"{lesson.name} snippet {number} printed otherwise"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_points_at_code_that_exists(lesson):
    root = Path(__file__).parents[2]
    referenced = set(re.findall(r"tinysqueeze/[A-Za-z0-9_/]+\.py", lesson.read_text()))
    assert referenced, f"{lesson.name} names no file of the code it explains"
    for ref in referenced:
        assert (root / ref).is_file(), f"{lesson.name} points at {ref}, which does not exist"
    assert "## Summary" in lesson.read_text() and "## Exercises" in lesson.read_text()


CODE_POINTER = re.compile(r"`([\w./-]+\.py)`\s*\(([^)]*)\)")


def defined_names(path: Path) -> set[str]:
    """Every function, class, method (as Class.method) and module-level name a Python file defines."""
    import ast
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names |= {f"{node.name}.{item.name}" for item in node.body if isinstance(item, ast.FunctionDef)}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_every_name_a_lesson_points_at_exists_in_its_file(lesson):
    """`path.py` (`name`, `Class.method`, ...): each backticked name must be defined in that file."""
    root = Path(__file__).parents[2]
    missing = []
    for path, inside in CODE_POINTER.findall(lesson.read_text()):
        file = root / path
        if not file.is_file():
            missing.append(f"{path} (no such file)")
            continue
        names = defined_names(file)
        for name in re.findall(r"`([A-Za-z_][\w.]*)`", inside):
            if name not in names:
                missing.append(f"{path}: {name}")
    assert missing == [], f"{lesson.name} points at names that do not exist: {missing}"


DOCUMENTS = [Path(__file__).parents[2] / name for name in ("README.md", "docs/RESULTS.md", "docs/COMMANDS.md",
                                                                "docs/RUN-FOLDER.md", "docs/distributed.md")]


@pytest.mark.parametrize("document", LESSONS + DOCUMENTS, ids=[p.name for p in LESSONS + DOCUMENTS])
def test_documents_point_only_inside_the_repository(document):
    """Every repository path a lesson, the README or a page of docs/ names exists, and none points outside it."""
    root = Path(__file__).parents[2]
    text = document.read_text()
    outside = re.findall(r"\.\./shared|PAPER\.md|STYLE\.md", text)
    assert outside == [], f"{document.name} points outside the repository: {sorted(set(outside))}"
    for path in set(re.findall(r"(?<![\w/.])((?:tinysqueeze|docs|tests|lessons|data)/[\w./-]+\.(?:py|md|png|csv|json))", text)):
        assert (root / path).is_file(), f"{document.name} names {path}, which does not exist"
    prose = re.sub(r"```.*?```", "", text, flags=re.S)       # links live in the prose, not in code
    for link in re.findall(r"\]\(([^)#\s]+)\)", prose):     # markdown links, relative to the document
        if "://" not in link:
            assert (document.parent / link).resolve().is_file(), f"{document.name} links to {link}, which is missing"


# ---------------------------------------------------------------------------- what can be checked by machine
# A lesson must not name a file that is elsewhere, nor quote a figure that its results file does not hold.
ROOT = Path(__file__).parents[2]
INDEX_ROW = re.compile(r"^\| *[\w.-]+ *\| *\[[^\]]*\]\(([^)]+\.md)\) *\| *(.*?) *\|$", re.M)


def test_the_lesson_index_names_files_that_exist_and_that_its_lessons_name():
    """lessons/README.md: every lesson has a row; each row's code column names paths (inside tinysqueeze/,
    else from the repository's root) that exist, and that the lesson of that row names itself."""
    rows = INDEX_ROW.findall((ROOT / "lessons" / "README.md").read_text())
    assert {link for link, _ in rows} >= {p.name for p in LESSONS}, "a lesson has no row in lessons/README.md"
    wrong = []
    for link, code in rows:
        lesson = ROOT / "lessons" / link
        if not lesson.is_file():
            wrong.append(f"{link}: no such lesson")
            continue
        text = lesson.read_text()
        for path in re.findall(r"`([\w./-]+(?:\.py|/))`", code):
            place = next((p for p in (f"tinysqueeze/{path}", path) if (ROOT / p).exists()), None)
            if place is None:
                wrong.append(f"{link}: {path} does not exist")
            elif place not in text:
                wrong.append(f"{link}: the index names {path}, the lesson does not name {place}")
    assert rows and wrong == [], wrong


def results(name: str):
    """A committed results file of docs/results/, read: a CSV as a list of rows of floats (text where a
    cell is not a number), a JSON as it is; a name with * reads every file it matches, sorted."""
    if "*" in name:
        files = sorted((ROOT / "docs" / "results").glob(name))
        assert files, f"no file matches docs/results/{name}"
        return [results(str(f.relative_to(ROOT / "docs" / "results"))) for f in files]
    path = ROOT / "docs" / "results" / name
    if path.suffix == ".json":
        return json.loads(path.read_text())
    def number(text):
        try:
            return float(text)
        except ValueError:
            return text
    with open(path, newline="") as f:
        return [{k: number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def pct(fraction: float, digits: int = 1) -> str:
    """0.6785 -> '67.9': percent, halves rounded up, as the documents write accuracies over 2,000 images."""
    return str(Decimal(repr(round(100 * fraction, 9))).quantize(Decimal(10) ** -digits, ROUND_HALF_UP))


def points(change: float) -> str:
    """-0.0025 -> '−0.25', -0.003 -> '−0.3', 0 -> '0.0', 0.6965 -> '69.65': accuracy or its change in points, to
    the half point of 2,000 images, as the documents write them."""
    text = pct(abs(change), 2)
    text = text[:-1] if text.endswith("0") else text
    return ("−" if round(change, 9) < 0 else "") + text


def spread(values) -> str:
    """'68.0 ± 1.8%' (tinysqueeze.studies.stats: mean ± sample standard deviation)."""
    from tinysqueeze.studies.stats import format_mean_spread
    return format_mean_spread([100 * v for v in values])


def low_high(values, scale=100.0) -> str:
    return f"{scale * min(values):.1f}-{scale * max(values):.1f}"


def compression_point(seed: int, density: float, bits: int) -> dict:
    return next(p for p in results(f"compression-imagenette72-seed{seed}.json")
                if p["density"] == density and p["bits"] == bits)


def stage(seed: int, density: float, which: str) -> float:
    """Top-1 of a model (seed) pruned to density: "uncompressed", "pruned" (right after) or "fine-tuned" — the
    stages before weight sharing, the same at every number of bits (8 at 50%, 6 at 33% are the files' points)."""
    stages = list(compression_point(seed, density, 8 if density == 0.5 else 6)["stages"].values())
    return stages[["uncompressed", "pruned", "fine-tuned"].index(which)]


def points_lost(density: float, bits: int) -> list[float]:
    """Top-1 lost by compressing each of the three models (seeds 0, 1, 2) to this point."""
    return [stage(s, density, "uncompressed") - compression_point(s, density, bits)["top1"] for s in range(3)]


def compression_row(density: float, bits: int) -> tuple:
    """README's compression table, from the three models' files: top-1 of seed 0, the change from fp32 per
    seed, its mean ± sd, seed 0's file size, seed 0's top-1 right after pruning and after fine-tuning."""
    points_ = [compression_point(s, density, bits) for s in range(3)]
    changes = [p["top1"] - p["stages"]["uncompressed"] for p in points_]
    from tinysqueeze.studies.stats import mean_and_spread
    mean, sd = mean_and_spread(changes)
    stages = list(points_[0]["stages"].values())           # uncompressed, pruned, pruned + fine-tuned, ...
    mean = ("−" if round(mean, 9) < 0 else "") + pct(abs(mean))
    return (pct(points_[0]["top1"]), *map(points, changes), mean, pct(sd), f"{points_[0]['bytes']:,}",
            pct(stages[1]), pct(stages[2]))


def last(run: list[dict], column: str) -> float:
    return run[-1][column]


def best(run: list[dict], column: str = "val_top1") -> float:
    return max(row[column] for row in run)


ADAM_RUN = "imagenette72-squeezenet1_1-metrics.csv"          # lesson 12's run
SMALL_RUNS = "seeds/synthetic-default-lars-float32-numba-seed*-metrics.csv"   # make train-small, seeds 0-4
LARS_RUNS = "seeds/imagenette72-default-lars-seed*-metrics.csv"
ALEXNET_RUNS = "alexnet/imagenette72-alexnet-seed*-metrics.csv"
COMPLEX_RUNS = "alexnet/imagenette72-complex-bypass-seed*-metrics.csv"
# (document, results file(s) under docs/results/, the quoted text with {} for each figure, the figures from the
# file). Whitespace and line breaks in the document do not matter.
QUOTES = [
    ("README.md", SMALL_RUNS, "from scratch on generated shapes ({}% over {} seeds)",
     lambda runs: (low_high([last(r, "val_top1") for r in runs]), len(runs))),
    ("README.md", SMALL_RUNS, "{} top-1 over {} seeds, none below {}%",
     lambda runs: (spread([last(r, "val_top1") for r in runs]), len(runs), pct(min(last(r, "val_top1") for r in runs)))),
    ("README.md", LARS_RUNS, "| {} top-1 ({} seeds); Adam {} |",
     lambda runs: (spread(last(r, "val_top1") for r in runs), len(runs),
                   spread(last(r, "val_top1") for r in results("seeds/imagenette72-adam-seed*-metrics.csv")))),
    ("README.md", LARS_RUNS, "| {} against {}; with the complex bypass {}, 54x fewer parameters |",
     lambda runs: (spread(last(r, "val_top1") for r in runs), spread(last(r, "val_top1") for r in results(ALEXNET_RUNS)),
                   spread(last(r, "val_top1") for r in results(COMPLEX_RUNS)))),
    ("README.md", "compression-imagenette72-seed*.json", "the Imagenette model loses {} ± {} points",
     lambda seeds: tuple(x.lstrip("−") for x in compression_row(0.33, 6)[4:6])),
    ("lessons/11-sgd-and-the-plateau.md", SMALL_RUNS, "within the spread of the seeds ({}%)",
     lambda runs: (low_high([last(r, "val_top1") for r in runs]),)),
    ("lessons/16-pruning-and-weight-sharing.md", SMALL_RUNS, "`make train-small` (about 8 minutes, {}% on its validation images)",
     lambda runs: (low_high([last(r, "val_top1") for r in runs]),)),
    ("docs/RESULTS.md", LARS_RUNS, "The default recipe reaches {} ({}%) and Adam, run the same way with the class margin too, {}",
     lambda runs: (spread(last(r, "val_top1") for r in runs), low_high([last(r, "val_top1") for r in runs]),
                   spread(last(r, "val_top1") for r in results("seeds/imagenette72-adam-seed*-metrics.csv")))),
    ("docs/RESULTS.md", "seeds/imagenette72-*-seed0-metrics.csv",
     "seed 0 ends with training accuracy {} points above validation, Adam {})",
     lambda runs: tuple(f"{100 * (last(r, 'train_top1') - last(r, 'val_top1')):.1f}" for r in runs[::-1])),
    ("lessons/11-sgd-and-the-plateau.md", "seeds/imagenette72-*-seed0-metrics.csv",
     "Adam's training accuracy is {} points above its validation accuracy, the default's {}.",
     lambda runs: tuple(f"{100 * (last(r, 'train_top1') - last(r, 'val_top1')):.1f}" for r in runs)),
    ("lessons/12-reading-a-loss-curve.md", ADAM_RUN, "(epoch 1: {} against {})",
     lambda run: (f"{run[0]['val_loss']:.2f}", f"{run[0]['train_loss']:.2f}")),
    ("lessons/12-reading-a-loss-curve.md", ADAM_RUN, "Training loss keeps falling ({} at the end); validation loss flattens near {}",
     lambda run: (f"{last(run, 'train_loss'):.2f}", f"{last(run, 'val_loss'):.2f}")),
    ("lessons/12-reading-a-loss-curve.md", ADAM_RUN, "passes validation accuracy ({}% against {}%)",
     lambda run: (f"{100 * last(run, 'train_top1'):.0f}", f"{100 * last(run, 'val_top1'):.0f}")),
    ("lessons/12-reading-a-loss-curve.md", ADAM_RUN, "**The bump at epoch 17** (validation loss {} for one epoch)",
     lambda run: (f"{run[16]['val_loss']:.2f}",)),
    ("lessons/12-reading-a-loss-curve.md", ADAM_RUN, "**Top-5 at {}%**", lambda run: (f"{100 * last(run, 'val_top5'):.0f}",)),
    ("lessons/16-pruning-and-weight-sharing.md", "compression-imagenette72-seed*.json",
     "On the default recipe's model (seed 0, {}%), 50% gives {}% top-1 right after pruning and {}% after three epochs",
     lambda seeds: (pct(seeds[0][0]["top1"]), *compression_row(0.5, 8)[-2:])),
    ("lessons/16-pruning-and-weight-sharing.md", "compression-imagenette72-seed*.json",
     "on the models of seeds 1 and 2, {}% and {}% right after, and after fine-tuning again within a point of where "
     "they began ({}% from {}%, {}% from {}%)",
     lambda seeds: (pct(stage(1, 0.5, "pruned")), pct(stage(2, 0.5, "pruned")),
                    points(stage(1, 0.5, "fine-tuned")), points(stage(1, 0.5, "uncompressed")),
                    points(stage(2, 0.5, "fine-tuned")), points(stage(2, 0.5, "uncompressed")))),
    ("lessons/16-pruning-and-weight-sharing.md", "compression-imagenette72-seed*.json",
     "The paper's 33% at 6 bits costs {}-{} points on all three",
     lambda seeds: (points(min(points_lost(0.33, 6))), points(max(points_lost(0.33, 6))))),
    ("docs/RESULTS.md", "compression-imagenette72-seed*.json",
     "seed 0 (run with the final code: {}% top-1, {} MB fp32) and seeds 1 and 2 of the table above ({}% and {}%",
     lambda seeds: (pct(seeds[0][0]["top1"]), f"{seeds[0][0]['bytes'] / 1e6:.2f}", pct(seeds[1][0]["top1"]),
                    pct(seeds[2][0]["top1"]))),
    ("docs/RESULTS.md", "compression-imagenette72-seed*.json",
     "| 100% | 32 | {}% | | | {} B (fp32) | |", lambda seeds: (pct(seeds[0][0]["top1"]), f"{seeds[0][0]['bytes']:,}")),
    ("docs/RESULTS.md", "compression-imagenette72-seed*.json",
     "| 50% | 8 | {}% | {} / {} / {} | {} ± {} | {} B | {}% → {}% |", lambda seeds: compression_row(0.5, 8)),
    ("docs/RESULTS.md", "compression-imagenette72-seed*.json",
     "| 50% | 6 | {}% | {} / {} / {} | {} ± {} | {} B | {}% → {}% |", lambda seeds: compression_row(0.5, 6)),
    ("docs/RESULTS.md", "compression-imagenette72-seed*.json",
     "| 50% | 4 | {}% | {} / {} / {} | {} ± {} | {} B | {}% → {}% |", lambda seeds: compression_row(0.5, 4)),
    ("docs/RESULTS.md", "compression-imagenette72-seed*.json",
     "| **33%** | **6** | **{}%** | **{} / {} / {}** | **{} ± {}** | **{} B** | {}% → {}% |",
     lambda seeds: compression_row(0.33, 6)),
    ("docs/RESULTS.md", "sweeps/bypass-results.csv", "none {}, simple {}, complex **{}**",
     lambda rows: tuple(spread([r["top1"] for r in rows if r["point"] == f"bypass-{kind}"])
                        for kind in ("none", "simple", "complex"))),
    ("docs/RESULTS.md", LARS_RUNS, "| SqueezeNet 1.1 against AlexNet (64 px, 30 epochs, same recipe) | {} (0.73 M parameters, 2.9 MB) against {}",
     lambda runs: (spread(last(r, "val_top1") for r in runs), spread(last(r, "val_top1") for r in results(ALEXNET_RUNS)))),
    ("docs/RESULTS.md", COMPLEX_RUNS, "| SqueezeNet 1.1 with complex bypass against AlexNet (64 px, 30 epochs) | **{}**",
     lambda runs: (spread(last(r, "val_top1") for r in runs),)),
    ("docs/RESULTS.md", LARS_RUNS, "its best seed, {}%, under AlexNet's worst, {}%",
     lambda runs: (pct(max(last(r, "val_top1") for r in runs)), pct(min(last(r, "val_top1") for r in results(ALEXNET_RUNS))))),
    ("docs/RESULTS.md", COMPLEX_RUNS, "its worst seed ({}%) five above AlexNet's best ({}%)",
     lambda runs: (pct(min(last(r, "val_top1") for r in runs), 2),
                   pct(max(last(r, "val_top1") for r in results(ALEXNET_RUNS)), 2))),
    ("lessons/18-design-space-sweeps.md", LARS_RUNS, "| 2.9 | {} | {} | {} | {} points |",
     lambda runs: (spread(last(r, "val_top1") for r in runs), spread(best(r) for r in runs),
                   spread(last(r, "val_top5") for r in runs),
                   low_high([last(r, "train_top1") - last(r, "val_top1") for r in runs]))),
    ("lessons/18-design-space-sweeps.md", ALEXNET_RUNS, "| 228.2 | {} | {} | {} | {} points |",
     lambda runs: (spread(last(r, "val_top1") for r in runs), spread(best(r) for r in runs),
                   spread(last(r, "val_top5") for r in runs),
                   low_high([last(r, "train_top1") - last(r, "val_top1") for r in runs]))),
    ("lessons/18-design-space-sweeps.md", COMPLEX_RUNS, "| 4.3 | **{}** | {} | {} | {} points |",
     lambda runs: (spread(last(r, "val_top1") for r in runs), spread(best(r) for r in runs),
                   spread(last(r, "val_top5") for r in runs),
                   low_high([last(r, "train_top1") - last(r, "val_top1") for r in runs]))),
]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("document, file, quote, figures", QUOTES,
                         ids=[f"{Path(d).name}: {q[:40]}" for d, _, q, _ in QUOTES])
def test_a_figure_quoted_from_a_results_file_is_in_that_file(document, file, quote, figures):
    expected = quote.format(*figures(results(file)))
    assert flat(expected) in flat((ROOT / document).read_text()), \
        f"{document} should say, from docs/results/{file}: {expected!r}"


SEED_ROW = re.compile(r"^\| (?P<label>[^|*]+?) \| (?P<seed>\d+) \| (?P<top1>[\d.]+)% \| (?P<top5>[\d.]+)% \|"
                      r".*\| (?P<minutes>[\d.]+) \|$", re.M)
SEED_SUMMARY = re.compile(r"^\| \*\*(?P<label>[^|]+?): (?P<n>\d+) seed\(s\)\*\* \| \| \*\*(?P<spread>[^*]+)\*\* "
                          r"\(min (?P<min>[\d.]+)%\)", re.M)
SEED_FILES = {"default (lars), float32, Numba": "synthetic-default-lars-float32-numba",
              "2 ranks (`mpiexec -n 2`)": "2-ranks-mpiexec-n-2", "1 process, the same code": "1-process-the-same-code",
              "default, float64 (`--dtype float64`)": "synthetic-float64",
              "default, NumPy twins (`TINYSQUEEZE_KERNELS=numpy`)": "synthetic-numpy-twins",
              "default (lars)": "imagenette72-default-lars", "adam (`--optimizer adam`)": "imagenette72-adam"}


@pytest.mark.parametrize("document", ["docs/RESULTS.md", "lessons/11-sgd-and-the-plateau.md", "lessons/19-data-parallel-sgd.md"])
def test_the_seed_tables_are_their_metrics_files(document):
    """Each row of a seed table (docs/experiments/seed_table.py's output) against docs/results/seeds/: top-1 and
    top-5 of the last epoch, minutes of training; each group's mean ± sd and lowest top-1."""
    text = (ROOT / document).read_text()
    rows, summaries = list(SEED_ROW.finditer(text)), list(SEED_SUMMARY.finditer(text))
    assert len(rows) >= 6 and len(summaries) >= 2, f"{document}: the seed tables were not found"
    for row in rows:
        run = results(f"seeds/{SEED_FILES[row['label']]}-seed{row['seed']}-metrics.csv")
        written = (row["top1"], row["top5"], row["minutes"])
        measured = (f"{100 * last(run, 'val_top1'):.1f}", f"{100 * last(run, 'val_top5'):.1f}",
                    f"{sum(r['seconds'] for r in run) / 60:.1f}")
        assert written == measured, f"{document}: {row[0]} — its file says top-1, top-5, minutes = {measured}"
    for summary in summaries:
        runs = results(f"seeds/{SEED_FILES[summary['label']]}-seed*-metrics.csv")
        top1 = [last(run, "val_top1") for run in runs]
        assert (summary["n"], summary["spread"], summary["min"]) == \
               (str(len(runs)), spread(top1), f"{100 * min(top1):.1f}"), f"{document}: {summary[0]}"


def test_every_lesson_has_tests_of_its_code_and_every_pattern_finds_one(tmp_path):
    """`pytest -m lesson1` runs the tests of lesson 1's code (tests/conftest.py LESSON_TESTS): each lesson
    has at least three beyond the checks of its own text and assignment, and no pattern of the table has
    gone stale (a renamed test that no pattern finds any more). The whole suite is collected, apart."""
    import os
    import subprocess
    import sys

    from ..conftest import LESSON_TESTS, lesson_of_file

    table = tmp_path / "lessons.json"
    subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                    str(Path(__file__).parents[1])], env={**os.environ, "TINYSQUEEZE_LESSON_MAP": str(table)},
                   capture_output=True, check=True)
    found = json.loads(table.read_text())
    own = ("test_lessons.py::", "test_course.py::", "test_notebooks.py::")
    lessons = {lesson_of_file(p.name) for p in LESSONS}
    assert lessons == set(LESSON_TESTS), "LESSON_TESTS has a row for each lesson of lessons/, and only those"
    for lesson in sorted(lessons):
        code_tests = [test for test, marks in found.items() if lesson in marks and not test.startswith(own)]
        assert len(code_tests) >= 3, f"lesson {lesson}: only {len(code_tests)} tests of its code"
        assert any(lesson in marks for test, marks in found.items() if test.startswith(own)), \
            f"lesson {lesson}: its own text is checked by no test"
    for lesson, patterns in LESSON_TESTS.items():
        for pattern in patterns:
            assert any(re.search(pattern, test) for test in found), f"lesson {lesson}: {pattern!r} finds no test"
