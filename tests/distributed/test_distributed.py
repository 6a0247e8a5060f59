"""Data-parallel training on MPI (issue 24): the same command on 1, 2 or 3 processes computes the same
run, rank 0 alone writes, a killed rank ends the job and the run resumes, on any number of ranks.

Equivalence is checked in float64, where rounding differences stay near 1e-15: the processes add the
same numbers in another order, so equal to rounding is the most that can hold (and the least that must).
Each launch is a real `mpiexec -n N` in a subprocess (tests/distributed/mpi.py), killed as a group on a hang."""
import csv
import shutil
import sys

import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.datasets import DataLoader, channel_stats
from tinysqueeze.distributed.threads import share_cores
from tinysqueeze.optim import SGD, train_step_in_slices

from ..conftest import tiny_data, tiny_loader
from .mpi import ROOT, find_mpiexec, launch

pytest.importorskip("mpi4py")

TINY = ["--data", "synthetic", "--image-size", "32", "--synthetic-train", "64", "--synthetic-val", "40",
        "--batch-size", "16", "--quiet"]                   # 4 steps an epoch; 16 images split 8/8 or 6/5/5
TRAIN = [sys.executable, "-m", "tinysqueeze", "train"]
SCRIPT = [sys.executable, str(ROOT / "tests" / "fixtures" / "distributed_train.py"), "train"]


def train(ranks, out, *flags, env=None, command=TRAIN):
    done = launch(ranks, [*command, *TINY, "--out", str(out), *flags], env=env)
    return done


def weights(run) -> dict:
    with np.load(run / "last.npz") as data:
        return {k: data[k] for k in data.files if k.startswith("model.")}


def relative_difference(a: dict, b: dict) -> float:
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max() / (np.abs(a[k]).max() + 1e-30)) for k in a)


def metrics(run) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


FIGURES = ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr")


# ---------------------------------------------------------------------------- the same mathematics
@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "run"
    done = train(1, out, "--epochs", "2", "--dtype", "float64")
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("ranks, flags", [(2, []), (3, ["--allreduce", "ring"]), (1, ["--accumulate", "3"]),
                                          (2, ["--accumulate", "2", "--allreduce", "ring"])],
                         ids=["2 ranks", "3 ranks, ring, uneven slices", "1 process, 3 slices accumulated",
                              "2 ranks x 2 slices"])
def test_a_run_on_several_ranks_is_the_run_on_one_process(one_process, tmp_path, ranks, flags):
    """Two epochs (8 steps, dropout included): the weights agree to 1e-12 of each tensor's size and
    every figure of metrics.csv to 1e-12 (measured: about 2e-15)."""
    done = train(ranks, tmp_path / "run", "--epochs", "2", "--dtype", "float64", *flags)
    assert done.returncode == 0, done.stderr
    assert relative_difference(weights(one_process), weights(tmp_path / "run")) < 1e-12
    for mine, theirs in zip(metrics(one_process), metrics(tmp_path / "run")):
        for column in FIGURES:
            assert float(mine[column]) == pytest.approx(float(theirs[column]), rel=1e-12, abs=1e-15), column


def test_only_rank_0_writes(one_process, tmp_path):
    """Each rank in a folder of its own (MPMD, -wdir), --out relative: rank 1 must leave its folder empty."""
    rank0, rank1 = tmp_path / "rank0", tmp_path / "rank1"
    rank0.mkdir(), rank1.mkdir()
    command = [*TRAIN, *TINY, "--out", "run", "--epochs", "2", "--dtype", "float64"]
    done = launch(1, [find_mpiexec(), "-n", "1", "-wdir", str(rank0), *command, ":", "-n", "1", "-wdir", str(rank1),
                      *command])
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (rank0 / "run").iterdir()) == sorted(p.name for p in one_process.iterdir())
    assert list(rank1.iterdir()) == []
    assert done.stdout.count("done: val top-1") == 1                # one report, from rank 0
    assert [r["epoch"] for r in metrics(rank0 / "run")] == ["1", "2"]
    assert float(metrics(rank0 / "run")[0]["allreduce_seconds"]) > 0 == float(metrics(one_process)[0]["allreduce_seconds"])


# ---------------------------------------------------------------------------- faults and resume
@pytest.fixture(scope="module")
def killed_and_straight(tmp_path_factory):
    """A 3-epoch 2-rank run (float64) and the same run with rank 1 killed (SIGKILL) at its 6th step, in
    epoch 2: the job must end (MPI ends every rank), with epoch 1's last.npz intact."""
    folder = tmp_path_factory.mktemp("faults")
    straight = train(2, folder / "straight", "--epochs", "3", "--dtype", "float64")
    assert straight.returncode == 0, straight.stderr
    killed = train(2, folder / "killed", "--epochs", "3", "--dtype", "float64", command=SCRIPT,
                   env={"KILL_RANK": "1", "KILL_AT_STEP": "5"})
    return folder, killed


def test_a_killed_rank_ends_the_whole_job_and_leaves_the_last_epoch(killed_and_straight):
    folder, killed = killed_and_straight
    assert killed.returncode != 0
    assert "BAD TERMINATION" in killed.stdout + killed.stderr        # MPICH names the lost process
    assert [r["epoch"] for r in metrics(folder / "killed")] == ["1"]
    assert (folder / "killed" / "last.npz").is_file()


def test_a_run_killed_on_two_ranks_resumes_on_two_bit_for_bit(killed_and_straight, tmp_path):
    folder, _ = killed_and_straight
    run = shutil.copytree(folder / "killed", tmp_path / "run")
    done = train(2, run, "--epochs", "3", "--resume")
    assert done.returncode == 0, done.stderr
    straight, resumed = weights(folder / "straight"), weights(run)
    for key in straight:
        np.testing.assert_array_equal(straight[key], resumed[key], err_msg=key)
    assert [r["epoch"] for r in metrics(run)] == ["1", "2", "3"]


@pytest.mark.parametrize("ranks", [1, 3])
def test_a_run_killed_on_two_ranks_resumes_on_another_number(killed_and_straight, tmp_path, ranks):
    """The same global batches, split otherwise: equal to rounding (within 1e-12 of each tensor's size
    after two more epochs, in float64)."""
    folder, _ = killed_and_straight
    run = shutil.copytree(folder / "killed", tmp_path / "run")
    done = train(ranks, run, "--epochs", "3", "--resume")
    assert done.returncode == 0, done.stderr
    assert relative_difference(weights(folder / "straight"), weights(run)) < 1e-12


def test_a_rank_started_with_other_settings_is_refused_naming_it(tmp_path):
    run = tmp_path / "run"
    done = launch(1, [find_mpiexec(), "-n", "1", *TRAIN, *TINY, "--out", str(run), "--epochs", "1", ":",
                      "-n", "1", *TRAIN, *TINY, "--out", str(run), "--epochs", "1", "--lr", "0.5"])
    assert done.returncode == 2
    assert "rank 1 was started with other settings than rank 0: lr=0.5 (rank 0: 0.001)" in done.stderr
    assert not (run / "last.npz").exists()


@pytest.mark.parametrize("flags, says", [
    (["--accumulate", "6"], "a batch of 16 on 3 processes leaves some only 5 images per step, too few for 6 slices"),
    (["--batch-size", "2"], "a batch of 2 images cannot be shared by 3 processes"),
])
def test_a_batch_too_small_for_its_ranks_is_refused_before_training(tmp_path, flags, says):
    done = train(3, tmp_path / "run", "--epochs", "1", *flags)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert not (tmp_path / "run" / "last.npz").exists()


def test_a_refused_start_with_overwrite_loses_nothing(killed_and_straight, tmp_path):
    """--overwrite replaces a run only once the new one is ready: ranks that disagree leave it whole."""
    folder, _ = killed_and_straight
    run = shutil.copytree(folder / "straight", tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    command = [*TRAIN, *TINY, "--out", str(run), "--epochs", "1", "--overwrite"]
    done = launch(1, [find_mpiexec(), "-n", "1", *command, ":", "-n", "1", *command, "--lr", "0.5"])
    assert done.returncode == 2 and "rank 1 was started with other settings" in done.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name in before} == before


def test_resume_may_change_how_a_batch_is_computed(killed_and_straight, tmp_path):
    folder, _ = killed_and_straight
    run = shutil.copytree(folder / "killed", tmp_path / "run")
    done = train(3, run, "--epochs", "3", "--resume", "--accumulate", "2", "--allreduce", "ring")
    assert done.returncode == 0, done.stderr
    import json
    saved = json.loads((run / "config.json").read_text())
    assert (saved["accumulate"], saved["allreduce"]) == (2, "ring")
    assert relative_difference(weights(folder / "straight"), weights(run)) < 1e-12


def test_ranks_whose_data_differ_in_content_are_refused(tmp_path):
    """The same counts, classes and (nearly) statistics, but two files swapped between the classes on rank
    1's machine: its labels are wrong, and the hash of images and labels says so."""
    from PIL import Image
    for rank in ("rank0", "rank1"):
        for split, count in (("train", 12), ("val", 4)):
            for name in ("a", "b"):
                folder = tmp_path / rank / "shapes" / split / name
                folder.mkdir(parents=True)
                for k in range(count):
                    pixels = np.random.default_rng([k, ord(name), len(split)]).integers(0, 256, (40, 40, 3), np.uint8)
                    Image.fromarray(pixels).save(folder / f"{k}.png")
    swapped = tmp_path / "rank1" / "shapes" / "train"
    a, b = (swapped / "a" / "0.png").read_bytes(), (swapped / "b" / "0.png").read_bytes()
    (swapped / "a" / "0.png").write_bytes(b), (swapped / "b" / "0.png").write_bytes(a)
    command = [*TRAIN, "--data", "shapes", "--image-size", "32", "--batch-size", "8", "--epochs", "1", "--quiet",
               "--out", "run"]
    done = launch(1, [find_mpiexec(), "-n", "1", "-wdir", str(tmp_path / "rank0"), *command, ":", "-n", "1",
                      "-wdir", str(tmp_path / "rank1"), *command], env={"TINYSQUEEZE_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 2
    assert "rank 1 sees other data than rank 0: its images and labels (hash)" in done.stderr, done.stderr


def test_the_data_fingerprint_sees_labels_that_differ_on_the_same_images():
    """A file moved from one class to the next can leave the images in the same order and change only
    the labels: the fingerprint hashes both (the swapped files above change the images too)."""
    from dataclasses import replace

    from tinysqueeze.distributed.handshake import data_fingerprint

    train_set, val_set = tiny_data(16), tiny_data(10, seed=1)
    moved = train_set.labels.copy()
    moved[0] = (moved[0] + 1) % len(train_set.classes)
    assert data_fingerprint(train_set, val_set) == data_fingerprint(replace(train_set), val_set)
    assert data_fingerprint(train_set, val_set) != data_fingerprint(replace(train_set, labels=moved), val_set)


def test_a_crashing_rank_ends_the_job_naming_itself(tmp_path):
    run = tmp_path / "run"
    done = launch(1, [find_mpiexec(), "-n", "1", *TRAIN, *TINY, "--out", str(run), "--epochs", "1", ":",
                      "-n", "1", "-env", "TINYSQUEEZE_KERNELS", "bogus", *TRAIN, *TINY, "--out", str(run),
                      "--epochs", "1"], timeout=60)
    assert done.returncode != 0
    assert "error (rank 1 of 2): TINYSQUEEZE_KERNELS must be numba or numpy" in done.stderr


def test_a_rank_that_cannot_read_the_data_says_so_before_training(tmp_path):
    """No shared file system: each rank in a folder of its own (-wdir), --data a relative path that only
    rank 0's folder holds. Rank 1 must name itself and the fix, and no epoch may start."""
    from PIL import Image
    rank0, rank1 = tmp_path / "rank0", tmp_path / "rank1"
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("val", 4)):
        for name in ("a", "b"):
            folder = rank0 / "shapes" / split / name
            folder.mkdir(parents=True)
            for k in range(count):
                Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"{k}.png")
    rank1.mkdir()
    command = [*TRAIN, "--data", "shapes", "--image-size", "32", "--batch-size", "8", "--epochs", "1", "--quiet",
               "--out", "run"]
    done = launch(1, [find_mpiexec(), "-n", "1", "-wdir", str(rank0), *command, ":", "-n", "1", "-wdir", str(rank1),
                      *command], env={"TINYSQUEEZE_CACHE": str(tmp_path / "cache")})
    assert done.returncode != 0
    assert "error (rank 1 of 2): rank 1 cannot read the data that rank 0 read" in done.stderr, done.stderr
    assert "a shared file system, or a copy on each machine" in done.stderr
    assert not (rank0 / "run" / "last.npz").exists()


# ---------------------------------------------------------------------------- launching
def test_one_process_never_loads_mpi(tmp_path):
    """Without a launcher, training does not touch MPI (mpi4py need not be installed)."""
    code = ("import sys; from tinysqueeze.cli import main; "
            f"code = main(['train', *{TINY!r}, '--out', {str(tmp_path / 'run')!r}, '--epochs', '1']); "
            "print('mpi4py loaded:', 'mpi4py' in sys.modules); sys.exit(code)")
    done = launch(1, [sys.executable, "-c", code])
    assert done.returncode == 0, done.stderr
    assert "mpi4py loaded: False" in done.stdout


def test_several_ranks_without_mpi4py_are_refused(tmp_path):
    """A launcher said 2 (PMI_SIZE), but mpi4py cannot be imported: an error, never 2 lone trainings."""
    code = ("import sys; sys.modules['mpi4py'] = None; from tinysqueeze.cli import main; "
            f"sys.exit(main(['train', *{TINY!r}, '--out', {str(tmp_path / 'run')!r}, '--epochs', '1']))")
    done = launch(1, [sys.executable, "-c", code], env={"PMI_SIZE": "2"})
    assert done.returncode == 2
    assert "one of 2 (PMI_SIZE=2) but mpi4py is not installed" in done.stderr
    assert not (tmp_path / "run" / "last.npz").exists()


def test_other_commands_under_a_launcher_are_refused():
    done = launch(1, [sys.executable, "-m", "tinysqueeze", "models"], env={"PMI_SIZE": "2"})
    assert done.returncode == 2 and "`models` runs as one process" in done.stderr


def test_each_rank_gets_its_share_of_the_cores():
    environ = {"PMI_SIZE": "2", "MPI_LOCALNRANKS": "2"}
    assert share_cores(environ, cores=8) == 4 and environ["OPENBLAS_NUM_THREADS"] == environ["NUMBA_NUM_THREADS"] == "4"
    assert share_cores({"PMI_SIZE": "3"}, cores=2) == 1                 # never fewer than one
    assert share_cores({"PMI_SIZE": "2", "OMP_NUM_THREADS": "2"}, cores=8) is None    # the user chose
    assert share_cores({}, cores=8) is None                             # one process: untouched


# ---------------------------------------------------------------------------- the pieces, in one process
@pytest.mark.parametrize("train_mode", [True, False])
def test_a_split_batch_is_the_batch(train_mode):
    """Each rank's rows of a batch (crops and flips drawn for the whole batch) are that batch's rows."""
    data = tiny_data(40)
    mean, std = channel_stats(data.images)
    whole = DataLoader(data, 16, 32, train_mode, mean, std, seed=3)
    parts = [DataLoader(data, 16, 32, train_mode, mean, std, seed=3, rank=r, ranks=3) for r in range(3)]
    for b, (x, y) in enumerate(whole.batches(1)):
        pieces = [list(p.batches(1))[b] for p in parts]
        np.testing.assert_array_equal(np.concatenate([p[0] for p in pieces]), x)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in pieces]), y)
        assert [len(p[1]) for p in pieces] == ([6, 5, 5] if len(y) == 16 else [3, 3, 2])


def test_dropout_draws_the_whole_batchs_mask_for_its_slices():
    from tinysqueeze.optim.slices import whole_batch_dropout

    x = np.ones((6, 4, 3, 3))
    whole, sliced = nn.Dropout(0.5, seed=1).train(), nn.Dropout(0.5, seed=1).train()
    expected = whole(x)
    with whole_batch_dropout(nn.Sequential(sliced), 6) as compute_rows:
        compute_rows(0, 2)
        first = sliced(x[:2])
        compute_rows(2, 6)
        rest = sliced(x[2:])
    np.testing.assert_array_equal(np.concatenate([first, rest]), expected)
    np.testing.assert_array_equal(whole(x), nn.Sequential(sliced)(x))       # both generators moved alike


def test_an_accumulated_step_is_the_step_of_the_whole_batch():
    from tinysqueeze.models import squeezenet1_1

    x, y = next(tiny_loader(n=12, batch_size=12).batches(0))
    results = []
    for parts in (1, 4):
        model = squeezenet1_1(num_classes=10, seed=0).to(np.float64).train()
        optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
        loss, logits = train_step_in_slices(model, nn.SoftmaxCrossEntropy(), optimizer, x.astype(np.float64), y, parts=parts)
        results.append((loss, logits, model.state_dict()))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-13)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)
    for key, value in results[0][2].items():
        np.testing.assert_allclose(value, results[1][2][key], rtol=1e-10, atol=1e-13, err_msg=key)
    with pytest.raises(ValueError, match="--accumulate must be from 1 to the images each process has"):
        train_step_in_slices(model, nn.SoftmaxCrossEntropy(), optimizer, x.astype(np.float64), y, parts=13)
