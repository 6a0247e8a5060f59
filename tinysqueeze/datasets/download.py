"""`python -m tinysqueeze data get NAME`: download, verify and extract a public dataset into data/.

Downloads go to `<root>/<archive>.part` and resume from where they stopped (an HTTP Range request);
the archive's own name appears only when the whole file is there (one rename), and it is checked
against its known MD5 before it is extracted. It is extracted into a temporary folder that becomes
`<root>/<folder>` in one rename (`formats/atomic.py`, `folder_written_once`): a run killed while
extracting leaves no half dataset for the next one to train on.
An archive already in `<root>` (say, fetched by hand on another machine) is verified and extracted
without touching the network. Offline, the command fails at once and says what to fetch and where
to put it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..formats.atomic import folder_written_once, remove_stale_temporary_files


@dataclass(frozen=True)
class Remote:
    url: str
    md5: str
    folder: str       # what the archive extracts to
    note: str = ""


DATASETS = {
    "imagenette-160": Remote("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz",
                             "e793b78cc4c9e9a4ccc0c1155377a412", "imagenette2-160",
                             "10 ImageNet classes, shorter side 160 px (94 MB)"),
    "imagenette-320": Remote("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz",
                             "3df6f0d01a2c9592104656642f5e78a3", "imagenette2-320",
                             "10 ImageNet classes, shorter side 320 px (341 MB)"),
    "imagenette": Remote("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2.tgz",
                         "fe2fc210e6bb7c5664d602c3cd71e612", "imagenette2",
                         "10 ImageNet classes, full size (1.5 GB)"),
    "tiny-imagenet": Remote("http://cs231n.stanford.edu/tiny-imagenet-200.zip",
                            "90528d7ca1a48142e341f4ef8d21d0de", "tiny-imagenet-200",
                            "200 classes, 64x64 (248 MB)"),
}

MANUAL = {
    "imagenet32": "Downsampled ImageNet 32x32 needs an image-net.org account: download Imagenet32_train.zip and "
                  "Imagenet32_val.zip from https://image-net.org/download-images.php, unzip both into "
                  "data/imagenet32/ (train_data_batch_1..10 and val_data), then use --data data/imagenet32",
    "imagenet64": "Downsampled ImageNet 64x64 needs an image-net.org account: download Imagenet64_train_part1.zip, "
                  "Imagenet64_train_part2.zip and Imagenet64_val.zip, unzip into data/imagenet64/, "
                  "then use --data data/imagenet64",
}

CHUNK = 1 << 20


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, target: Path, timeout: float = 15.0) -> Path:
    """Fetches url into target, resuming a `target.part` left by an earlier attempt."""
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except (urllib.error.URLError, OSError) as error:
        raise ConnectionError(
            f"could not download {url} ({getattr(error, 'reason', error)}). This machine looks offline: "
            f"fetch that file elsewhere and put it at {target}, then run the same command again "
            "(it verifies and extracts a file that is already there).") from None
    with response:
        resumed = getattr(response, "status", 200) == 206
        mode = "ab" if resumed else "wb"
        total = int(response.headers.get("Content-Length") or 0) + (have if resumed else 0)
        with open(part, mode) as f, tqdm(total=total or None, initial=have if resumed else 0, unit="B",
                                         unit_scale=True, desc=f"downloading {target.name}") as bar:
            for block in iter(lambda: response.read(CHUNK), b""):
                f.write(block)
                bar.update(len(block))
    os.replace(part, target)
    return target


def extract(archive: Path, into: Path) -> None:
    """Unpacks a .tgz/.tar or .zip into `into`, refusing members that would land outside it."""
    into = into.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if not (into / name).resolve().is_relative_to(into):
                    raise ValueError(f"{archive}: member {name!r} would be written outside {into}")
            z.extractall(into)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")
    else:
        raise ValueError(f"{archive} is neither a zip nor a tar archive")


def get_dataset(name: str, root: Path, datasets: dict = DATASETS) -> Path:
    """Makes `root/<folder>` hold dataset `name`; returns that folder."""
    if name in MANUAL:
        raise ValueError(MANUAL[name])
    if name not in datasets:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(list(datasets) + list(MANUAL))}")
    remote = datasets[name]
    root.mkdir(parents=True, exist_ok=True)
    folder = root / remote.folder
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    archive = root / Path(remote.url).name
    if not archive.exists():
        download(remote.url, archive)
    digest = md5_of(archive)
    if digest != remote.md5:
        bad = archive.with_name(archive.name + ".corrupt")
        shutil.move(archive, bad)
        raise ValueError(f"{archive} has MD5 {digest}, expected {remote.md5}: the download is damaged "
                         f"(moved to {bad}); run the command again to fetch it anew")
    remove_stale_temporary_files(root)                   # left by a run killed while extracting
    shutil.rmtree(root / f".{remote.folder}.extracting", ignore_errors=True)   # an older version's
    with folder_written_once(folder) as tmp:
        extract(archive, tmp)
        hoist(tmp / remote.folder, tmp)
    return folder


def hoist(inner: Path, folder: Path) -> None:
    """An archive holding one folder of the dataset's name (imagenette2-160/...): its contents become
    `folder`'s own, so the dataset is <root>/imagenette2-160/train, not .../imagenette2-160/imagenette2-160."""
    if not inner.is_dir():
        return
    aside = folder.with_name(folder.name + ".inner")
    os.replace(inner, aside)
    shutil.rmtree(folder)                    # what else the archive held beside it (as before: dropped)
    os.replace(aside, folder)
