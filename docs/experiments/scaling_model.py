"""The paper's first reason for small models, modelled: how well data-parallel SGD scales over N workers
for SqueezeNet against AlexNet, when every step's gradients go round a ring (lesson 19,
docs/distributed.md). Prints the table and draws the picture:

    python docs/experiments/scaling_model.py docs/results/scaling-model.png

The model (no overlap of computing and sending: tinysqueeze sums the gradients after the whole backward):

    t_step(N)      = t_compute + t_allreduce(N)
    t_allreduce(N) = 2 (N - 1) / N * bytes / bandwidth  +  2 (N - 1) * latency        (the ring, ring.py)
    efficiency(N)  = t_compute / t_step(N)

Weak scaling: each worker keeps its batch (WORKER_BATCH images a step), so N workers take N times the
images per step and the ideal speed-up is N; efficiency is the share of that ideal. t_compute is the
measured training time of one step on one worker (one 2-core machine like this project's, 224 px),
bytes the parameters' float32 size (every gradient, once), latency a typical MPI message latency over
Ethernet. Every input is in INPUTS, with where it comes from.
"""
from __future__ import annotations

import sys

WORKER_BATCH = 32                 # images per worker per step: the paper's solver keeps 32 in memory
LATENCY_S = 25e-6                 # one MPI message over TCP/Ethernet, a typical figure (InfiniBand: ~2 us)
BANDWIDTHS_GBIT = (10, 25, 100)
WORKERS = (2, 4, 8, 16, 32, 64, 128)
# Workers like this machine, and workers that compute a step 50 times faster (an assumption standing for a
# GPU; the network stays the same): the faster the worker, the larger communication's share.
FASTER = (1, 50)

# model: (parameters, measured training time per image on this 2-core machine at 224 px, in seconds: the
# median of 5 steps of 8 images, one process with 2 threads, SGD: tinysqueeze's own train_step)
INPUTS = {
    "SqueezeNet 1.1": (1_235_496, 0.0522),
    "SqueezeNet 1.0": (1_248_424, 0.0935),
    "AlexNet": (61_100_840, 0.1079),
}

# The downscaled ImageNet (Imagenet32 / Imagenet64): 1,281,167 training images. Measured here, SqueezeNet 1.1,
# one epoch of 10,000 images: (pixels, batch per worker, images per second of this machine as 2 ranks)
IMAGENET_IMAGES = 1_281_167
DOWNSCALED = {"Imagenet32": (32, 128, 1930), "Imagenet64": (64, 64, 490)}


def allreduce_seconds(parameters: int, workers: int, bandwidth_gbit: float, latency: float = LATENCY_S) -> float:
    """The ring's time for one all-reduce of every float32 gradient among `workers`."""
    if workers == 1:
        return 0.0
    size_bytes = 4 * parameters
    return 2 * (workers - 1) / workers * size_bytes / (bandwidth_gbit * 1e9 / 8) + 2 * (workers - 1) * latency


def efficiency(parameters: int, compute_seconds: float, workers: int, bandwidth_gbit: float) -> float:
    return compute_seconds / (compute_seconds + allreduce_seconds(parameters, workers, bandwidth_gbit))


def table(inputs=INPUTS) -> list[str]:
    lines = ["| model | MB per step | compute per step | network | " + " | ".join(f"N={n}" for n in WORKERS) + " |",
             "|---" * (4 + len(WORKERS)) + "|"]
    for faster in FASTER:
        for name, (parameters, per_image) in inputs.items():
            compute = per_image * WORKER_BATCH / faster
            for gbit in BANDWIDTHS_GBIT:
                cells = " | ".join(f"{100 * efficiency(parameters, compute, n, gbit):.0f}%" for n in WORKERS)
                lines.append(f"| {name} | {4 * parameters / 1e6:.1f} | {compute:.3g} s | {gbit} Gbit/s | {cells} |")
    return lines


def epoch_table(parameters: int = INPUTS["SqueezeNet 1.1"][0], gbit: float = 10) -> list[str]:
    """Minutes per epoch of the downscaled ImageNet for SqueezeNet 1.1 on N machines like this one."""
    lines = ["| data | one machine | " + " | ".join(f"{n} machines" for n in WORKERS) + " |",
             "|---" * (2 + len(WORKERS)) + "|"]
    for name, (pixels, batch, rate) in DOWNSCALED.items():
        alone = IMAGENET_IMAGES / rate
        compute = batch / rate                       # one step of one machine
        cells = " | ".join(f"{alone / (n * efficiency(parameters, compute, n, gbit)) / 60:.1f}" for n in WORKERS)
        lines.append(f"| {name} ({pixels} px, {batch} a machine a step) | {alone / 60:.1f} | {cells} |")
    return lines


def draw(path, inputs=INPUTS) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, grid = plt.subplots(len(FASTER), len(BANDWIDTHS_GBIT), figsize=(12, 3.3 * len(FASTER)), sharey=True,
                             squeeze=False)
    for axes, faster in zip(grid, FASTER):
        for ax, gbit in zip(axes, BANDWIDTHS_GBIT):
            for (name, (parameters, per_image)), style in zip(inputs.items(), ("-o", "--s", ":^")):
                compute = per_image * WORKER_BATCH / faster
                ax.plot(WORKERS, [100 * efficiency(parameters, compute, n, gbit) for n in WORKERS], style, label=name)
            ax.set_xscale("log", base=2)
            ax.set_xticks(WORKERS, [str(n) for n in WORKERS])
            worker = "workers like this 2-core machine" if faster == 1 else f"workers {faster}x faster (a GPU)"
            ax.set_title(f"{gbit} Gbit/s, {worker}", fontsize=9)
            ax.set_ylim(0, 105)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("scaling efficiency, %")
    for ax in grid[-1]:
        ax.set_xlabel("workers")
    grid[0][0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"Data-parallel SGD, ring all-reduce after each backward, {WORKER_BATCH} images per worker at 224 px")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit(__doc__.split("\n\n")[1])
    missing = [name for name, (_, per_image) in INPUTS.items() if per_image is None]
    if missing:
        raise SystemExit(f"measure the per-image training time of {', '.join(missing)} first (INPUTS)")
    print("\n".join(table()))
    print(f"\nminutes per epoch of the downscaled ImageNet, SqueezeNet 1.1, {BANDWIDTHS_GBIT[0]} Gbit/s:")
    print("\n".join(epoch_table()))
    draw(argv[0])
    print(f"picture: {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
