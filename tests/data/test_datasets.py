"""Datasets on fixtures made here: layouts, the decode-once cache, the loader, downloads (offline)."""
import io
import pickle
import tarfile
import urllib.error
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinysqueeze.datasets import DataLoader, channel_stats, load_split, make_synthetic
from tinysqueeze.datasets import cache as cache_module
from tinysqueeze.datasets import download as dl
from tinysqueeze.datasets.folders import image_folder
from tinysqueeze.formats.atomic import written_once

from ..conftest import tiny_data


def write_image(path, colour, size=(20, 14), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)


def make_imagefolder(root, classes=("b_cat", "a_dog"), per_class=3):
    for k, name in enumerate(classes):
        for i in range(per_class):
            suffix = [".jpg", ".JPEG", ".png"][i % 3]
            write_image(root / name / f"img{i}{suffix}", (40 * k + 10, 100, 7 * i))
    return root


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSQUEEZE_CACHE", str(tmp_path / "cache"))


def test_synthetic_is_seeded_balanced_and_varied():
    a, la = make_synthetic(60, 40, seed=1)
    b, lb = make_synthetic(60, 40, seed=1)
    c, _ = make_synthetic(60, 40, seed=2)
    assert a.shape == (60, 3, 40, 40) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)
    assert np.bincount(la).tolist() == [6] * 10
    same_class = a[la == 0].astype(float)
    assert same_class.std(axis=0).mean() > 20  # colour, position and size vary within a class
    with pytest.raises(ValueError, match="at least 10 images"):
        make_synthetic(5, 40)


def test_image_folder_sorted_classes_any_case_suffix(tmp_path):
    files = image_folder(make_imagefolder(tmp_path / "set"))
    assert files.classes == ["a_dog", "b_cat"]
    assert len(files.paths) == 6 and files.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert {p.suffix for p in files.paths} == {".jpg", ".JPEG", ".png"}


def test_image_folder_errors(tmp_path):
    make_imagefolder(tmp_path / "one", classes=("only",))
    with pytest.raises(ValueError, match="at least two class sub-folders"):
        image_folder(tmp_path / "one")
    make_imagefolder(tmp_path / "empty")
    (tmp_path / "empty" / "c_empty").mkdir()
    with pytest.raises(ValueError, match="c_empty holds no images"):
        image_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_split(str(tmp_path / "missing"), "train", 32)


def test_imagenette_layout_cache_decodes_once(tmp_path, monkeypatch):
    root = tmp_path / "nette"
    make_imagefolder(root / "train", per_class=4)
    make_imagefolder(root / "val", per_class=2)
    train = load_split(str(root), "train", 32, progress=False)
    assert train.images.shape == (8, 3, 37, 37) and train.classes == ["a_dog", "b_cat"]
    assert isinstance(train.images, np.memmap)
    assert len(load_split(str(root), "val", 32, progress=False)) == 4
    assert train.display_names is None
    (root / "classes.txt").write_text("a_dog\tDog, a good one\nb_cat\tCat\n")
    assert load_split(str(root), "val", 32, progress=False).display_names == ["Dog, a good one", "Cat"]
    monkeypatch.setattr(cache_module, "decode", lambda *a: pytest.fail("decoded again"))
    again = load_split(str(root), "train", 32, progress=False)
    np.testing.assert_array_equal(again.images, train.images)


def test_corrupt_image_is_skipped_and_reported(tmp_path):
    root = make_imagefolder(tmp_path / "set", per_class=4)
    bad = root / "a_dog" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.warns(UserWarning, match="skipped 1 unreadable image.*broken.jpg"):
        train = load_split(str(root), "train", 32, progress=False)
        val = load_split(str(root), "val", 32, progress=False)
    assert len(train) + len(val) == 8
    assert any("broken.jpg" in s for s in train.skipped + val.skipped)


def test_a_class_whose_every_image_is_unreadable_is_refused(tmp_path):
    """Training on the other classes with a warning would hide a class the model can never learn."""
    root = tmp_path / "nette"
    make_imagefolder(root / "train", per_class=4)
    make_imagefolder(root / "val", per_class=2)
    for path in (root / "train" / "b_cat").iterdir():
        path.write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    with pytest.warns(UserWarning, match="skipped 4 unreadable"), \
            pytest.raises(ValueError, match=r"train: no image of class 'b_cat' could be read \(all 4, e.g. .*b_cat"):
        load_split(str(root), "train", 32, progress=False)
    assert len(load_split(str(root), "val", 32, progress=False)) == 4     # the other split is untouched


def test_single_imagefolder_holds_out_a_seeded_tenth(tmp_path):
    root = make_imagefolder(tmp_path / "set", per_class=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train = load_split(str(root), "train", 32, progress=False)
        val = load_split(str(root), "val", 32, progress=False)
    assert (len(train), len(val)) == (36, 4)
    assert np.bincount(val.labels).tolist() == [2, 2]


def test_tiny_imagenet_layout(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    (root).mkdir()
    (root / "wnids.txt").write_text("n02\nn01\n")
    for wnid in ("n01", "n02"):
        for i in range(2):
            write_image(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", (10, 20, 30), (64, 64))
    for i in range(3):
        write_image(root / "val" / "images" / f"val_{i}.JPEG", (50, 60, 70), (64, 64))
    (root / "val" / "val_annotations.txt").write_text(
        "val_0.JPEG\tn01\t0\t0\t10\t10\nval_1.JPEG\tn02\t1\t1\t5\t5\nval_2.JPEG\tn02\t0\t0\t1\t1\n")
    train = load_split(str(root), "train", 56, progress=False)
    val = load_split(str(root), "val", 56, progress=False)
    assert train.classes == ["n02", "n01"]  # wnids.txt order
    assert train.labels.tolist() == [0, 0, 1, 1] and val.labels.tolist() == [1, 0, 0]
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\n")
    with pytest.raises(ValueError, match=r"val_annotations.txt:1: expected file<TAB>wnid"):
        load_split(str(root), "val", 56, progress=False)


def test_downsampled_imagenet_batches(tmp_path):
    root = tmp_path / "imagenet8"
    root.mkdir()
    rng = np.random.default_rng(0)
    def batch(n, first_label):
        return {"data": rng.integers(0, 255, (n, 3 * 8 * 8), dtype=np.uint8),
                "labels": [first_label + (i % 3) for i in range(n)], "mean": np.zeros(192)}
    for k, b in enumerate([batch(4, 1), batch(2, 1)], 1):
        (root / f"train_data_batch_{k}").write_bytes(pickle.dumps(b))
    val_batch = batch(3, 1)
    (root / "val_data").write_bytes(pickle.dumps(val_batch))
    val = load_split(str(root), "val", 32, progress=False)
    assert val.images.shape == (3, 3, 8, 8) and val.labels.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(val.images[1], val_batch["data"][1].reshape(3, 8, 8))
    assert len(load_split(str(root), "train", 32, progress=False)) == 6
    (root / "val_data").write_bytes(pickle.dumps({"data": np.zeros((2, 10), np.uint8), "labels": [1, 2]}))
    with pytest.raises(ValueError, match="not 3\\*S\\*S images"):
        load_split(str(root), "val", 32, progress=False)


def test_loader_is_deterministic_and_threaded_equals_plain():
    ds = tiny_data(40)
    mean, std = channel_stats(ds.images)
    loader = DataLoader(ds, 16, 32, True, mean, std, seed=3)
    assert len(loader) == 2  # drop_last in training
    plain = list(loader.batches(1))
    threaded = list(loader.epoch(1))
    for (xa, ya), (xb, yb) in zip(plain, threaded):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    x, y = plain[0]
    assert x.shape == (16, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    assert not np.array_equal(list(loader.batches(2))[0][0], x)  # a new shuffle and new crops each epoch
    val = DataLoader(ds, 16, 32, False, mean, std)
    assert len(val) == 3 and sum(len(b[1]) for b in val.epoch(0)) == 40
    np.testing.assert_array_equal(next(val.epoch(0))[1], ds.labels[:16])


@pytest.mark.parametrize("stored", [40, 32], ids=["random-crops", "padded-crops"])
def test_every_image_keeps_its_own_label_through_shuffle_crops_flips_and_the_thread(stored):
    """Image i is filled with the value i + 1, so any crop or flip of it -- padded with zeros too -- still
    says which image it is (its largest pixel), and its label is 7 i mod 10. Through three epochs of
    shuffled, cropped and flipped batches made in the background thread, the label beside every image
    must be that image's own. (Labels in file order beside shuffled images pass every other test.)"""
    from tinysqueeze.datasets import ArrayDataset

    n = 60
    images = np.broadcast_to(np.arange(1, n + 1, dtype=np.uint8)[:, None, None, None], (n, 3, stored, stored)).copy()
    labels = np.arange(n) * 7 % 10
    loader = DataLoader(ArrayDataset(images, labels, list("abcdefghij"), "numbered"), 16, 32, True, (0, 0, 0),
                        (1, 1, 1), seed=5)
    for epoch in range(3):
        seen = []
        for x, y in loader.epoch(epoch):
            number = np.rint(x.reshape(len(x), -1).max(axis=1) * 255).astype(int) - 1
            np.testing.assert_array_equal(y, labels[number])
            seen.extend(number.tolist())
        assert len(set(seen)) == len(seen) == 48 and seen != sorted(seen)    # 3 batches of 16, shuffled


def test_loader_reports_errors_from_its_thread():
    ds = tiny_data(40)
    loader = DataLoader(ds, 8, 32, True, (0.5,) * 3, (0.2,) * 3)
    loader.batch = lambda *a: (_ for _ in ()).throw(RuntimeError("disk on fire"))
    with pytest.raises(RuntimeError, match="disk on fire"):
        list(loader.epoch(0))
    with pytest.raises(ValueError, match="fewer than one batch"):
        DataLoader(ds, 64, 32, True, (0.5,) * 3, (0.2,) * 3)


def make_archive(tmp_path, folder):
    src = tmp_path / "src"
    make_imagefolder(src / folder / "train")
    make_imagefolder(src / folder / "val")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(src / folder, arcname=folder)
    return buf.getvalue()


def test_data_get_verifies_and_extracts_an_archive_already_there(tmp_path, monkeypatch):
    blob = make_archive(tmp_path, "toy")
    import hashlib
    registry = {"toy": dl.Remote("https://example.invalid/toy.tgz", hashlib.md5(blob).hexdigest(), "toy")}
    root = tmp_path / "data"
    root.mkdir()
    (root / "toy.tgz").write_bytes(blob)
    monkeypatch.setattr(dl.urllib.request, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    folder = dl.get_dataset("toy", root, registry)
    assert folder == root / "toy" and len(load_split(str(folder), "train", 32, progress=False)) == 6


def test_data_get_refuses_a_damaged_archive(tmp_path):
    registry = {"toy": dl.Remote("https://example.invalid/toy.tgz", "0" * 32, "toy")}
    (tmp_path / "toy.tgz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="has MD5 .* expected 0000"):
        dl.get_dataset("toy", tmp_path, registry)
    assert (tmp_path / "toy.tgz.corrupt").exists() and not (tmp_path / "toy").exists()


def test_data_get_offline_says_what_to_do(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(dl.urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match=r"offline: fetch that file elsewhere and put it at .*imagenette2-160.tgz"):
        dl.get_dataset("imagenette-160", tmp_path)
    with pytest.raises(ValueError, match="image-net.org account"):
        dl.get_dataset("imagenet32", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        dl.get_dataset("mnist", tmp_path)


class FakeResponse(io.BytesIO):
    def __init__(self, data, status):
        super().__init__(data)
        self.status = status
        self.headers = {"Content-Length": str(len(data))}

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_download_resumes_a_partial_file(tmp_path, monkeypatch):
    payload = bytes(range(256)) * 40
    part = tmp_path / "file.bin.part"
    part.write_bytes(payload[:1000])
    seen = {}

    def serve(request, timeout):
        seen["range"] = request.headers.get("Range")
        start = int(seen["range"].split("=")[1].rstrip("-"))
        return FakeResponse(payload[start:], 206)

    monkeypatch.setattr(dl.urllib.request, "urlopen", serve)
    out = dl.download("https://example.invalid/file.bin", tmp_path / "file.bin")
    assert seen["range"] == "bytes=1000-" and out.read_bytes() == payload and not part.exists()


def test_two_runs_decoding_one_split_at_once_do_not_collide(tmp_path, monkeypatch):
    """`sweep --workers 2` on a fresh cache: both workers decode the same split at the same time."""
    import threading
    root = make_imagefolder(tmp_path / "set", per_class=6)
    files = image_folder(root)
    both_decoding = threading.Barrier(2)
    real_decode = cache_module.decode
    first_call = threading.local()

    def decode_together(path, size):
        if not getattr(first_call, "done", False):
            first_call.done = True
            both_decoding.wait(timeout=10)       # neither finishes before the other has started
        return real_decode(path, size)

    monkeypatch.setattr(cache_module, "decode", decode_together)
    results, errors = [], []

    def worker():
        try:
            results.append(cache_module.cached_arrays(files, 24, tmp_path / "cache", "train", workers=1,
                                                      progress=False))
        except Exception as error:      # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert len(results[0][0]) == 12
    assert sorted(p.name.split("-")[0] + p.suffix for p in (tmp_path / "cache").iterdir()) == ["train.json", "train.npy"]


def test_a_finished_cache_file_is_never_rewritten(tmp_path):
    final = tmp_path / "done.npy"
    final.write_bytes(b"first")
    with written_once(final) as late:
        late.write_bytes(b"second")
    assert final.read_bytes() == b"first" and sorted(tmp_path.iterdir()) == [final]


def test_an_interrupted_decode_leaves_no_file_behind(tmp_path, monkeypatch):
    """Ctrl-C (or any error) while decoding: the half-written temporary file goes, nothing is published."""
    files = image_folder(make_imagefolder(tmp_path / "set", per_class=6))
    real_decode, calls = cache_module.decode, []

    def interrupted(path, size):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_decode(path, size)

    monkeypatch.setattr(cache_module, "decode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache_module.cached_arrays(files, 24, tmp_path / "cache", "train", workers=1, progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


KILLED_WHILE_WRITING = """
import os, sys, time
from pathlib import Path
from tinysqueeze.datasets import cache, download
from tinysqueeze.datasets.folders import image_folder
what, root, marker = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

def stall():
    marker.write_text(str(os.getpid()))
    time.sleep(120)                                    # killed here, half way

if what == "decode":
    real, calls = cache.decode, []
    def decode_then_stall(path, size):
        calls.append(path)
        if len(calls) == 6:
            stall()
        return real(path, size)
    cache.decode = decode_then_stall
    cache.cached_arrays(image_folder(root / "set"), 24, root / "cache", "train", workers=1, progress=False)
else:
    real_extract = download.extract
    def extract_then_stall(archive, into):
        real_extract(archive, into)
        stall()
    download.extract = extract_then_stall
    download.get_dataset("toy", root / "data", {"toy": download.Remote("https://example.invalid/toy.tgz",
                                                                         sys.argv[4], "toy")})
"""


def killed_while_writing(what, root, *args):
    """Runs KILLED_WHILE_WRITING in a process of its own and kills it (SIGKILL: no cleanup) half way."""
    import os
    import signal
    import subprocess
    import sys
    import time
    marker = root / "half-way"
    process = subprocess.Popen([sys.executable, "-c", KILLED_WHILE_WRITING, what, str(root), str(marker), *args],
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    deadline = time.monotonic() + 60
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), f"the writer never got half way (exit {process.poll()})"
    process.send_signal(signal.SIGKILL)
    process.wait()
    marker.unlink()


def test_a_decode_killed_half_way_leaves_no_cache_and_the_next_run_cleans_up(tmp_path):
    files = image_folder(make_imagefolder(tmp_path / "set", per_class=6))
    killed_while_writing("decode", tmp_path)
    left = list((tmp_path / "cache").iterdir())
    assert [p.suffix for p in left] == [".npy"] and ".tmp" in left[0].name      # a temporary file only
    images, labels, skipped = cache_module.cached_arrays(files, 24, tmp_path / "cache", "train", workers=1,
                                                         progress=False)
    expected = np.stack([cache_module.decode(p, 24) for p in files.paths])   # decoded one by one, here
    np.testing.assert_array_equal(images, expected)
    assert skipped == [] and list(labels) == list(files.labels)
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".json", ".npy"]   # the killed one's gone


def test_a_running_writers_temporary_file_is_not_taken_for_a_dead_ones(tmp_path):
    import os
    import subprocess
    import sys
    from tinysqueeze.formats.atomic import stale_temporary_files
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead = int(finished.stdout)
    try:
        names = [f"a.tmp{running.pid}.npy", f"b.tmp{os.getpid()}-77.npy", f"c.tmp{dead}.npy",
                 f"d.{dead}-5.tmp.npy", f".toy.tmp{dead}.d", "e.npy"]
        for name in names:
            (tmp_path / name).write_text("x")
        assert [p.name for p in stale_temporary_files(tmp_path)] == sorted(names[2:5])
    finally:
        running.kill()
        running.wait()


def test_data_get_killed_while_extracting_leaves_no_half_dataset(tmp_path):
    import hashlib
    blob = make_archive(tmp_path, "toy")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "toy.tgz").write_bytes(blob)
    md5 = hashlib.md5(blob).hexdigest()
    killed_while_writing("extract", tmp_path, md5)
    assert not (tmp_path / "data" / "toy").exists()          # no folder a run would train on, half full
    folder = dl.get_dataset("toy", tmp_path / "data", {"toy": dl.Remote("https://example.invalid/toy.tgz", md5, "toy")})
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["toy", "toy.tgz"]     # the killed one's gone
    assert sorted(p.name for p in folder.iterdir()) == ["train", "val"]
    assert len(load_split(str(folder), "train", 32, progress=False)) == 6


def test_data_get_keeps_a_dataset_another_process_finished_first(tmp_path, monkeypatch):
    import hashlib
    blob = make_archive(tmp_path, "toy")
    root = tmp_path / "data"
    root.mkdir()
    (root / "toy.tgz").write_bytes(blob)
    real_extract = dl.extract

    def the_other_finishes_meanwhile(archive, into):
        real_extract(archive, into)
        (root / "toy").mkdir()
        (root / "toy" / "theirs").write_text("finished first")

    monkeypatch.setattr(dl, "extract", the_other_finishes_meanwhile)
    folder = dl.get_dataset("toy", root, {"toy": dl.Remote("https://example.invalid/toy.tgz",
                                                             hashlib.md5(blob).hexdigest(), "toy")})
    assert [p.name for p in folder.iterdir()] == ["theirs"] and sorted(p.name for p in root.iterdir()) == ["toy", "toy.tgz"]


def test_an_image_over_the_decompression_bomb_limit_is_skipped_not_fatal(tmp_path, monkeypatch):
    root = make_imagefolder(tmp_path / "set", per_class=4)
    write_image(root / "a_dog" / "huge.png", (1, 2, 3), size=(60, 60))      # 3,600 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)                    # bombs above 2,000
    with pytest.warns(UserWarning, match="skipped 1 unreadable image.*huge.png"):
        train = load_split(str(root), "train", 16, progress=False)
        val = load_split(str(root), "val", 16, progress=False)
    assert len(train) + len(val) == 8
