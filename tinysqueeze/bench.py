"""`python -m tinysqueeze bench` (`make bench`): how fast a training step is, where the time goes, and
how that compares with PyTorch on the same machine in the same run.

Each configuration is measured in a fresh subprocess, so that its peak memory is its own:
- training step (forward + cross-entropy + backward + SGD step) and inference (forward, eval mode):
  median of several timed iterations after warm-up, images/s;
- peak resident memory minus the process's baseline after imports;
- a per-layer-type and per-layer breakdown of forward and backward time (one instrumented step);
- achieved GFLOP/s (2 x MACs x 3 for a training step: the backward costs about twice the forward)
  against a large float32 matrix product measured in the same run: the ceiling;
- the plain-NumPy twins of the Numba kernels at this configuration's largest shapes;
- PyTorch's figures for the same configuration where PyTorch is installed beside tinysqueeze.
Benchmarks print figures; nothing here asserts a timing.
"""
from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np

CONFIGS = [("squeezenet1_1", 64, 64), ("squeezenet1_1", 224, 8), ("squeezenet1_0", 224, 8)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def median_time(fn, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gemm_gflops(n: int = 1024, repeats: int = 5) -> float:
    """float32 (n x n) @ (n x n) through NumPy's BLAS: the ceiling every convolution aims at."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    seconds = median_time(lambda: a @ b, repeats, 2)
    return 2 * n**3 / seconds / 1e9


# ------------------------------------------------------------------------ tinysqueeze, one config
def instrument(model):
    """Wraps every leaf module's forward/backward with timers; returns the dict they fill."""
    from . import nn

    totals: dict = defaultdict(float)
    per_layer: dict = defaultdict(float)

    def kind(m) -> str:
        if isinstance(m, nn.Conv2d):
            return "conv 1x1" if m.is_pointwise else f"conv {m.kernel_size[0]}x{m.kernel_size[1]}"
        return type(m).__name__

    owner = {}
    for name, m in model.named_modules():
        top = ".".join(name.split(".")[:2])
        if m is not model and not list(m.children()):
            owner[id(m)] = top

    for name, m in model.named_modules():
        if list(m.children()) or m is model:
            continue
        for phase in ("forward", "backward"):
            original = getattr(m, phase)

            def timed(*args, _orig=original, _m=m, _phase=phase, **kw):
                start = time.perf_counter()
                out = _orig(*args, **kw)
                elapsed = time.perf_counter() - start
                totals[(kind(_m), _phase)] += elapsed
                per_layer[(owner[id(_m)], _phase)] += elapsed
                return out
            setattr(m, phase, timed)
    return totals, per_layer


def first_call_times() -> dict:
    """How long the first call of a Numba kernel takes in a fresh process (cache load or compile)."""
    from .nn import kernels

    x_small = np.random.default_rng(0).standard_normal((1, 2, 9, 9)).astype(np.float32)
    times = {}
    for name, call in [("im2col", lambda: kernels.im2col(x_small, 3, 3, 1, 1, 9, 9)),
                       ("maxpool_forward", lambda: kernels.maxpool_forward(x_small, 3, 3, 2, 0, 4, 4))]:
        start = time.perf_counter()
        call()
        times[name] = time.perf_counter() - start
    return times


@contextlib.contextmanager
def timed_kernels(module, names=("im2col", "col2im")):
    """Within it, calls of `module`'s functions `names` are timed into the dict it yields; the
    originals are put back on the way out."""
    spent: dict = defaultdict(float)
    originals = {name: getattr(module, name) for name in names}

    def timer(name, original):
        def timed(*args):
            start = time.perf_counter()
            out = original(*args)
            spent[name] += time.perf_counter() - start
            return out
        return timed
    for name, original in originals.items():
        setattr(module, name, timer(name, original))
    try:
        yield spent
    finally:
        for name, original in originals.items():
            setattr(module, name, original)


def training_step(model, x, y):
    """-> a function doing one training step (SGD, the paper's settings) on the batch (x, y)."""
    from . import nn
    from .optim import SGD

    loss_fn = nn.SoftmaxCrossEntropy()
    optimizer = SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=2e-4)

    def step():
        optimizer.zero_grad()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        optimizer.step()
    return step


def instrumented_step(model, x, y) -> dict:
    """One training step with every leaf module's forward and backward timed, and im2col / col2im."""
    from . import nn
    from .nn import conv as conv_module
    from .optim import SGD

    totals, per_layer = instrument(model)
    loss_fn = nn.SoftmaxCrossEntropy()
    optimizer = SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=2e-4)
    with timed_kernels(conv_module) as kernel_time:
        start = time.perf_counter()
        optimizer.zero_grad()
        logits = model(x)
        forward_end = time.perf_counter()
        loss_fn(logits, y)
        d = loss_fn.backward()
        loss_time = time.perf_counter() - forward_end
        model.backward(d)
        backward_end = time.perf_counter()
        optimizer.step()
        optim_time = time.perf_counter() - backward_end
        instrumented = time.perf_counter() - start
    return {"by_type": {f"{k[0]}|{k[1]}": v for k, v in totals.items()},
            "by_layer": {f"{k[0]}|{k[1]}": v for k, v in per_layer.items()},
            "kernels": dict(kernel_time), "loss_s": loss_time, "optim_s": optim_time, "instrumented_s": instrumented}


def twin_timings(model, rng) -> dict:
    """The Numba kernels against their NumPy twins at the network's largest im2col and max-pool
    (read from the layers' forward caches, so after a step): name -> (numba s, numpy s)."""
    from . import nn
    from .nn import kernels

    twins = {}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and not m.is_pointwise]
    big_conv = max(convs, key=lambda m: np.prod(m.cache[1].shape))
    xs, cols = big_conv.cache
    kh, kw = big_conv.kernel_size
    _, _, ho, wo = big_conv.output_shape(xs)
    xin = rng.standard_normal(xs).astype(np.float32)
    for label, fast, slow, args in [
        ("im2col", kernels.im2col_numba, kernels.im2col_numpy, (xin, kh, kw, big_conv.stride, big_conv.padding, ho, wo)),
        ("col2im", kernels.col2im_numba, kernels.col2im_numpy,
         (cols, tuple(xs), kh, kw, big_conv.stride, big_conv.padding, ho, wo))]:
        twins[f"{label} {tuple(xs)}"] = (median_time(lambda: fast(*args), 3, 1), median_time(lambda: slow(*args), 3, 1))
    pool = next(m for m in model.modules() if isinstance(m, nn.MaxPool2d))
    px = rng.standard_normal(pool.cache[0]).astype(np.float32)
    _, _, pho, pwo = pool.output_shape(px.shape)
    pargs = (px, 3, 3, pool.stride, pool.padding, pho, pwo)
    twins[f"maxpool {px.shape}"] = (median_time(lambda: kernels.maxpool_forward_numba(*pargs), 3, 1),
                                    median_time(lambda: kernels.maxpool_forward_numpy(*pargs), 3, 1))
    return twins


def measure_ours(model_name: str, size: int, batch: int, repeats: int) -> dict:
    """tinysqueeze's figures for one configuration (run in a fresh process: see run_in_subprocess)."""
    from .models import get_model, skip_image_gradient
    from .models.summary import table

    baseline = current_rss_mb()
    first_call = first_call_times()
    model = get_model(model_name, num_classes=1000)
    macs = sum(r.macs for r in table(model, size))
    skip_image_gradient(model)  # as in training (and in PyTorch, where the input needs no gradient)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    y = rng.integers(0, 1000, batch)
    step = median_time(training_step(model.train(), x, y), repeats, 2)
    peak = peak_rss_mb() - baseline
    infer = median_time(lambda: model.eval()(x), repeats, 1)
    return {"model": model_name, "size": size, "batch": batch, "step_s": step, "train_img_s": batch / step,
            "infer_s": infer, "infer_img_s": batch / infer, "peak_mb": peak, "macs": macs,
            "train_gflops": 2 * macs * 3 * batch / step / 1e9, **instrumented_step(model.train(), x, y),
            "twins": twin_timings(model, rng), "first_call": first_call}


# ------------------------------------------------------------------------ PyTorch, one config
def measure_torch(model_name: str, size: int, batch: int, repeats: int) -> dict:
    """PyTorch's figures for the same configuration, on torch_reference's SqueezeNet (2 threads)."""
    import torch

    from .torch_reference import squeezenet

    torch.set_num_threads(2)
    baseline = current_rss_mb()
    model = squeezenet(model_name).train()
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 1000, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=2e-4)

    def train_step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    step = median_time(train_step, repeats, 2)
    peak = peak_rss_mb() - baseline
    model.eval()
    with torch.no_grad():
        infer = median_time(lambda: model(x), repeats, 1)
    return {"step_s": step, "train_img_s": batch / step, "infer_s": infer, "infer_img_s": batch / infer,
            "peak_mb": peak, "version": torch.__version__}


def torch_available() -> bool:
    try:
        import importlib.util
        return importlib.util.find_spec("torch") is not None
    except ValueError:
        return False


def run_in_subprocess(which: str, model: str, size: int, batch: int, repeats: int) -> dict:
    command = [sys.executable, "-m", "tinysqueeze", "bench", "--one", which, "--model", model, "--image-size",
               str(size), "--batch-size", str(batch), "--repeats", str(repeats)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------ the report
def report(ours: dict, torch_result: dict | None, gemm: float) -> str:
    lines = []
    head = f"{ours['model']} at {ours['size']}px, batch {ours['batch']}"
    lines.append(head)
    lines.append("-" * len(head))
    lines.append(f"{'':<28} {'tinysqueeze':>12} {'PyTorch':>12} {'ratio':>7}")

    def row(label, key, fmt, higher_is_better=True, scale=1.0):
        ours_v = ours[key] * scale
        if torch_result:
            theirs = torch_result[key] * scale
            ratio = ours_v / theirs if higher_is_better else theirs / ours_v
            lines.append(f"{label:<28} {fmt.format(ours_v):>12} {fmt.format(theirs):>12} {ratio:>6.2f}x")
        else:
            lines.append(f"{label:<28} {fmt.format(ours_v):>12} {'-':>12} {'':>7}")
    row("train images/s", "train_img_s", "{:.1f}")
    row("train step (median, ms)", "step_s", "{:.1f}", higher_is_better=False, scale=1000)
    row("inference images/s", "infer_img_s", "{:.1f}")
    row("peak memory over baseline MB", "peak_mb", "{:.0f}", higher_is_better=False)
    lines.append("(ratio: tinysqueeze's speed as a fraction of PyTorch's; for memory, PyTorch's / ours)")
    lines.append(f"achieved {ours['train_gflops']:.1f} GFLOP/s in the training step; float32 GEMM ceiling in this "
                 f"run: {gemm:.1f} GFLOP/s ({100 * ours['train_gflops'] / gemm:.0f}%)")
    total = ours["instrumented_s"]
    lines.append(f"\nwhere one training step's {1000 * total:.0f} ms go (instrumented step):")
    by_type = defaultdict(lambda: [0.0, 0.0])
    for key, v in ours["by_type"].items():
        kind, phase = key.split("|")
        by_type[kind][phase == "backward"] += v
    for kind, (fwd, bwd) in sorted(by_type.items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"  {kind:<20} forward {1000 * fwd:7.1f} ms  backward {1000 * bwd:7.1f} ms  "
                     f"({100 * (fwd + bwd) / total:4.1f}%)")
    for name, v in ours["kernels"].items():
        lines.append(f"    of which {name:<11} {1000 * v:7.1f} ms  ({100 * v / total:4.1f}%)")
    lines.append(f"  {'loss':<20} {1000 * ours['loss_s']:7.1f} ms;  SGD step {1000 * ours['optim_s']:.1f} ms")
    by_layer = defaultdict(lambda: [0.0, 0.0])
    for key, v in ours["by_layer"].items():
        layer, phase = key.split("|")
        by_layer[layer][phase == "backward"] += v
    lines.append("  per layer (forward + backward, ms): " + ", ".join(
        f"{name} {1000 * sum(v):.1f}" for name, v in sorted(by_layer.items(), key=lambda kv: -sum(kv[1]))[:8]))
    lines.append("Numba kernels against their NumPy twins (median ms):")
    for name, (fast, slow) in ours["twins"].items():
        lines.append(f"  {name:<36} numba {1000 * fast:7.2f}  numpy {1000 * slow:7.2f}  ({slow / fast:4.1f}x)")
    lines.append("first call of a kernel in a fresh process (loads the on-disk compile cache, or compiles): "
                 + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in ours["first_call"].items()))
    return "\n".join(lines)


def run_bench(configs=CONFIGS, repeats: int = 5, with_torch: bool | None = None) -> str:
    with_torch = torch_available() if with_torch is None else with_torch
    gemm = gemm_gflops()
    out = [f"tinysqueeze bench: {os.cpu_count()} cores, float32 GEMM {gemm:.1f} GFLOP/s; "
           + ("PyTorch beside it" if with_torch else "PyTorch not installed (make bench installs it when it can)")]
    for model, size, batch in configs:
        ours = run_in_subprocess("ours", model, size, batch, repeats)
        theirs = run_in_subprocess("torch", model, size, batch, repeats) if with_torch else None
        out.append("")
        out.append(report(ours, theirs, gemm))
    return "\n".join(out)


def run_one(which: str, model: str, size: int, batch: int, repeats: int) -> None:
    result = (measure_ours if which == "ours" else measure_torch)(model, size, batch, repeats)
    print(json.dumps(result, default=float))
