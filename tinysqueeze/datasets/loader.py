"""Batches for training and evaluation, prepared in a background thread.

Every random choice is derived from (seed, epoch, batch index): the shuffle of an epoch from
(seed, epoch, SHUFFLE), each batch's crops and flips from (seed, epoch, batch, CROPS). So a run
resumed at epoch k sees exactly the batches an uninterrupted run would, whatever the thread timing.
The last word, a non-zero purpose tag, keeps the streams apart: numpy's SeedSequence pads its
entropy with zeros, so (seed, epoch) and (seed, epoch, 0) would be one and the same stream.

Training augmentation: a random image_size crop of the stored (slightly larger) image — or, when
the stored image is no larger (32x32 downsampled ImageNet), a random crop of the image padded by
image_size // 8 — and a horizontal flip with probability 1/2. Evaluation: the centre crop.
Both then scale to [0, 1] and normalise by the per-channel mean and std.
"""
from __future__ import annotations

import queue
import threading

import numpy as np

from ..distributed.ring import chunk_bounds
from .transforms import normalize

SHUFFLE, CROPS = 1, 2      # purpose tags, the last word of each seed (never 0: see the docstring)


class DataLoader:
    """for x, y in loader.epoch(k): x (B, 3, S, S) float32, y (B,) int64."""

    def __init__(self, dataset, batch_size: int, image_size: int, train: bool, mean, std, seed: int = 0,
                 drop_last: bool | None = None, prefetch: int = 2, rank: int = 0, ranks: int = 1):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if train and batch_size < ranks:
            raise ValueError(f"a batch of {batch_size} images cannot be shared by {ranks} processes: give each at "
                             f"least one (--batch-size {ranks} or more)")
        if dataset.images.shape[-1] < image_size and not train:
            raise ValueError(f"{dataset.name}: images of {dataset.images.shape[-1]}px are smaller than "
                             f"the {image_size}px the model is asked to see")
        self.dataset, self.batch_size, self.image_size = dataset, int(batch_size), int(image_size)
        self.train, self.mean, self.std, self.seed = train, mean, std, seed
        self.drop_last = train if drop_last is None else drop_last
        if self.drop_last and len(dataset) < batch_size:
            raise ValueError(f"{dataset.name} has {len(dataset)} images, fewer than one batch of {batch_size}")
        self.prefetch = prefetch
        self.rank, self.ranks = rank, ranks     # data-parallel: this process's rows of every batch

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        if not self.train:
            return np.arange(len(self.dataset))
        return self.shuffle_rng(epoch).permutation(len(self.dataset))

    def shuffle_rng(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, SHUFFLE])

    def crop_rng(self, epoch: int, batch: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, batch, CROPS])

    def rows(self, batch: int) -> tuple[int, int]:
        """(lo, hi): the rows of a batch of `batch` images this process computes (all of them, unless
        several share each batch: then its nearly equal slice, the first batch % ranks one row longer)."""
        return chunk_bounds(batch, self.ranks)[self.rank]

    def batch(self, indices: np.ndarray, rng: np.random.Generator, rows: tuple[int, int] | None = None):
        """Crops (random or centre), flips and normalises the images at `indices`; only rows lo:hi of
        them when `rows` is given. Every image's crop and flip is drawn, in the batch's order, whichever
        rows are made, so a batch split among processes is the same batch: rows lo:hi of it."""
        lo, hi = rows if rows is not None else (0, len(indices))
        images = self.dataset.images
        s = self.image_size
        stored = images.shape[-1]
        pad = s // 8 if self.train and stored <= s else 0     # small images: a crop of the image padded
        span = s + 2 * pad if pad else stored                 # the side the crop is taken from
        corners, flips = [], []
        for _ in range(len(indices)):                         # the draws of the whole batch, in order
            if self.train:
                corners.append(rng.integers(0, span - s + 1, size=2))
                flips.append(rng.random() < 0.5)
            else:
                corners.append(((stored - s) // 2,) * 2)
                flips.append(False)
        mine = indices[lo:hi]
        out = np.empty((len(mine), 3, s, s), dtype=np.uint8)
        order = np.argsort(mine)                              # read a memory-map in file order
        raw = np.asarray(images[mine[order]])
        raw_by_position = np.empty_like(raw)
        raw_by_position[order] = raw
        if pad:
            raw_by_position = np.pad(raw_by_position, ((0, 0), (0, 0), (pad, pad + s - stored), (pad, pad + s - stored)))
        for k in range(len(mine)):
            top, left = corners[lo + k]
            crop = raw_by_position[k, :, top : top + s, left : left + s]
            out[k] = crop[:, :, ::-1] if flips[lo + k] else crop
        return normalize(out, self.mean, self.std), self.dataset.labels[mine]

    def batches(self, epoch: int):
        """The batches of `epoch` (this process's rows of each), computed in this thread (what the
        background thread runs)."""
        order = self.order(epoch)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.batch(idx, self.crop_rng(epoch, b), self.rows(len(idx)))

    def epoch(self, epoch: int):
        """Like `batches`, but the next batch is prepared in a background thread meanwhile."""
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        done = object()

        def produce():
            try:
                for item in self.batches(epoch):
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(done)
            except BaseException as error:  # handed to the consumer, raised there
                q.put(error)

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join(timeout=5)
