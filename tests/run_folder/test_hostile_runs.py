"""Hostile data, run files and flags (issue 23, sections 2 and 4): each is built here, given to the command
that reads it, and must end in one `error:` line naming the problem and its file (exit 2, no traceback),
before any large allocation -- or, for a file that can be skipped, a warning and the rest of the data.

The memory cases run in a subprocess under a 2 GiB address-space limit (resource.RLIMIT_AS): before
the fixes each of them ran into a MemoryError (or worse, without the limit)."""
import csv
import io
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from tinysqueeze.cli import main
from tinysqueeze.formats.weights import save_weights
from tinysqueeze.models import squeezenet1_1

from ..conftest import tiny_argv

MEMORY_CAP = 2 * 1024 ** 3


def refused(capsys, argv, *says) -> str:
    """Runs the command in this process: exit 2, exactly one `error:` line containing each of `says`
    (`warning:` lines beside it are fine), no traceback."""
    code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err[-3000:]
    for text in says:
        assert str(text) in errors[0], errors[0]
    return errors[0]


def capped(argv, code="from tinysqueeze.cli import main; import sys; sys.exit(main(sys.argv[1:]))", env=None):
    """Runs `code` with argv in a subprocess whose address space is capped at MEMORY_CAP."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    environment = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True,
                          preexec_fn=cap, env=environment, timeout=120)


def refused_capped(argv, *says, code=None, env=None) -> str:
    result = capped(argv, env=env) if code is None else capped(argv, code, env)
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    for text in says:
        assert str(text) in errors[0], errors[0]
    return errors[0]


def png(path, width, height, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def image_folder(root, per_class=6):
    """root/a/*.png, root/b/*.png: a tiny two-class ImageFolder."""
    for k, name in enumerate("ab"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            png(root / name / f"{i}.png", 40, 40, seed=10 * k + i)
    return root


# ------------------------------------------------------------------- section 2: sizes from a file or a flag
def test_a_2000000_by_1_png_is_refused_by_predict_naming_the_limit(tmp_path):
    weights = save_weights(squeezenet1_1(num_classes=3, seed=0).state_dict(), tmp_path / "w.npz")
    strip = png(tmp_path / "strip.png", 2_000_000, 1)
    refused_capped(["predict", strip, "--weights", weights, "--image-size", 32], strip, "pixels",
                   "MAX_IMAGE_PIXELS")


def test_a_2000000_by_1_png_in_a_dataset_is_skipped_with_a_warning(tmp_path):
    root = image_folder(tmp_path / "data")
    png(root / "a" / "strip.png", 2_000_000, 1)
    code = ("import sys, warnings; warnings.simplefilter('always')\n"
            "from tinysqueeze.datasets import load_split\n"
            "d = load_split(sys.argv[1], 'train', 32, progress=False)\n"
            "print(len(d), d.skipped)")
    result = capped([root], code, env={"TINYSQUEEZE_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "strip.png" in result.stdout and "skipped 1 unreadable image" in result.stderr


def downsampled(root, labels):
    root.mkdir()
    for name in ("train_data_batch_1", "val_data"):
        data = np.zeros((len(labels), 3 * 8 * 8), np.uint8)
        with open(root / name, "wb") as f:
            pickle.dump({"data": data, "labels": list(labels)}, f)
    return root


def test_a_downsampled_imagenet_label_of_a_billion_is_refused_naming_the_file(tmp_path):
    root = downsampled(tmp_path / "ds", [1, 2, 10 ** 9])
    refused_capped(["train", "--data", root, "--out", tmp_path / "run", "--epochs", 1, "--image-size", 32],
                   root / "train_data_batch_1", "1000000000")


@pytest.mark.parametrize("argv, says", [
    (["summary", "--image-size", "100000"], "at most 1024"),
    (["summary", "--num-classes", "1000000000"], "at most 100000"),
    (["compress", "--num-classes", "1000000000", "--out", "x.tsq"], "at most 100000"),
    (["predict", "x.png", "--image-size", "100000", "--weights", "w.npz"], "at most 1024"),
    (["train", "--image-size", "100000", "--epochs", "1"], "at most 1024"),
    (["sweep", "sr", "--values", "0.5", "--image-size", "100000"], "at most 1024"),
])
def test_a_huge_size_flag_is_refused_with_its_maximum(argv, says, tmp_path):
    if argv[0] in ("train", "sweep"):
        argv = [*argv, "--out", str(tmp_path / "out")]
    if argv[0] == "predict":              # a real image and real weights: the size alone must be refused
        weights = save_weights(squeezenet1_1(num_classes=3, seed=0).state_dict(), tmp_path / "w.npz")
        argv = [str(png(tmp_path / "x.png", 40, 40)) if a == "x.png" else str(weights) if a == "w.npz" else a
                for a in argv]
    refused_capped(argv, says)


@pytest.mark.parametrize("command, flag, says", [
    ("summary", "--image-size", "at most 1024"), ("summary", "--num-classes", "at most 100,000"),
    ("predict", "--image-size", "at most 1024"), ("compress", "--num-classes", "at most 100,000"),
    ("compress", "--image-size", "at most 1024"), ("train", "--image-size", "at most 1024"),
    ("bench", "--image-size", "at most 1024"), ("sweep", "--image-size", "at most 1024"),
])
def test_the_maximum_is_stated_in_the_help(command, flag, says, capsys):
    with pytest.raises(SystemExit):
        main([command, *(["sr"] if command == "sweep" else []), "--help"])
    options = " ".join(capsys.readouterr().out.split()).split("options:", 1)[1]
    upper = flag.lstrip("-").replace("-", "_").upper()
    assert says in options.split(f"{flag} {upper} ", 1)[1].split(" --", 1)[0]


# ------------------------------------------------------------------- checkpoint meta
def with_meta(src, dst, change):
    """A copy of the checkpoint `src` at `dst` whose meta entry is `change(meta)` (a dict, or the raw
    JSON text when it returns a str), rewritten inside the zip archive; every other entry as it was."""
    with zipfile.ZipFile(src) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(np.load(io.BytesIO(entries["meta.npy"]), allow_pickle=False).tobytes().decode())
    new = change(meta)
    text = new if isinstance(new, str) else json.dumps(new)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.frombuffer(text.encode(), dtype=np.uint8), allow_pickle=False)
    entries["meta.npy"] = buffer.getvalue()
    with zipfile.ZipFile(dst, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return dst


def without(key):
    return lambda meta: {k: v for k, v in meta.items() if k != key}


def setting(key, value):
    return lambda meta: dict(meta, **{key: value})


def config_setting(key, value):
    return lambda meta: dict(meta, config=dict(meta["config"], **{key: value}))


def config_without(key):
    return lambda meta: dict(meta, config={k: v for k, v in meta["config"].items() if k != key})


BAD_META = [
    ("no mean", without("mean"), "mean"),
    ("no std", without("std"), "std"),
    ("no image_size", without("image_size"), "image_size"),
    ("no classes", without("classes"), "classes"),
    ("no config", without("config"), "config"),
    ("classes a number", setting("classes", 5), "classes"),
    ("classes of numbers", setting("classes", [1, 2, 3]), "classes"),
    ("class_names a number", setting("class_names", 7), "class_names"),
    ("image_size text", setting("image_size", "big"), "image_size"),
    ("image_size huge", setting("image_size", 10 ** 9), "image_size"),
    ("image_size float", setting("image_size", 32.5), "image_size"),
    ("config a list", setting("config", [1, 2]), "config"),
    ("model a number", setting("model", 5), "model"),
    ("model_args a list", config_setting("model_args", [1]), "model_args"),
    ("model_args unknown", config_setting("model_args", {"bogus": 1}), "model_args"),
    ("model_args huge", config_setting("model_args", {"num_classes": 10 ** 9}), "model_args"),
    ("generators a list", setting("generators", [1]), "generators"),
    ("best_top1 text", setting("best_top1", "high"), "best_top1"),
    ("very deep JSON", lambda meta: "[" * 100_000 + "]" * 100_000, "nested"),
]


@pytest.mark.parametrize("change, says", [c[1:] for c in BAD_META], ids=[c[0] for c in BAD_META])
def test_a_checkpoint_with_bad_meta_is_one_error_line(change, says, tiny_run, tmp_path, capsys):
    bad = with_meta(tiny_run / "best.npz", tmp_path / "best.npz", change)
    image = png(tmp_path / "x.png", 40, 40)
    refused(capsys, ["evaluate", "--checkpoint", str(bad)], bad, says)
    refused(capsys, ["predict", str(image), "--checkpoint", str(bad)], bad, says)
    refused(capsys, ["compress", "--checkpoint", str(bad), "--out", str(tmp_path / "c.tsq")], bad, says)


@pytest.mark.parametrize("change, says", [
    (without("classes"), "classes"),
    (setting("image_size", "big"), "image_size"),
    (config_without("data"), "data"),
    (config_setting("seed", "zero"), "seed"),
    (lambda meta: "[" * 100_000 + "]" * 100_000, "nested"),
    (lambda meta: dict(meta, generators={k: {"bit_generator": "PCG64", "state": "nonsense"}
                                         for k in meta["generators"]}), "generator"),
    (lambda meta: dict(meta, generators={k: 5 for k in meta["generators"]}), "generator"),
    (lambda meta: dict(meta, generators={k: {"bit_generator": "MT19937"} for k in meta["generators"]}), "generator"),
], ids=["no classes", "image_size text", "no data", "seed text", "deep JSON", "generator state text",
        "generator state a number", "generator of another kind"])
def test_resume_from_a_last_npz_with_bad_meta_is_one_error_line(change, says, tiny_run_copy, capsys):
    last = tiny_run_copy / "last.npz"
    with_meta(last, last, change)
    refused(capsys, ["train", *tiny_argv(tiny_run_copy, epochs=2), "--resume", "--quiet"], last, says)


@pytest.mark.parametrize("text, says", [
    ("[" * 100_000 + "]" * 100_000, "not a JSON file"),
    ('{"lr": "x"}', "lr='x'"),
    ('{"image_size": "big"}', "image_size='big'"),
    ('{"model_args": [1]}', "model_args=[1]"),
    ('{"batch_size": null}', "batch_size=None"),
    ('{"seed": true}', "seed=True"),
], ids=["nested too deep", "lr text", "image_size text", "model_args a list", "batch_size null", "seed a bool"])
def test_a_config_json_of_the_wrong_kinds_is_one_error_line(text, says, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(text)
    refused(capsys, ["train", "--config", str(config), "--out", str(tmp_path / "run")], config, says)


# ------------------------------------------------------------------- metrics.csv
def test_resume_with_a_metrics_csv_without_its_columns_is_one_error_line(tiny_run_copy, capsys):
    metrics = tiny_run_copy / "metrics.csv"
    metrics.write_text("when,what\n1,2\n")
    refused(capsys, ["train", *tiny_argv(tiny_run_copy, epochs=2), "--resume", "--quiet"], metrics, "epoch")


def test_resume_with_a_metrics_csv_of_text_is_one_error_line(tiny_run_copy, capsys):
    metrics = tiny_run_copy / "metrics.csv"
    rows = list(csv.reader(metrics.open()))
    rows[1][0] = "first"
    with metrics.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    refused(capsys, ["train", *tiny_argv(tiny_run_copy, epochs=2), "--resume", "--quiet"], metrics, "first")


def test_sweep_collect_with_a_metrics_csv_without_its_columns_is_one_error_line(tmp_path, capsys):
    from tinysqueeze.studies.sweep import make_points

    point = make_points("sr", ["0.5"])[0]
    metrics = tmp_path / "sweep" / "points" / f"{point.name}-seed0" / "metrics.csv"
    metrics.parent.mkdir(parents=True)
    metrics.write_text("epoch,lr\n1,0.1\n")
    refused(capsys, ["sweep", "sr", "--values", "0.5", "--out", str(tmp_path / "sweep"), "--collect-only"],
            metrics, "val_top1")


# ------------------------------------------------------------------- predict --classes
def test_predict_classes_a_folder_is_one_error_line(tmp_path, capsys):
    weights = save_weights(squeezenet1_1(num_classes=3, seed=0).state_dict(), tmp_path / "w.npz")
    image = png(tmp_path / "x.png", 40, 40)
    refused(capsys, ["predict", str(image), "--weights", str(weights), "--classes", str(tmp_path)],
            f"--classes {tmp_path}", "folder")
    names = tmp_path / "names.txt"
    names.write_bytes(b"cat\n\xff\xfedog\nbird\n")
    refused(capsys, ["predict", str(image), "--weights", str(weights), "--classes", str(names)], names, "UTF-8")


# ------------------------------------------------------------------- the data cache and file names
@pytest.fixture
def cached_folder(tmp_path, monkeypatch):
    """A two-class ImageFolder whose train split is decoded into a cache under tmp_path/cache."""
    from tinysqueeze.datasets import load_split

    monkeypatch.setenv("TINYSQUEEZE_CACHE", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "data")
    load_split(str(root), "train", 32, progress=False)
    return root


def cache_file(tmp_path, suffix):
    (found,) = (tmp_path / "cache").rglob(f"train-*{suffix}")
    return found


def damage_npy(path):
    path.write_bytes(path.read_bytes()[:200])


def damage_json(path):
    path.write_text(path.read_text()[:10])


def labels_out_of_range(path):
    meta = json.loads(path.read_text())
    meta["labels"][0] = 7
    path.write_text(json.dumps(meta))


def labels_too_few(path):
    meta = json.loads(path.read_text())
    meta["labels"] = meta["labels"][1:]
    path.write_text(json.dumps(meta))


def npy_of_another_shape(path):
    np.save(path, np.zeros((3, 3), np.float32))


@pytest.mark.parametrize("suffix, damage, says", [
    (".npy", damage_npy, "delete it"),
    (".json", damage_json, "delete it"),
    (".json", labels_out_of_range, "label 7"),
    (".json", labels_too_few, "delete both"),
    (".npy", npy_of_another_shape, "delete both"),
], ids=["npy truncated", "json truncated", "label out of range", "labels missing", "npy of another shape"])
def test_a_damaged_data_cache_names_the_file_and_the_fix(cached_folder, tmp_path, capsys, suffix, damage, says):
    damaged = cache_file(tmp_path, suffix)
    damage(damaged)
    refused(capsys, ["train", "--data", str(cached_folder), "--image-size", "32", "--epochs", "1", "--quiet",
                     "--batch-size", "4", "--out", str(tmp_path / "run")], damaged, says)


def test_a_non_utf8_file_name_is_skipped_and_named(tmp_path, monkeypatch):
    from tinysqueeze.datasets import load_split

    monkeypatch.setenv("TINYSQUEEZE_CACHE", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "data")
    shutil.copy(root / "a" / "0.png", os.fsdecode(os.fsencode(root / "a") + b"/caf\xe9.png"))  # Latin-1, not UTF-8
    with pytest.warns(UserWarning, match=r"skipped 1 file.*not UTF-8.*caf\\xe9\.png"):
        data = load_split(str(root), "train", 32, progress=False)
        val = load_split(str(root), "val", 32, progress=False)
    assert len(data) + len(val) == 12
    assert data.classes == ["a", "b"]


def test_a_non_utf8_class_folder_is_skipped_and_named(tmp_path, monkeypatch):
    from tinysqueeze.datasets import load_split

    monkeypatch.setenv("TINYSQUEEZE_CACHE", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "data")
    shutil.copytree(root / "b", os.fsdecode(os.fsencode(root) + b"/\xff"))
    with pytest.warns(UserWarning, match=r"not UTF-8.*\\xff"):
        data = load_split(str(root), "train", 32, progress=False)
    assert data.classes == ["a", "b"]


def test_a_dataset_with_a_non_utf8_file_name_trains(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TINYSQUEEZE_CACHE", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "data")
    (root / "train").mkdir(), (root / "val").mkdir()
    for split in ("train", "val"):
        shutil.copytree(root / "a", root / split / "a"), shutil.copytree(root / "b", root / split / "b")
    shutil.rmtree(root / "a"), shutil.rmtree(root / "b")
    shutil.copy(root / "train" / "a" / "0.png", os.fsdecode(os.fsencode(root / "train" / "a") + b"/\xff.png"))
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="not UTF-8"):
        code = main(["train", "--data", str(root), "--image-size", "32", "--epochs", "1", "--batch-size", "4",
                     "--quiet", "--out", str(out)])
    assert code == 0 and (out / "last.npz").exists(), capsys.readouterr().err[-3000:]


def test_a_dataset_in_a_folder_with_a_non_utf8_name_loads(tmp_path, monkeypatch):
    from tinysqueeze.datasets import load_split

    monkeypatch.setenv("TINYSQUEEZE_CACHE", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "data")
    odd = os.fsdecode(os.fsencode(tmp_path) + b"/\xe9t\xe9")           # Latin-1 "été"
    os.rename(root, odd)
    assert len(load_split(odd, "train", 32, progress=False)) + len(load_split(odd, "val", 32, progress=False)) == 12


def test_ctrl_c_while_the_command_line_loads_numpy_is_one_line(tmp_path):
    """Ctrl-C in the half second while NumPy, Pillow and Numba load: 'interrupted' and exit 130, no
    traceback. The interrupt is made to arrive exactly there: an import hook raises it at `import numpy`."""
    import subprocess
    import sys

    script = ("import runpy, sys\n"
              "class CtrlC:\n"
              "    def find_spec(self, name, *rest):\n"
              "        if name == 'numpy':\n"
              "            raise KeyboardInterrupt\n"
              "sys.meta_path.insert(0, CtrlC())\n"
              "sys.argv = ['tinysqueeze', 'models']\n"
              "runpy.run_module('tinysqueeze', run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (130, "\ninterrupted\n", "")


def test_ctrl_c_while_the_flags_are_read_is_one_line(tmp_path):
    """Building the flags loads more of the package (a sweep's settings, Numba): Ctrl-C there too."""
    import subprocess
    import sys

    script = ("import sys\n"
              "class CtrlC:\n"
              "    def find_spec(self, name, *rest):\n"
              "        if name == 'tinysqueeze.studies.sweep':\n"
              "            raise KeyboardInterrupt\n"
              "from tinysqueeze.cli import main\n"
              "sys.meta_path.insert(0, CtrlC())\n"
              "sys.exit(main(['models']))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (130, "\ninterrupted\n")
