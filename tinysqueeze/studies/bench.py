"""`python -m tinysqueeze bench` (`make bench`): how fast a training step is, where the time goes, and
how that compares with PyTorch on the same machine in the same run.

The two sides are measured the same way, *alternately*: each configuration starts one worker
process per side (ours, and PyTorch's where it is installed), each builds its network once and
then times a few steps whenever asked. The parent asks ours, then theirs, then ours, ... for
several rounds, so a moment of machine noise lands on both sides alike instead of deciding the
ratio (measured one side after the other, the same PyTorch step came out at 361 and at 654 img/s a
minute apart). Reported:
- the CPU and the kernels NumPy's BLAS multiplies with; where OPENBLAS_CORETYPE pins them, what
  OpenBLAS would choose itself, measured in a process without the pin, when that is faster;
- training step (forward + cross-entropy + backward + SGD step) and inference (forward, eval mode):
  the median over all rounds of each side, and the ratio: the median of the rounds' own ratios
  (ours against theirs within one round, measured moments apart), with the lowest and highest
  round beside it;
- peak resident memory of a training step minus the worker's baseline after imports (each side in
  its own process, so each peak is its own);
- a per-layer-type and per-layer breakdown of forward and backward time (one instrumented step);
- achieved GFLOP/s (2 x MACs x 3 for a training step: the backward costs about twice the forward)
  against a large float32 matrix product measured in the same run: the ceiling;
- the plain-NumPy twins of the Numba kernels at this configuration's largest shapes;
- the same alternation with both sides in one Python process, as a notebook comparing them runs:
  there our side has the C allocator as it comes (the command line's `keep_freed_memory` is a
  process-wide setting a notebook has not made) and PyTorch's OpenMP threads live beside OpenBLAS's.
Many short rounds (15 of one step by default) and the median of the per-round ratios hold on a
shared machine better than a few long rounds; a run whose rounds disagree by more than 2x says so.
`--quick` measures one configuration. Benchmarks print figures; nothing here asserts a timing.
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

from ..distributed.threads import waits_as_the_user_set
from ..models.size import megabytes

CONFIGS = [("squeezenet1_1", 32, 128), ("squeezenet1_0", 32, 128), ("squeezenet1_1", 64, 64),
           ("squeezenet1_0", 64, 64), ("squeezenet1_1", 224, 8), ("squeezenet1_0", 224, 8)]
# A pause before each side's turn: thread pools (OpenBLAS's, PyTorch's OpenMP) keep spinning for a
# moment after their last task, and must not be timed against the other side.
SETTLE_S = 0.3


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The processor's name ("AMD EPYC", "Intel(R) Xeon(R) CPU @ 2.20GHz"): each figure of the bench
    holds for one CPU, and the report says which. Linux's /proc/cpuinfo, else Python's guess."""
    import platform

    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "an unknown CPU"


# OpenBLAS picks its kernels for the CPU when it loads, unless OPENBLAS_CORETYPE names a set: a
# machine may pin an older one (the same rounding on every machine of a fleet). On the project's Zen 5
# EPYC the environment pinned Haswell's (AVX2), about half the speed of the SkylakeX kernels (AVX-512)
# OpenBLAS takes there itself (lesson 14, round 8): the report says so, and what the choice costs.
PINNED_CORE = "OPENBLAS_CORETYPE"
FREE_CHOICE_PROBE = ("from tinysqueeze.studies.bench import gemm_gflops, openblas_core; "
                     "print(openblas_core(), gemm_gflops())")


def openblas_core() -> str | None:
    """The kernels NumPy's OpenBLAS runs ("SkylakeX", "Haswell"); None for another BLAS, or an
    OpenBLAS that does not say."""
    from ..nn.fast.blas_threads import OpenBLAS

    blas = OpenBLAS.loaded()
    return blas.core() if blas else None


def free_choice(environ=os.environ) -> tuple[str, float] | None:
    """Where OPENBLAS_CORETYPE pins the kernels: the ones OpenBLAS would choose itself and their
    ceiling (GFLOP/s), measured in a process started without it; None where nothing is pinned, or
    the process could not say."""
    if not environ.get(PINNED_CORE, "").strip():
        return None
    env = {name: value for name, value in environ.items() if name != PINNED_CORE}
    try:
        done = subprocess.run([sys.executable, "-c", FREE_CHOICE_PROBE], env=env, capture_output=True, text=True,
                              timeout=300)
        core, gflops = done.stdout.split()[-2:]
        return (core, float(gflops)) if core != "None" else None
    except (subprocess.TimeoutExpired, ValueError):
        return None


def pinned_kernels_note(pinned: str, core: str, gemm: float, free: tuple[str, float] | None) -> str | None:
    """What pinning OpenBLAS's kernels costs on this machine, in one line for the report; None if
    nothing is pinned, or the free choice is the same kernels or no more than 10% faster.
    pinned: OPENBLAS_CORETYPE's value; core: the kernels running; gemm: their ceiling (GFLOP/s);
    free: what `free_choice` measured."""
    if not pinned or free is None or free[0] == core or free[1] <= 1.1 * gemm:
        return None
    return (f"note: {PINNED_CORE}={pinned} in the environment pins OpenBLAS to its {core} kernels; left to "
            f"choose, OpenBLAS takes {free[0]} on this CPU, with a GEMM ceiling of {free[1]:.0f} GFLOP/s against "
            f"{gemm:.0f} ({free[1] / gemm:.2f}x). Our figures below are with the pinned kernels; unset "
            f"{PINNED_CORE} for the faster ones (their rounding differs from the pinned kernels')")


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (10^6 bytes, as everywhere in tinysqueeze)."""
    return megabytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)   # Linux: kilobytes


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return megabytes(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))


def run_times(fn, repeats: int, warmup: int) -> list[float]:
    """Seconds of each of `repeats` calls of fn, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_time(fn, repeats: int, warmup: int) -> float:
    return statistics.median(run_times(fn, repeats, warmup))


def gemm_gflops(n: int = 1024, repeats: int = 7) -> float:
    """float32 (n x n) @ (n x n) through NumPy's BLAS: the ceiling every convolution aims at. A
    ceiling is the best the machine did, so the fastest of the repeats (a busy moment only slows a
    product down; the median of a busy run once put the ceiling below the step's own GEMMs)."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    return 2 * n**3 / min(run_times(lambda: a @ b, repeats, 1)) / 1e9


# ------------------------------------------------------------------------ tinysqueeze, one config
def instrument(model):
    """Wraps every leaf module's forward/backward with timers; returns the dict they fill."""
    from .. import nn

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

            def timed_phase(*args, _orig=original, _m=m, _phase=phase, **kw):
                start = time.perf_counter()
                out = _orig(*args, **kw)
                elapsed = time.perf_counter() - start
                totals[(kind(_m), _phase)] += elapsed
                per_layer[(owner[id(_m)], _phase)] += elapsed
                return out
            setattr(m, phase, timed_phase)
    return totals, per_layer


def first_call_times() -> dict:
    """How long the first call of a Numba kernel takes in a fresh process (cache load or compile)."""
    from ..nn.backend import NUMBA

    x_small = np.random.default_rng(0).standard_normal((1, 2, 9, 9)).astype(np.float32)
    times = {}
    for name, call in [("im2col", lambda: NUMBA.im2col(x_small, 3, 3, 1, 1, 9, 9)),
                       ("maxpool_forward", lambda: NUMBA.maxpool_forward(x_small, 3, 3, 2, 0, 4, 4))]:
        start = time.perf_counter()
        call()
        times[name] = time.perf_counter() - start
    return times


def timed(function, spent: dict, label: str):
    """`function`, with the time of each call added to spent[label]."""
    def call(*args, **kwargs):
        start = time.perf_counter()
        out = function(*args, **kwargs)
        spent[label] += time.perf_counter() - start
        return out
    return call


def counted(matmul, spent: dict):
    """`matmul`, with its time added to spent["matmul"] and its floating-point operations to
    spent["matmul_flop"]: 2*K per entry of the product (a K-long dot product each), batched or not."""
    def call(a, b, **out):
        start = time.perf_counter()
        out = matmul(a, b, **out)
        spent["matmul"] += time.perf_counter() - start
        spent["matmul_flop"] += 2.0 * a.shape[-1] * out.size
        return out
    return call


@contextlib.contextmanager
def timed_kernels(names=("im2col", "col2im", "im2col_cnhw", "col2im_cnhw")):
    """Within it, every layer's calls of the kernels `names` are timed into the dict it yields, and
    every matrix product is timed and its FLOPs counted (`counted`): the layers run a copy of the
    chosen backend whose kernels are wrapped (nn/backend.py), and the chosen one is put back on the
    way out."""
    from dataclasses import replace

    from ..nn import backend

    spent: dict = defaultdict(float)
    chosen = backend.backend()
    backend.use_kernels(replace(chosen, matmul=counted(chosen.matmul, spent),
                                **{name: timed(getattr(chosen, name), spent, name) for name in names}))
    try:
        yield spent
    finally:
        backend.use_kernels(chosen)


# The optimizer both sides time: the paper's SGD (momentum 0.9, weight decay 2e-4); a small rate, so
# that a few timed steps on one batch change the network little.
SGD_SETTINGS = dict(lr=1e-4, momentum=0.9, weight_decay=2e-4)


def training_step(model, x, y):
    """-> a function doing one training step (`train_step`, SGD_SETTINGS) on the batch (x, y)."""
    from .. import nn
    from ..optim import SGD, train_step

    loss_fn = nn.SoftmaxCrossEntropy()
    optimizer = SGD(model.parameters(), **SGD_SETTINGS)
    return lambda: train_step(model, loss_fn, optimizer, x, y)


@contextlib.contextmanager
def timed_methods(spent: dict, label: str, obj, names):
    """Within it, calls of `obj`'s methods `names` add their time to spent[label]."""
    for name in names:
        setattr(obj, name, timed(getattr(obj, name), spent, label))
    try:
        yield spent
    finally:
        for name in names:
            delattr(obj, name)                      # the class's method shows through again


def instrumented_step(model, x, y) -> dict:
    """One training step (`train_step`) with every leaf module's forward and backward timed, the loss,
    the optimizer's update, and im2col / col2im."""
    from .. import nn
    from ..optim import SGD, train_step

    totals, per_layer = instrument(model)
    loss_fn = nn.SoftmaxCrossEntropy()
    optimizer = SGD(model.parameters(), **SGD_SETTINGS)
    spent: dict = defaultdict(float)
    with timed_kernels() as kernel_time, timed_methods(spent, "loss", loss_fn, ("forward", "backward")), \
            timed_methods(spent, "optim", optimizer, ("step",)):
        start = time.perf_counter()
        train_step(model, loss_fn, optimizer, x, y)
        instrumented = time.perf_counter() - start
    return {"by_type": {f"{k[0]}|{k[1]}": v for k, v in totals.items()},
            "by_layer": {f"{k[0]}|{k[1]}": v for k, v in per_layer.items()},
            "kernels": dict(kernel_time), "loss_s": spent["loss"], "optim_s": spent["optim"],
            "instrumented_s": instrumented}


def twin_timings(model, rng) -> dict:
    """The Numba kernels against their NumPy twins at the network's largest im2col and max-pool
    (read from the layers' forward caches, so after a step): name -> (numba s, numpy s)."""
    from .. import nn
    from ..nn import kernels
    from ..nn.fast import cnhw_kernels, numba_kernels

    twins = {}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and not m.is_pointwise]
    big_conv = max(convs, key=lambda m: np.prod(m.cache[1].shape))
    xs, cols = big_conv.cache[:2]                             # its input's shape and its columns
    kh, kw = big_conv.kernel_size
    inside = isinstance(big_conv, nn.Conv2dCNHW)            # (C, N, H, W): the batch-inside kernels
    h_out = kernels.conv_output_size(xs[2], kh, big_conv.stride, big_conv.padding)
    w_out = kernels.conv_output_size(xs[3], kw, big_conv.stride, big_conv.padding)
    suffix = "_cnhw" if inside else ""
    fast_twins, slow_twins = (cnhw_kernels, cnhw_kernels) if inside else (numba_kernels, kernels)
    xin = rng.standard_normal(xs).astype(np.float32)
    for label in ("im2col", "col2im"):
        fast, slow = getattr(fast_twins, f"{label}{suffix}_numba"), getattr(slow_twins, f"{label}{suffix}_numpy")
        args = ((xin,) if label == "im2col" else (cols, tuple(xs))) + (kh, kw, big_conv.stride, big_conv.padding,
                                                                       h_out, w_out)
        twins[f"{label}{suffix} {tuple(xs)}"] = (median_time(lambda: fast(*args), 3, 1),
                                               median_time(lambda: slow(*args), 3, 1))
    pool = next(m for m in model.modules() if isinstance(m, nn.MaxPool2d))
    px = rng.standard_normal(pool.cache[0]).astype(np.float32)
    _, _, pho, pwo = pool.output_shape(px.shape)
    pargs = (px, 3, 3, pool.stride, pool.padding, pho, pwo)
    twins[f"maxpool {px.shape}"] = (median_time(lambda: numba_kernels.maxpool_forward_numba(*pargs), 3, 1),
                                    median_time(lambda: kernels.maxpool_forward_numpy(*pargs), 3, 1))
    return twins


class OurStep:
    """tinysqueeze's side: one network, one batch; times training steps and inference on request."""

    def __init__(self, model_name: str, size: int, batch: int):
        from ..models import get_model
        from ..models.summary import table

        self.first_call = first_call_times()
        # image_grad=False: as in training (and in PyTorch, where the input needs no gradient)
        self.model = get_model(model_name, num_classes=1000, image_grad=False)
        self.macs = sum(r.macs for r in table(self.model, size))
        self.rng = np.random.default_rng(0)
        self.x = self.rng.standard_normal((batch, 3, size, size)).astype(np.float32)
        self.y = self.rng.integers(0, 1000, batch)
        self.step = training_step(self.model, self.x, self.y)

    def train(self):
        self.model.train()
        self.step()

    def infer(self):
        from .. import nn

        with nn.no_grad():                           # inference keeps nothing, as torch.no_grad() below
            self.model.eval()(self.x)

    def profile(self, detail: bool = True) -> dict:
        """The step instrumented layer by layer; with detail, the NumPy twins timed too."""
        return {"macs": self.macs, "first_call": self.first_call, **instrumented_step(self.model.train(), self.x, self.y),
                "twins": twin_timings(self.model, self.rng) if detail else {}}


class TorchStep:
    """PyTorch's side, on torch_reference's SqueezeNet (as many threads as the machine has cores)."""

    def __init__(self, model_name: str, size: int, batch: int):
        import torch

        from .torch_reference import squeezenet

        torch.set_num_threads(os.cpu_count() or 1)      # as many as ours: OpenBLAS and Numba take every core
        self.torch = torch
        self.model = squeezenet(model_name)
        self.x = torch.randn(batch, 3, size, size)
        self.y = torch.randint(0, 1000, (batch,))
        self.optimizer = torch.optim.SGD(self.model.parameters(), **SGD_SETTINGS)

    def train(self):
        self.model.train()
        self.optimizer.zero_grad()
        self.torch.nn.functional.cross_entropy(self.model(self.x), self.y).backward()
        self.optimizer.step()

    def infer(self):
        self.model.eval()
        with self.torch.no_grad():
            self.model(self.x)

    def profile(self, detail: bool = True) -> dict:
        return {"version": self.torch.__version__}


def serve(side: str, model_name: str, size: int, batch: int) -> None:
    """A worker (`bench --worker SIDE`): builds its side (`ours`, `torch`, or `both` in one process, as
    a notebook comparing the two would), warms up, reports its peak memory, then answers
    `train SIDE K` / `infer SIDE K` (K timed steps) and `profile SIDE DETAIL` on stdin, one JSON line
    each."""
    baseline = current_rss_mb()
    runners = {name: (OurStep if name == "ours" else TorchStep)(model_name, size, batch)
               for name in (("ours", "torch") if side == "both" else (side,))}
    for runner in runners.values():
        for _ in range(2):
            runner.train()
    reply = {"peak_mb": peak_rss_mb() - baseline}          # the peak of training steps only
    for runner in runners.values():
        runner.infer()
    print(json.dumps(reply), flush=True)
    for line in sys.stdin:
        command, *words = line.split()
        if command == "quit":
            break
        runner = runners[words[0]]
        if command == "profile":
            reply = runner.profile(detail=words[1] == "full")
        else:
            work, times = getattr(runner, command), []
            work()                      # untimed: the first step after a pause finds cold caches and idle threads
            for _ in range(int(words[1])):
                start = time.perf_counter()
                work()
                times.append(time.perf_counter() - start)
            reply = {"times": times}
        print(json.dumps(reply, default=float), flush=True)


class Worker:
    """The parent's handle on one side's worker process."""

    def __init__(self, side: str, model_name: str, size: int, batch: int):
        self.side = side
        # ours as the command line runs it; PyTorch (alone, or beside ours as in a notebook) with its
        # threads' waits as the user had them: told to sleep at once, its step took 1.1-1.3x as long
        environ = os.environ if side == "ours" else waits_as_the_user_set()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tinysqueeze", "bench", "--worker", side, "--model", model_name,
             "--image-size", str(size), "--batch-size", str(batch)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
        self.ready = self.read()

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            said = [line for line in self.process.stderr.read()[-2000:].splitlines() if line.strip()]
            raise ValueError(f"the {self.side} benchmark worker stopped: {said[-1] if said else 'no message'}")
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
        self.process.wait(timeout=60)


# A run whose per-round ratios differ by more than this factor was measured on a busy machine.
NOISY_SPREAD = 2.0


def ratio_with_spread(ours: list[float], theirs: list[float]) -> dict:
    """Per-round times of each side (seconds) -> ours as a fraction of their speed: the median of the
    rounds' own ratios (theirs / ours, both measured within seconds of each other, so a busy moment
    lands on both), the lowest and highest of them, and `noisy` when those two differ by more than
    NOISY_SPREAD (the machine was busy for part of the run: re-run it)."""
    per_round = [t / o for o, t in zip(ours, theirs)]
    low, high = min(per_round), max(per_round)
    return {"ratio": statistics.median(per_round), "low": low, "high": high, "noisy": high > NOISY_SPREAD * low}


def alternate(ask, sides, rounds: int, steps: int) -> dict:
    """-> {(side, work): [median seconds of `steps` steps, one per round]}, asking each side in turn,
    after a pause (SETTLE_S), round after round: ours, theirs, ours, theirs, ..."""
    times = {(side, work): [] for side in sides for work in ("train", "infer")}
    for _ in range(rounds):
        for work in ("train", "infer"):
            for side in sides:
                time.sleep(SETTLE_S)
                times[side, work].append(statistics.median(ask(side, f"{work} {side} {steps}")["times"]))
    return times


def compare(model_name: str, size: int, batch: int, rounds: int = 15, steps: int = 1, with_torch: bool = True,
            detail: bool = True) -> dict:
    """One configuration, both sides alternately, each in its own process: -> our figures, PyTorch's
    (or None), the ratios. detail=False leaves the NumPy twins out of the profile (`--quick`)."""
    sides = {"ours": Worker("ours", model_name, size, batch)}
    try:
        if with_torch:
            sides["torch"] = Worker("torch", model_name, size, batch)
        times = alternate(lambda side, command: sides[side].ask(command), list(sides), rounds, steps)
        results = {}
        for side, worker in sides.items():
            step, infer = statistics.median(times[side, "train"]), statistics.median(times[side, "infer"])
            results[side] = {"step_s": step, "train_img_s": batch / step, "infer_s": infer, "infer_img_s": batch / infer,
                             "peak_mb": worker.ready["peak_mb"],
                             **worker.ask(f"profile {side} {'full' if detail else 'brief'}")}
        ours = dict(results["ours"], model=model_name, size=size, batch=batch, rounds=rounds, steps=steps)
        ours["train_gflops"] = 2 * ours["macs"] * 3 * batch / ours["step_s"] / 1e9
        ratios = None
        if with_torch:
            ratios = {work: ratio_with_spread(times["ours", work], times["torch", work]) for work in ("train", "infer")}
        return {"ours": ours, "torch": results.get("torch"), "ratios": ratios}
    finally:
        for worker in sides.values():
            worker.close()


def compare_in_one_process(model_name: str, size: int, batch: int, rounds: int = 15, steps: int = 1) -> dict:
    """Both sides in one Python process, as a notebook comparing them would (`bench --worker both`),
    alternately as in `compare`: -> {"train": ratio_with_spread, "infer": ...}. The process runs with
    the C allocator as it comes (no `keep_freed_memory`, which only the command line sets) and with
    both thread pools, PyTorch's and OpenBLAS's, alive in it."""
    worker = Worker("both", model_name, size, batch)
    try:
        times = alternate(lambda side, command: worker.ask(command), ["ours", "torch"], rounds, steps)
        return {work: ratio_with_spread(times["ours", work], times["torch", work]) for work in ("train", "infer")}
    finally:
        worker.close()


def torch_available() -> bool:
    try:
        import importlib.util
        return importlib.util.find_spec("torch") is not None
    except ValueError:
        return False


# ------------------------------------------------------------------------ the report
def report(ours: dict, torch_result: dict | None, ratios: dict | None, gemm: float, one_process: dict | None = None) -> str:
    lines = []
    head = f"{ours['model']} at {ours['size']}px, batch {ours['batch']}"
    lines.append(head)
    lines.append("-" * len(head))
    lines.append(f"{'':<30} {'tinysqueeze':>12} {'PyTorch':>12} {'ratio':>7}  {'ratio per round':>15}")

    def row(label, key, fmt, work=None, scale=1.0):
        ours_v = ours[key] * scale
        if torch_result:
            theirs = torch_result[key] * scale
            r = ratios[work] if work else {"ratio": theirs / ours_v}
            spread = f"{r['low']:.2f}-{r['high']:.2f}" if work else ""
            lines.append(f"{label:<30} {fmt.format(ours_v):>12} {fmt.format(theirs):>12} {r['ratio']:>6.2f}x  {spread:>15}")
        else:
            lines.append(f"{label:<30} {fmt.format(ours_v):>12} {'-':>12} {'':>7}")
    row("train images/s", "train_img_s", "{:.1f}", "train")
    row("train step (median, ms)", "step_s", "{:.1f}", "train", scale=1000)
    row("inference images/s", "infer_img_s", "{:.1f}", "infer")
    row("peak memory, training (MB)", "peak_mb", "{:.0f}")
    lines.append(f"(times: medians over {ours['rounds']} alternating rounds of {ours['steps']} step(s), each side in "
                 "its own process; ratio: ours as a fraction of PyTorch's speed, the median of the rounds' own "
                 "ratios, with the lowest and highest; for memory, PyTorch's / ours)")
    if one_process:
        lines.append("both in one process, as a notebook compares them: " + ", ".join(
            f"{work} {r['ratio']:.2f}x ({r['low']:.2f}-{r['high']:.2f})" for work, r in one_process.items())
            + " (the C allocator as it comes, without keep_freed_memory, and both thread pools in one process)")
    noisy = [work for r in (ratios, one_process) if r for work, v in r.items() if v["noisy"]]
    if noisy:
        lines.append(f"warning: the rounds of {', '.join(sorted(set(noisy)))} disagree by more than "
                     f"{NOISY_SPREAD:g}x (lowest against highest ratio): the machine was busy for part of the run; "
                     "re-run on a quiet machine before quoting these ratios")
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
        if not name.startswith("matmul"):
            lines.append(f"    of which {name:<11} {1000 * v:7.1f} ms  ({100 * v / total:4.1f}%)")
    gemm_s, gemm_flop = ours["kernels"].get("matmul", 0.0), ours["kernels"].get("matmul_flop", 0.0)
    if gemm_s > 0:
        rate = gemm_flop / gemm_s / 1e9
        lines.append(f"  matrix products (GEMMs, in the conv rows above): {1000 * gemm_s:.1f} ms, "
                     f"{100 * gemm_s / total:.1f}% of the step, at {rate:.1f} GFLOP/s "
                     f"({100 * rate / gemm:.0f}% of the ceiling); everything else {1000 * (total - gemm_s):.1f} ms")
    lines.append(f"  {'loss':<20} {1000 * ours['loss_s']:7.1f} ms;  SGD step {1000 * ours['optim_s']:.1f} ms")
    by_layer = defaultdict(lambda: [0.0, 0.0])
    for key, v in ours["by_layer"].items():
        layer, phase = key.split("|")
        by_layer[layer][phase == "backward"] += v
    lines.append("  per layer (forward + backward, ms): " + ", ".join(
        f"{name} {1000 * sum(v):.1f}" for name, v in sorted(by_layer.items(), key=lambda kv: -sum(kv[1]))[:8]))
    if ours["twins"]:
        lines.append("Numba kernels against their NumPy twins (median ms):")
    for name, (fast, slow) in ours["twins"].items():
        lines.append(f"  {name:<36} numba {1000 * fast:7.2f}  numpy {1000 * slow:7.2f}  ({slow / fast:4.1f}x)")
    lines.append("first call of a kernel in a fresh process (loads the on-disk compile cache, or compiles): "
                 + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in ours["first_call"].items()))
    return "\n".join(lines)


QUICK_CONFIG, QUICK_ROUNDS = ("squeezenet1_1", 64, 64), 7


def run_bench(configs=CONFIGS, rounds: int = 15, steps: int = 1, with_torch: bool | None = None,
              quick: bool = False) -> str:
    """Every configuration: both sides in their own processes (`compare`) and, with PyTorch, both in
    one process (`compare_in_one_process`). quick: the configurations given (the command line gives
    QUICK_CONFIG), no one-process comparison and no NumPy twins."""
    left_out = with_torch is False                      # --no-torch
    with_torch = torch_available() if with_torch is None else with_torch
    gemm, core = gemm_gflops(), openblas_core()
    kernels = f"OpenBLAS {core} kernels" if core else "a BLAS that does not name its kernels"
    out = [f"tinysqueeze bench: {cpu_name()}, {os.cpu_count()} cores, {kernels}, float32 GEMM {gemm:.1f} GFLOP/s; "
           + (f"PyTorch beside it, measured alternately with ours ({rounds} rounds of {steps} step(s))" if with_torch
              else "PyTorch left out (--no-torch)" if left_out
              else "PyTorch not installed (make bench installs it when it can)")]
    note = core and pinned_kernels_note(os.environ.get(PINNED_CORE, "").strip(), core, gemm, free_choice())
    if note:
        out.append(note)
    for model, size, batch in configs:
        gemm = max(gemm, gemm_gflops())             # the ceiling: the best product of the run so far
        result = compare(model, size, batch, rounds, steps, with_torch, detail=not quick)
        one_process = compare_in_one_process(model, size, batch, rounds, steps) if with_torch and not quick else None
        out.append("")
        out.append(report(result["ours"], result["torch"], result["ratios"], gemm, one_process))
    return "\n".join(out)
