"""What many test files share: a tiny training run's settings (as a TrainConfig and as `train`'s flags),
a tiny synthetic set and its loader, and finished tiny runs, each trained once per session.

Tiny means seconds: 32 px, 48 training and 20 validation images of `--data synthetic`, batches of 16.
A test that needs other numbers says so where it asks: tiny_config(out, epochs=3, optimizer="sgd")."""
import shutil

import pytest

from tinysqueeze.datasets import DataLoader, channel_stats, load_split
from tinysqueeze.training.train import TrainConfig, fit, prepare

TINY_RUN = dict(model="squeezenet1_1", data="synthetic", image_size=32, epochs=2, batch_size=16, synthetic_train=48,
                synthetic_val=20, warmup_epochs=0.5, lr=1e-3)


def tiny_config(out=None, **changes) -> TrainConfig:
    """TINY_RUN with `changes`, writing to `out` (None: TrainConfig's own default folder)."""
    if out is not None:
        changes["out"] = str(out)
    return TrainConfig(**{**TINY_RUN, **changes})


def tiny_argv(out, **changes) -> list[str]:
    """The flags of `train` (and `diagnose`) for tiny_config(out, **changes): the same run, typed."""
    return tiny_config(out, **changes).to_argv()


def tiny_data(n=32, size=32, seed=0):
    """n synthetic training images of (at least) `size` px, as `train` loads them."""
    return load_split("synthetic", "train", size, seed=seed, synthetic_sizes=(n, 10), progress=False)


def tiny_loader(n=32, batch_size=16, size=32, train=True, seed=0) -> DataLoader:
    """A loader over tiny_data(n, size, seed), normalised by those images' own channel statistics."""
    data = tiny_data(n, size, seed)
    mean, std = channel_stats(data.images)
    return DataLoader(data, batch_size, size, train, mean, std)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """tiny_runs(**changes): the folder of a finished run of tiny_config(**changes), trained the first
    time a test asks for it and shared by every test after. Read it only: copy it to change it."""
    finished = {}

    def finished_run(**changes):
        key = tuple(sorted(changes.items()))
        if key not in finished:
            out = tmp_path_factory.mktemp("tiny-run")         # a folder of its own name: tiny-run0, tiny-run1, ...
            fit(prepare(tiny_config(out, **changes), progress=False))
            finished[key] = out
        return finished[key]

    return finished_run


@pytest.fixture(scope="session")
def tiny_run(tiny_runs):
    """A finished one-epoch tiny run (config.json, metrics.csv, best.npz, last.npz). Read it only."""
    return tiny_runs(epochs=1)


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path):
    """A copy of tiny_run at tmp_path / "run", for a test that writes into the run."""
    return shutil.copytree(tiny_run, tmp_path / "run")
