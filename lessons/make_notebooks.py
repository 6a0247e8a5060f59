"""Makes a Jupyter notebook of every lesson (`make notebooks`), into notebooks/ (git-ignored).

    python lessons/make_notebooks.py [--out FOLDER] [LESSON.md ...]

The markdown lessons stay the one source (tests/docs/test_lessons.py runs their snippets); a notebook is
made from one, never edited by hand. jupytext reads the markdown: each ```python block becomes a code
cell, the prose markdown cells. Then each ```output block (what the snippet above it must print)
becomes a markdown cell of its own, "Expected output", right where the lesson has it; and two cells
go first: a note on where the notebook comes from, and a cell that moves into a fresh temporary
folder, because the snippets write files into the current folder.

Needs the `notebooks` extra (jupytext, nbformat); the package tinysqueeze does not.
"""
import argparse
import re
from pathlib import Path

import jupytext
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

LESSONS = Path(__file__).resolve().parent
OUTPUT = re.compile(r"^```output\n(.*?)^```[ \t]*$\n?", re.S | re.M)
EXPECTED = "**Expected output** (the lesson's; `tests/docs/test_lessons.py` checks that the cell above prints it):"
NOTE = """*This notebook is made from `lessons/{name}` by `make notebooks`: run the cells in order, change them,
run them again. To change the lesson itself, edit the markdown file (a notebook made again from it replaces
this one). Under each cell that prints, "Expected output" is what the lesson says it prints.*

*The snippets write files into the current folder, so the next cell makes a fresh temporary folder and
works there: the notebook runs top to bottom from wherever it is opened, each time afresh as the tests
run it, and leaves nothing beside it. It prints the folder's name, to look at the files. Skip it to
work in the notebook's own folder instead.*"""
SCRATCH = """import os, tempfile
os.chdir(tempfile.mkdtemp(prefix="tinysqueeze-lesson-"))
print("working in", os.getcwd())"""


def expected_output_cell(text: str):
    return new_markdown_cell(f"{EXPECTED}\n\n```text\n{text}```", metadata={"tags": ["expected-output"]})


def split_outputs(markdown: str) -> list:
    """A markdown cell as cells: its prose, and each ```output block as an "Expected output" cell."""
    cells, start = [], 0
    for block in OUTPUT.finditer(markdown):
        if markdown[start:block.start()].strip():
            cells.append(new_markdown_cell(markdown[start:block.start()].strip()))
        cells.append(expected_output_cell(block.group(1)))
        start = block.end()
    if markdown[start:].strip():
        cells.append(new_markdown_cell(markdown[start:].strip()))
    return cells


def lesson_notebook(lesson: Path):
    """The notebook of one lesson (nbformat v4)."""
    read = jupytext.reads(lesson.read_text(), fmt="md")
    cells = [new_markdown_cell(NOTE.format(name=lesson.name)),
             new_code_cell(SCRATCH, metadata={"tags": ["scratch-folder"]})]
    for cell in read.cells:
        cells += [new_code_cell(cell.source)] if cell.cell_type == "code" else split_outputs(cell.source)
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Make a notebook of each lesson.")
    parser.add_argument("lessons", nargs="*", type=Path, help="lesson files (default: every lessons/[0-9]*.md)")
    parser.add_argument("--out", type=Path, default=LESSONS.parent / "notebooks", help="folder for the notebooks")
    args = parser.parse_args(argv)
    lessons = args.lessons or sorted(LESSONS.glob("[0-9]*.md"))
    args.out.mkdir(parents=True, exist_ok=True)
    for lesson in lessons:
        notebook = lesson_notebook(lesson)
        nbformat.validate(notebook)
        nbformat.write(notebook, args.out / f"{lesson.stem}.ipynb")
    print(f"{len(lessons)} notebooks in {args.out}/")


if __name__ == "__main__":
    main()
