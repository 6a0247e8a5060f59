"""Ring all-reduce: every rank ends with the sum of every rank's buffer, each sending only its neighbour.

In data-parallel training each of N ranks (processes) computes gradients on its own slice of the
batch; before the optimiser step every rank needs the SUM of all N gradient buffers. That is an
all-reduce. The ring version arranges the ranks in a circle, rank r sending only to its right
neighbour r+1 and receiving only from its left neighbour r-1 (mod N), and splits the buffer into N
chunks. It runs in two phases of N-1 steps each; in every step all ranks send at once, one chunk each.

1. Reduce-scatter. In step s, rank r sends chunk (r - s) mod N to the right and receives chunk
   (r - s - 1) mod N from the left, adding it into its own copy. A partial sum travels round the
   ring picking up one rank's contribution per step; after N-1 steps rank r holds chunk (r + 1) mod N
   summed over all ranks (and only that chunk: the others are partial sums).
2. All-gather. In step s, rank r sends chunk (r + 1 - s) mod N to the right and receives chunk
   (r - s) mod N from the left, this time COPYING it over its own. Each finished chunk travels once
   round the ring; after N-1 steps every rank holds every finished chunk.

Three ranks, buffer split into chunks a, b, c; rank r's own values are a_r, b_r, c_r. Writing
a01 for a0 + a1 and A for a0 + a1 + a2 (likewise B, C); the chunk that moved in is in [brackets]:

                    rank 0              rank 1              rank 2
    start           a0    b0    c0      a1    b1    c1      a2    b2    c2
    reduce-scatter  (receiver adds; in step 0 rank 0 sends a, rank 1 sends b, rank 2 sends c)
      step 0        a0    b0   [c02]   [a01]  b1    c1      a2   [b12]  c2
      step 1        a0   [B]    c02     a01   b1   [C]     [A]    b12   c2
    all-gather      (each rank passes on the chunk it just finished or received; receiver copies)
      step 0       [A]    B     c02     a01  [B]    C       A     b12  [C]
      step 1        A     B    [C]     [A]    B     C       A    [B]    C

Cost. Each step moves one chunk of about S/N elements (S: the buffer's length) per rank, and there
are 2(N-1) steps, so each rank sends (and receives) 2(N-1)/N * S elements in all: S for N = 2,
approaching 2S as N grows, but never more, however many ranks there are. No all-reduce can do with
less: every rank must send out at least (N-1)/N of its data to be summed elsewhere and take in at
least (N-1)/N of the result it did not compute, so the ring is bandwidth-optimal (Patarasuk and
Yuan, 2009, prove the bound). (Sending
everything to one rank and back costs that rank (N-1) * S each way instead.) What it pays for this
is latency: 2(N-1) steps in a row, so for tiny buffers a tree does better. MPI's own Allreduce picks
among such algorithms by size.

Rounding. The sum of a chunk is built in ring order (a0 + a1) + a2, which differs from the order
MPI's Allreduce uses, so the two agree only to rounding. But every rank ends with the SAME bits:
each finished chunk is computed once, by one rank, and the all-gather only copies it.

Only the `comm` object handed in is used (an mpi4py communicator, or anything with its `rank`,
`size` and `Sendrecv`), so this module imports without mpi4py installed.
"""
from __future__ import annotations

import numpy as np

SUPPORTED_DTYPES = (np.float32, np.float64)


def chunk_bounds(length: int, n: int) -> list[tuple[int, int]]:
    """Split range(length) into n contiguous, nearly equal chunks: [(start, stop)] of n pairs.

    The first length % n chunks get one element more (as np.array_split does); when length < n
    the last chunks are empty, start == stop. chunk_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]."""
    base, extra = divmod(length, n)
    bounds, start = [], 0
    for index in range(n):
        stop = start + base + (1 if index < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def ring_neighbours(rank: int, n: int) -> tuple[int, int]:
    """(left, right): the rank this one receives from and the rank it sends to, round a ring of n."""
    return (rank - 1) % n, (rank + 1) % n


def check_buffer(buffer: np.ndarray) -> None:
    """Refuse what the ring cannot sum in place: not a 1-D, C-contiguous float32/float64 array."""
    if not isinstance(buffer, np.ndarray) or buffer.dtype.type not in SUPPORTED_DTYPES:
        raise TypeError(f"ring_allreduce sums a float32 or float64 NumPy array, not {getattr(buffer, 'dtype', type(buffer))}")
    if buffer.ndim != 1 or not buffer.flags.c_contiguous or not buffer.flags.writeable:
        raise ValueError(f"ring_allreduce needs a flat, contiguous, writeable buffer, not shape {buffer.shape} "
                         f"(flatten a copy, or pass a 1-D view such as params.reshape(-1))")


def exchange(comm, send: np.ndarray, receive: np.ndarray, left: int, right: int) -> None:
    """One ring step: send `send` (shape (k,)) to `right` while receiving `receive` (shape (m,)) from `left`.

    Sendrecv does both at once, so no rank waits for its left neighbour's send to finish before
    starting its own: a ring where everyone sent first and received second could deadlock."""
    comm.Sendrecv(send, dest=right, recvbuf=receive, source=left)


def reduce_scatter(comm, buffer: np.ndarray, bounds: list[tuple[int, int]]) -> None:
    """Phase 1, in place: afterwards chunk (rank + 1) mod N of `buffer` (shape (S,)) is the sum over all ranks.

    Incoming chunks land in a scratch array (shape (largest chunk,)) and are then added into `buffer`."""
    n, rank = comm.size, comm.rank
    left, right = ring_neighbours(rank, n)
    scratch = np.empty(max(stop - start for start, stop in bounds), dtype=buffer.dtype)
    for step in range(n - 1):
        send_start, send_stop = bounds[(rank - step) % n]
        recv_start, recv_stop = bounds[(rank - step - 1) % n]
        incoming = scratch[: recv_stop - recv_start]
        exchange(comm, buffer[send_start:send_stop], incoming, left, right)
        buffer[recv_start:recv_stop] += incoming


def all_gather(comm, buffer: np.ndarray, bounds: list[tuple[int, int]]) -> None:
    """Phase 2, in place: pass each finished chunk round the ring, so `buffer` (shape (S,)) is finished everywhere.

    Needs what reduce_scatter leaves: chunk (rank + 1) mod N finished on this rank. Incoming chunks are
    received straight into `buffer`, overwriting the partial sums there."""
    n, rank = comm.size, comm.rank
    left, right = ring_neighbours(rank, n)
    for step in range(n - 1):
        send_start, send_stop = bounds[(rank + 1 - step) % n]
        recv_start, recv_stop = bounds[(rank - step) % n]
        exchange(comm, buffer[send_start:send_stop], buffer[recv_start:recv_stop], left, right)


def ring_allreduce(comm, buffer: np.ndarray) -> None:
    """Sum `buffer` (shape (S,), float32 or float64) over all ranks of `comm`, IN PLACE, by a ring.

    Every rank must call it with a buffer of the same length and dtype. With one rank the buffer is
    left as it is. Agrees with comm.Allreduce(MPI.IN_PLACE, buffer) to rounding, and leaves bit-for-bit
    the same result on every rank."""
    check_buffer(buffer)
    if comm.size == 1:
        return
    bounds = chunk_bounds(buffer.size, comm.size)
    reduce_scatter(comm, buffer, bounds)
    all_gather(comm, buffer, bounds)
