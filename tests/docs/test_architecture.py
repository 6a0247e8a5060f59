"""The package's shape: imports flow one way, down tinysqueeze.LAYERS, and the literal SqueezeNets of
models/squeezenet.py are exactly what the design-space generator builds."""
import ast
from pathlib import Path

import numpy as np
import pytest

import tinysqueeze
from tinysqueeze.models import squeezenet1_0, squeezenet1_1, squeezenet_from_metaparameters

PACKAGE = Path(tinysqueeze.__file__).parent


def layer_of(top: str) -> int:
    for index, names in enumerate(tinysqueeze.LAYERS):
        if top in names:
            return index
    raise AssertionError(f"tinysqueeze/{top} belongs to no layer of tinysqueeze.LAYERS: add it there")


def imported_parts(path: Path, source: str | None = None) -> list[tuple[str, int]]:
    """(top-level part of tinysqueeze imported, line) for every import in the file (or in `source`,
    as if it were that file), functions' included."""
    here = path.relative_to(PACKAGE.parent).with_suffix("").parts      # ("tinysqueeze", "nn", "conv")
    package = here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = list(base) + (node.module.split(".") if node.module else [])
                names = [target] if node.module else [target + [alias.name] for alias in node.names]
            else:
                names = [node.module.split(".")] if node.module else []
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        else:
            continue
        for parts in names:
            if parts[0] == "tinysqueeze" and len(parts) > 1:
                found.append((parts[1], node.lineno))
    return found


def module_top(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def test_imports_never_point_up_a_layer():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue
        own = layer_of(module_top(path))
        for top, line in imported_parts(path):
            if layer_of(top) > own:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports tinysqueeze.{top}, a layer above")
    assert wrong == []


def test_the_import_check_sees_an_upward_import():
    """The checker itself: a relative import of `train` from inside nn/ is found and resolved."""
    probe = PACKAGE / "nn" / "probe.py"                      # never written: its source is given
    source = "def f():\n    from ..training.train import fit\n    from . import conv\n    import tinysqueeze.cli\n"
    assert imported_parts(probe, source) == [("training", 2), ("nn", 3), ("cli", 4)]
    assert layer_of("training") > layer_of(module_top(probe))


@pytest.mark.parametrize("version, build", [("1_0", squeezenet1_0), ("1_1", squeezenet1_1)])
@pytest.mark.parametrize("bypass", [None, "simple", "complex"])
def test_the_literal_squeezenets_are_what_the_generator_builds(version, build, bypass):
    """Table 1 written out layer by layer (models/squeezenet.py) against the paper's metaparameters
    (base_e 128, incr_e 128, pct_3x3 0.5, freq 2, sr 0.125) on the same macroarchitecture: the same
    layers in the same order, the same bypasses, and the same weights from the same seed."""
    literal = build(num_classes=10, bypass=bypass, seed=5)
    generated = squeezenet_from_metaparameters(128, 128, 0.5, 2, 0.125, bypass=bypass, num_classes=10, seed=5,
                                               version=version)
    assert repr(literal) == repr(generated)
    a, b = literal.state_dict(), generated.state_dict()
    assert list(a) == list(b)
    assert all(np.array_equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------- behaviour kept
OLD_CHECKPOINT = Path(__file__).parents[1] / "fixtures" / "checkpoint-before-redesign.npz"
# Written by `train` at commit 9b3c226, before the redesign: squeezenet_meta (base_e 4, incr_e 4,
# sr 0.5, v1.1) at 32 px, one epoch on 32 synthetic images, seed 0.


@pytest.mark.slow
def test_a_checkpoint_written_before_the_redesign_loads_evaluates_and_resumes(tmp_path, capsys):
    import shutil

    from tinysqueeze.cli import main
    from tinysqueeze.training.loading import load_run

    model, meta, optimizer_state = load_run(OLD_CHECKPOINT)
    assert meta.model == "squeezenet_meta" and meta.model_args["base_e"] == 4 and meta.epoch == 0
    assert model.num_classes == 10 and optimizer_state
    assert main(["evaluate", "--checkpoint", str(OLD_CHECKPOINT), "--json",
                 "--confusion", str(tmp_path / "c.png")]) == 0
    assert '"n": 16' in capsys.readouterr().out
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(OLD_CHECKPOINT, run / "last.npz")
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 0
    assert load_run(run / "last.npz")[1].epoch == 1


@pytest.mark.slow
def test_a_compressed_design_space_point_loads_as_itself(tmp_path):
    """A .tsq names its model and that model's arguments, so loading.load_model rebuilds the same network."""
    from tinysqueeze.compress import deep_compress, save_compressed
    from tinysqueeze.models import get_model
    from tinysqueeze.training.loading import load_model

    point = get_model("squeezenet_meta", num_classes=4, sr=0.25, pct_3x3=0.75, version="1_1")
    compressed = deep_compress(point, 0.5, 4)
    save_compressed(tmp_path / "p.tsq", compressed, "squeezenet_meta", {"sr": 0.25, "pct_3x3": 0.75, "version": "1_1"})
    loaded, meta = load_model(tmp_path / "p.tsq")
    assert meta is None and repr(loaded) == repr(point)
    a, b = loaded.state_dict(), point.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("command", ["train", "diagnose", "sweep", "compare"])
def test_train_flags_are_trainconfigs_fields_with_its_defaults(command):
    """TrainConfig is the one place a training setting and its default live; `train`, `diagnose`,
    `sweep` and `compare` get one flag per field from it (a sweep all but the fields each of its runs
    sets: model, model args, seed, folder)."""
    import argparse
    from dataclasses import MISSING, fields

    from tinysqueeze.cli import build_parser
    from tinysqueeze.studies.sweep import SET_PER_RUN
    from tinysqueeze.training.train import TrainConfig

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    flags = {a.dest: a for a in commands[command]._actions}
    per_run = SET_PER_RUN if command in ("sweep", "compare") else ()
    for f in fields(TrainConfig):
        if f.name in per_run:
            continue
        default = {} if f.default is MISSING else f.default
        assert f.name in flags, f"{command} has no --{f.name.replace('_', '-')}"
        assert flags[f.name].default == default, f.name
        assert flags[f.name].help.startswith(f.metadata["help"]), f.name


def test_the_map_in_docs_architecture_is_the_layers_in_order():
    """docs/ARCHITECTURE.md is the one map of the package: its diagram's rows, bottom first, name the
    folders (the top row: the modules) of tinysqueeze.LAYERS, in order, and its table has a row for each."""
    import re

    text = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text()
    diagram = text.split("```")[1]
    rows = re.split(r"\n\s*[├└]─+┤?┘?\n", diagram.strip())
    drawn = []
    for row in reversed(rows):
        folders = re.findall(r"(?<![\w/.])(\w+)/", row)
        drawn.append(tuple(folders) if folders else tuple(re.findall(r"(\w+)\.py", row)))
    assert drawn == [tuple(layer) for layer in tinysqueeze.LAYERS]
    table = {cell for cell in re.findall(r"^\| `(\w+)(?:/|\.py)` \|", text, re.MULTILINE)}
    assert {name for layer in tinysqueeze.LAYERS for name in layer} - {"__main__"} == table
