"""The BLAS thread count of training (tinysqueeze/nn/fast/blas_threads.py): one thread for small
batches, every core for larger ones, a count the user set kept, and the count put back afterwards."""
import numpy as np
import pytest

from tinysqueeze.nn.fast import blas_threads as BT
from tinysqueeze.training.train import TrainConfig, fit, prepare


class FakeBLAS:
    """A BLAS of `cores` threads that records every thread count set."""

    def __init__(self, cores=2):
        self.threads, self.history = cores, []

    def get(self):
        return self.threads

    def set(self, threads):
        self.threads = threads
        self.history.append(threads)


def test_small_batches_train_on_one_thread_and_larger_ones_on_every_core():
    assert BT.training_threads(64, 32, cores=2) == 1           # 64 x 32 x 32 pixels: the small-batch line
    assert BT.training_threads(16, 32, cores=8) == 1
    assert BT.training_threads(65, 32, cores=2) == 2
    assert BT.training_threads(64, 48, cores=2) == 2
    assert BT.training_threads(64, 224, cores=4) == 4


def test_the_count_is_set_inside_and_put_back_after_even_on_an_error():
    blas = FakeBLAS(2)
    with BT.blas_threads_for_training(64, 32, blas=blas, environ={}) as threads:
        assert threads == 1 and blas.threads == 1
    assert blas.threads == 2
    with pytest.raises(KeyboardInterrupt):
        with BT.blas_threads_for_training(32, 32, blas=blas, environ={}):
            raise KeyboardInterrupt
    assert blas.threads == 2 and blas.history == [1, 2, 1, 2]
    with BT.blas_threads_for_training(64, 64, blas=blas, environ={}) as threads:
        assert threads == 2


@pytest.mark.parametrize("variable", BT.USER_CHOICE)
def test_a_count_the_user_set_is_kept(variable, monkeypatch):
    calls = []
    monkeypatch.setattr(BT.OpenBLAS, "loaded", classmethod(lambda cls: calls.append(1) or FakeBLAS(2)))
    with BT.blas_threads_for_training(64, 32, environ={variable: "2"}) as threads:
        assert threads is None
    assert not calls                                           # the BLAS was not even looked up
    with BT.blas_threads_for_training(64, 32, blas=None, environ={}) as threads:
        assert threads is None                                 # not OpenBLAS: nothing to set


def test_numpys_openblas_is_found_and_its_count_set_and_read_back():
    blas = BT.OpenBLAS.loaded()
    if blas is None:
        pytest.skip("NumPy's BLAS here is not OpenBLAS")
    before = blas.get()
    try:
        blas.set(1)
        assert blas.get() == 1
    finally:
        blas.set(before)
    assert blas.get() == before


def test_a_32_px_run_trains_on_one_thread_gives_the_same_bits_twice_and_puts_the_count_back(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    real = BT.OpenBLAS.loaded()
    if real is None:
        pytest.skip("NumPy's BLAS here is not OpenBLAS")
    seen = []

    class Spy(BT.OpenBLAS):
        def __init__(self):
            self._get, self._set = real._get, real._set

        def set(self, threads):
            seen.append(threads)
            super().set(threads)

    monkeypatch.setattr(BT.OpenBLAS, "loaded", classmethod(lambda cls: Spy()))
    before = real.get()
    weights = []
    for name in ("a", "b"):
        config = TrainConfig(image_size=32, batch_size=32, epochs=2, synthetic_train=96, synthetic_val=32, seed=5,
                             out=str(tmp_path / name))
        fit(prepare(config, progress=False))
        weights.append(np.load(tmp_path / name / "last.npz"))
    assert seen == [1, before] * 4                             # each epoch on one thread, then put back
    assert real.get() == before
    a, b = weights
    assert all(a[k].tobytes() == b[k].tobytes() for k in a.files if k != "meta")
