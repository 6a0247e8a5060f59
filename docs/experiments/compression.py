"""The compression results in the README: Deep Compression on the Imagenette SqueezeNet 1.1.

    python docs/experiments/compression.py runs/imagenette72-squeezenet1_1/best.npz ../shared/data/imagenette72

For each (density, bits): prune (the "paper" policy), fine-tune three epochs, share weights,
fine-tune the centroids one epoch, write the .tsq file, and record top-1 and the file size; then plot
accuracy against size.
"""
import json
import sys
from pathlib import Path

from tinysqueeze.checkpoint import load_checkpoint
from tinysqueeze.compress.finetune import finetune_pruned, finetune_shared
from tinysqueeze.compress.pipeline import format_sizes, save_compressed
from tinysqueeze.compress.prune import prunable, prune
from tinysqueeze.compress.quantize import SharedWeights
from tinysqueeze.datasets import DataLoader, load_split
from tinysqueeze.train import evaluate, model_from_checkpoint

POINTS = [(0.5, 8), (0.5, 6), (0.5, 4), (0.33, 6)]
PRUNE_EPOCHS = 3


def main(checkpoint, data, out_dir="docs/results"):
    out = Path(out_dir)
    meta = load_checkpoint(checkpoint)[2]
    size = meta["image_size"]
    train = DataLoader(load_split(data, "train", size), 64, size, True, meta["mean"], meta["std"], seed=0)
    val = DataLoader(load_split(data, "val", size), 100, size, False, meta["mean"], meta["std"])
    model, _ = model_from_checkpoint(checkpoint)
    results = [{"density": 1.0, "bits": 32, "top1": evaluate(model, val, model.num_classes)["top1"],
                "bytes": 4 * model.num_parameters()}]
    for density, bits in POINTS:
        model, _ = model_from_checkpoint(checkpoint)
        masks = prune(model, density, policy="paper")
        finetune_pruned(model, masks, train, PRUNE_EPOCHS)
        shared = SharedWeights(model, bits, [name for name, _ in prunable(model)])
        finetune_shared(model, shared, train, 1)
        path = Path("/tmp") / f"imagenette-{density}-{bits}.tsq"
        rows = save_compressed(path, model, shared, meta["model"], density, bits)
        top1 = evaluate(model, val, model.num_classes)["top1"]
        results.append({"density": density, "bits": bits, "top1": top1, "bytes": sum(r.huffman_bytes for r in rows),
                        "file": format_sizes(rows, "").splitlines()[-1]})
        print(json.dumps(results[-1]), flush=True)
    (out / "compression-imagenette72.json").write_text(json.dumps(results, indent=1) + "\n")
    plot(results, out / "compression-imagenette72.png")


def plot(results, path):
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        label = "fp32" if r["bits"] == 32 else f"{100 * r['density']:.0f}%, {r['bits']} bits"
        ax.scatter(r["bytes"] / 1e6, 100 * r["top1"], s=40)
        ax.annotate(label, (r["bytes"] / 1e6, 100 * r["top1"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks([0.25, 0.5, 1, 2, 3])
    ax.set_xlabel("model size (MB, log scale)")
    ax.set_ylabel("val top-1 (%)")
    ax.set_title("SqueezeNet 1.1 on Imagenette (64 px): Deep Compression")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main(*sys.argv[1:])
