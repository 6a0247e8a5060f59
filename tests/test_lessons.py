"""Runs every Python snippet of every lesson, so a lesson breaks the build when it drifts from the code.

In lessons/*.md, each ```python block runs in order, in one namespace per lesson (a later snippet
may use an earlier one's names), in a temporary folder. A ```output block right after a ```python
block is what that snippet must print, exactly (trailing spaces aside).
"""
import contextlib
import io
import re
from pathlib import Path

import pytest

LESSONS = sorted((Path(__file__).parent.parent / "lessons").glob("[0-9]*.md"))
BLOCK = re.compile(r"```(python|output)\n(.*?)```", re.S)
# Lessons whose snippets train, sweep or compress a network (seconds to a minute each): `make test` runs
# them, `make test-quick` (-m "not slow") leaves them out.
SLOW_LESSONS = {"05b-your-first-training-loop.md", "07-squeezenet-architecture.md", "11-sgd-and-the-plateau.md",
                "13-checkpoints-and-resume.md", "17-huffman-and-the-tsq-file.md", "18-design-space-sweeps.md"}


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
    root = Path(__file__).parent.parent
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
    root = Path(__file__).parent.parent
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


@pytest.mark.parametrize("document", LESSONS + [Path(__file__).parent.parent / "README.md"],
                         ids=[p.name for p in LESSONS] + ["README.md"])
def test_documents_point_only_inside_the_repository(document):
    """Every repository path a lesson or the README names exists, and none points outside it."""
    root = Path(__file__).parent.parent
    text = document.read_text()
    outside = re.findall(r"\.\./shared|PAPER\.md|STYLE\.md", text)
    assert outside == [], f"{document.name} points outside the repository: {sorted(set(outside))}"
    for path in set(re.findall(r"(?<![\w/.])((?:tinysqueeze|docs|tests|lessons|data)/[\w./-]+\.(?:py|md|png|csv|json))", text)):
        assert (root / path).is_file(), f"{document.name} names {path}, which does not exist"
    prose = re.sub(r"```.*?```", "", text, flags=re.S)       # links live in the prose, not in code
    for link in re.findall(r"\]\(([^)#\s]+)\)", prose):     # markdown links, relative to the document
        if "://" not in link:
            assert (document.parent / link).resolve().is_file(), f"{document.name} links to {link}, which is missing"
