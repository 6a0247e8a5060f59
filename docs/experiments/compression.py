"""The compression results in docs/RESULTS.md: Deep Compression on the Imagenette SqueezeNet 1.1.

    python docs/experiments/compression.py runs/imagenette72-squeezenet1_1/best.npz ../shared/data/imagenette72 [OUT_DIR]
    python docs/experiments/compression.py --plot OUT.png LABEL=results.json [LABEL=results.json ...]

For each (density, bits): `deep_compress` (the pipeline of the `compress` command): prune (the
"paper" policy), fine-tune three epochs, share weights, fine-tune the centroids one epoch; write the
.tsq file, and record top-1 after every stage and the file size in OUT_DIR/compression-imagenette72.json;
then plot accuracy against size. `--plot` draws several models' results (one per seed) on one picture.
"""
import argparse
import json
from pathlib import Path

from tinysqueeze.compress import deep_compress, format_sizes, save_compressed
from tinysqueeze.evaluation.evaluate import evaluate
from tinysqueeze.evaluation.plots import pyplot, save_figure
from tinysqueeze.models.size import megabytes
from tinysqueeze.studies.stats import labelled_groups
from tinysqueeze.training.loading import data_for, load_run, loader_for

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
    plot({"": results}, out / "compression-imagenette72.png")


def point_label(result):
    return "fp32" if result["bits"] == 32 else f"{100 * result['density']:.0f}%, {result['bits']} bits"


def plot(results_by_model, path):
    """results_by_model: label -> the list `main` writes; each model one colour, its points joined by size."""
    import matplotlib.ticker

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    for index, (model, results) in enumerate(results_by_model.items()):
        by_size = sorted(results, key=lambda r: r["bytes"])
        sizes = [megabytes(r["bytes"]) for r in by_size]
        top1 = [100 * r["top1"] for r in by_size]
        ax.plot(sizes, top1, "o-", color=f"C{index}", lw=0.8, ms=5, label=model or None)
        if index == 0:                      # one set of point labels is enough: the sizes barely differ
            for r, x, y in zip(by_size, sizes, top1):
                ax.annotate(point_label(r), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks([0.25, 0.5, 1, 2, 3])
    ax.set_xlabel("model size (MB, log scale)")
    ax.set_ylabel("val top-1 (%)")
    ax.set_title("SqueezeNet 1.1 on Imagenette (64 px): Deep Compression")
    ax.grid(alpha=0.3)
    if len(results_by_model) > 1:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="OUT.png", help="only draw the LABEL=results.json arguments on one picture")
    parser.add_argument("args", nargs="+", help="CHECKPOINT DATA [OUT_DIR], or with --plot: LABEL=results.json ...")
    args = parser.parse_args()
    if args.plot:
        if not all("=" in a for a in args.args):
            parser.error(f"--plot takes LABEL=results.json arguments, got {args.args}")
        plot({label: json.loads(Path(files[0]).read_text()) for label, files in labelled_groups(args.args)},
             Path(args.plot))
    elif len(args.args) > 3:
        parser.error(f"expected CHECKPOINT DATA [OUT_DIR], got {len(args.args)} arguments")
    else:
        main(*args.args)
