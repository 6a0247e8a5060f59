"""The compression results in the README: Deep Compression on the Imagenette SqueezeNet 1.1.

    python docs/experiments/compression.py runs/imagenette72-squeezenet1_1/best.npz ../shared/data/imagenette72

For each (density, bits): `deep_compress` (the pipeline of the `compress` command): prune (the
"paper" policy), fine-tune three epochs, share weights, fine-tune the centroids one epoch; write the
.tsq file, and record top-1 after every stage and the file size; then plot accuracy against size.
"""
import json
import sys
from pathlib import Path

from tinysqueeze.compress import deep_compress, format_sizes, save_compressed
from tinysqueeze.evaluate import evaluate
from tinysqueeze.runs import data_for, load_run, loader_for

POINTS = [(0.5, 8), (0.5, 6), (0.5, 4), (0.33, 6)]
PRUNE_EPOCHS = 3        # fine-tuning after pruning
CENTROID_EPOCHS = 1     # fine-tuning the shared centroids


def main(checkpoint, data=None, out_dir="docs/results"):
    out = Path(out_dir)
    model, meta, _ = load_run(checkpoint)
    train = loader_for(meta, data_for(meta, "train", data), 64, train=True)
    val = loader_for(meta, data_for(meta, "val", data), 100)
    results = [{"density": 1.0, "bits": 32, "top1": evaluate(model, val, model.num_classes)["top1"],
                "bytes": 4 * model.num_parameters()}]
    for density, bits in POINTS:
        model, meta, _ = load_run(checkpoint)
        compressed = deep_compress(model, density, bits, "paper", train, val, PRUNE_EPOCHS, CENTROID_EPOCHS)
        path = Path("/tmp") / f"imagenette-{density}-{bits}.tsq"
        rows = save_compressed(path, compressed, meta.model, meta.model_args)
        results.append({"density": density, "bits": bits, "top1": compressed.stages[-1].top1,
                        "bytes": sum(r.huffman_bytes for r in rows),
                        "stages": {stage.label: stage.top1 for stage in compressed.stages},
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
