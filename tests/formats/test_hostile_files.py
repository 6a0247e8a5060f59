"""Hostile weights files (issue 23, sections 2 and 4): every one gives exactly one `error:` line naming the
file and the problem, exit 2 -- never a traceback, never a MemoryError, never more memory than the file
and the model can need.

Every file is built here, byte by byte where it must lie (no PyTorch: a `.pth` is a pickle of calls, its
opcodes written out below; lesson 9), and every command runs in a process of its own whose address
space is capped (RLIMIT_AS, 2 GiB): one Python process imports tinysqueeze once and forks a child per
case, which runs `main(argv)` as `python -m tinysqueeze` would (an uncaught exception prints its
traceback and exits 1). Files that ask for more memory than the cap allows (a 3 GiB deflate bomb, a
40 GB `.npy` header, a zero stride materialising 64 GiB, a `.tsq` of 2^31 sparse weights, a model of 10^7
classes) are refused before anything is allocated; the child's peak resident memory is checked too.

The fuzz test mutates small valid files (an `.npz`, both kinds of `.pth`, a `.tsq`): seeded bit flips and
truncations, loaded in this process (and a few through the capped command): each is a clean ValueError or
loads exactly the original (the legacy `.pth` has no checksum: a flipped value may load, finite).
"""
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

from tinysqueeze.formats.tsq import write_tsq
from tinysqueeze.formats.weights import load_weights, save_weights
from tinysqueeze.models import squeezenet1_1

from ..conftest import tiny_argv

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")
CAP = 2 << 30                      # bytes of address space for each command
PEAK = 1 << 30                     # its resident memory must stay under this

# ------------------------------------------------------------------ running commands, capped
DRIVER = r"""
import json, os, resource, sys, traceback
from tinysqueeze.cli import main
# what the commands import when they start, imported once here rather than in every child
import tinysqueeze.compress, tinysqueeze.evaluation.evaluate, tinysqueeze.evaluation.predict, tinysqueeze.training.train
cases, cap, out = json.loads(sys.argv[1]), int(sys.argv[2]), []
for argv, err_path in cases:
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code or 0)
    _, status, usage = os.wait4(pid, 0)
    out.append([os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024])
print(json.dumps(out))
"""


def run_capped(cases: dict, tmp) -> dict:
    """cases: id -> argv. Runs each as the command line would, in a child process capped at CAP bytes of
    address space -> id -> (exit code, stderr, peak resident bytes). One process imports tinysqueeze and
    forks a child per case, so a case costs its own work, not Python's start."""
    os.makedirs(tmp, exist_ok=True)
    plan = [[list(map(str, argv)), os.path.join(tmp, f"err{k}.txt")] for k, argv in enumerate(cases.values())]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(plan), str(CAP)], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    codes = json.loads(result.stdout.strip().splitlines()[-1])
    outcomes = {}
    for case, (argv, err_path), (code, peak) in zip(cases, plan, codes):
        with open(err_path, errors="replace") as f:
            outcomes[case] = (code, f.read(), peak)
    return outcomes


def assert_refused(outcome, path, *says):
    """Exit 2, exactly one `error:` line naming the file and each of `says`, no traceback, bounded memory."""
    code, err, peak = outcome
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err and "MemoryError" not in err, \
        f"exit {code}, stderr:\n{err[-3000:]}"
    for text in (str(path), *says):        # "a|b": either
        assert any(alternative in errors[0] for alternative in text.split("|")), errors[0]
    assert peak < PEAK, f"peak resident memory {peak / 2**20:.0f} MiB: {errors[0]}"
    return errors[0]


# ------------------------------------------------------------------ pickles written opcode by opcode
class G:
    """A global (module.name) in a pickle: what the restricted unpickler looks up."""

    def __init__(self, module, name):
        self.module, self.name = module, name


class Call:
    """f(*args): REDUCE."""

    def __init__(self, f, *args):
        self.f, self.args = f, args


class PID:
    """A persistent id: BINPERSID of any value."""

    def __init__(self, value):
        self.value = value


class D:
    """A dict of any (key, value) pairs, hashable keys or not."""

    def __init__(self, *pairs):
        self.pairs = pairs


class Build:
    """obj with its fields set from `state` (BUILD: obj.__dict__.update(state), or obj.__setstate__(state))."""

    def __init__(self, obj, state):
        self.obj, self.state = obj, state


def ops(obj) -> bytes:
    if isinstance(obj, Build):
        return ops(obj.obj) + ops(obj.state) + b"b"
    if isinstance(obj, G):
        return b"c" + obj.module.encode() + b"\n" + obj.name.encode() + b"\n"
    if isinstance(obj, Call):
        return ops(obj.f) + ops(tuple(obj.args)) + b"R"
    if isinstance(obj, PID):
        return ops(obj.value) + b"Q"
    if isinstance(obj, tuple):
        return b"(" + b"".join(map(ops, obj)) + b"t"
    if isinstance(obj, list):
        return b"](" + b"".join(map(ops, obj)) + b"e"
    if isinstance(obj, dict):
        obj = D(*obj.items())
    if isinstance(obj, D):
        return b"}(" + b"".join(ops(k) + ops(v) for k, v in obj.pairs) + b"u"
    return pickle.dumps(obj, protocol=3)[2:-1]          # a plain value: int, str, bool, None


def pickled(obj) -> bytes:
    return b"\x80\x02" + ops(obj) + b"."


REBUILD = G("torch._utils", "_rebuild_tensor_v2")
FLOATS = G("torch", "FloatStorage")


def storage(key="0", numel=4, kind=FLOATS):
    return PID(("storage", kind, key, "cpu", numel))


def tensor(offset=0, size=(4,), stride=(1,), store=None):
    return Call(REBUILD, store if store is not None else storage(), offset, size, stride, False, D())


FOUR = np.arange(4, dtype="<f4").tobytes()


def pth(path, obj, storages=None, legacy=False, raw_pickle=None):
    """A PyTorch file of `obj` (pickled by ops) with storages key -> raw bytes (default: '0' -> 4 floats)."""
    storages = {"0": FOUR} if storages is None else storages
    data = raw_pickle if raw_pickle is not None else pickled(obj)
    if legacy:
        head = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
        tail = pickle.dumps(list(storages), protocol=2)
        tail += b"".join(struct.pack("<q", len(raw) // 4) + raw for raw in storages.values())
        path.write_bytes(head + data + tail)
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", data)
            for key, raw in storages.items():
                z.writestr(f"archive/data/{key}", raw)
    return path


# ------------------------------------------------------------------ zip archives that lie
def raw_zip(path, members):
    """A zip archive written by hand: members are (name, stored bytes, method, declared size, crc)."""
    local, central = b"", b""
    for name, data, method, size, crc in members:
        name = name.encode()
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(data), size,
                               len(name), 0, 0, 0, 0, 0, len(local)) + name
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), size, len(name), 0)
        local += name + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path


def deflated_zeros(prefix: bytes, mib: int) -> bytes:
    """A raw deflate stream of `prefix` then `mib` MiB of zeros, in about a thousandth of that (a bomb)."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH)
    first = co.compress(bytes(1 << 20)) + co.flush(zlib.Z_FULL_FLUSH)
    again = co.compress(bytes(1 << 20)) + co.flush(zlib.Z_FULL_FLUSH)   # the same bytes from here on
    return head + first + again * (mib - 1) + co.flush()


def npy_header(shape, dtype="<f4") -> bytes:
    import io
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def replace_member(src, dst, name, data):
    """A copy of the zip `src` at `dst` with member `name`'s bytes replaced (stored)."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members[name] = data
    with zipfile.ZipFile(dst, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)
    return dst


def flip_zip_field(src, dst, field_offset: int, bit: int):
    """A copy of the zip `src` with one bit flipped in a field of every central directory entry
    (offset 10: compression method; 8: flags, bit 0 encrypted)."""
    data = bytearray(open(src, "rb").read())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        data[at + field_offset] ^= 1 << bit
        at = data.find(b"PK\x01\x02", at + 4)
    dst.write_bytes(bytes(data))
    return dst


def tsq_file(path, header: dict, blobs: bytes = b""):
    """A .tsq with any header (its CRC-32 right)."""
    head = json.dumps(header).encode()
    body = b"TSQZ" + struct.pack("<BI", 1, len(head)) + head + blobs
    path.write_bytes(body + struct.pack("<I", zlib.crc32(body)))
    return path


# ------------------------------------------------------------------ the families
def memory_bombs(d, run):
    """id -> (argv, path, says): small files that ask for more memory than the file or the model can need."""
    image, cases = run["image"], {}

    def predict(path, *extra):
        return ["predict", image, "--weights", path, "--model", "squeezenet1_1", *extra]

    # a 3 MB .pth whose storage unpacks to 3 GiB (deflate); PyTorch stores storages uncompressed
    pkl = pickled({"w": tensor(0, (4,), (1,), storage("0", 3 << 28))})
    path = raw_zip(d / "bomb.pth", [("archive/data.pkl", pkl, 0, len(pkl), zlib.crc32(pkl)),
                                    ("archive/data/0", deflated_zeros(b"", 3 << 10), 8, 3 << 30, 0)])
    # (the storage's crc is wrong: nothing may be unpacked before its size is checked, so it never matters)
    cases["pth-deflate-bomb"] = (predict(path), path, "limit")
    big = (1 << 16, 1 << 16, 4)
    for legacy in (False, True):
        path = pth(d / f"stride0-{legacy}.pth", {"w": tensor(0, big, (0, 0, 0))}, legacy=legacy)
        cases[f"pth-zero-stride-{'legacy' if legacy else 'zip'}"] = (predict(path), path, "'w'", "limit")
        path = pth(d / f"many-{legacy}.pth", {f"w{k}": tensor(0, (1 << 14, 1 << 14), (0, 0)) for k in range(40)},
                   legacy=legacy)
        cases[f"pth-many-views-{'legacy' if legacy else 'zip'}"] = (predict(path), path, "limit")
    # a pickle whose bytes say they are 2^40 long (BINBYTES8), 12 bytes in all
    huge = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"abc."
    for legacy in (False, True):
        path = pth(d / f"pickle-1TB-{legacy}.pth", None, legacy=legacy, raw_pickle=huge)
        cases[f"pth-pickle-declares-1TB-{'legacy' if legacy else 'zip'}"] = (predict(path), path, "truncated")
    # an .npy member whose header says 10^10 floats (40 GB), holding 16 bytes
    lying = npy_header((10 ** 10,)) + FOUR
    path = d / "lying.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("w.npy", lying)
    cases["npz-lying-header"] = (predict(path), path, "w.npy")
    path = raw_zip(d / "npz-bomb.npz", [("w.npy", deflated_zeros(npy_header((3 << 28,)), 3 << 10), 8,
                                         len(npy_header((3 << 28,))) + (3 << 30), 0)])
    cases["npz-deflate-bomb"] = (predict(path), path, "limit")
    ckpt = replace_member(run["run"] / "best.npz", d / "ckpt-lying.npz", "model.features.0.weight.npy", lying)
    cases["checkpoint-lying-header-evaluate"] = (["evaluate", "--checkpoint", ckpt], ckpt, "model.features.0.weight")
    cases["checkpoint-lying-header-predict"] = (["predict", image, "--checkpoint", ckpt], ckpt, "model.features.0.weight")
    # weights whose last weight says 10^7 classes but holds nothing: the model must not be built for them
    state = squeezenet1_1(num_classes=3, seed=0).state_dict()
    for shape, key in (((10 ** 7, 0), "empty"), ((10 ** 7, 1, 1, 1), "thin")):
        state["classifier.1.weight"] = np.zeros(shape, np.float32)
        path = save_weights(state, d / f"classes-{key}.npz")
        cases[f"npz-model-of-10^7-classes-{key}"] = (predict(path), path, "classifier.1.weight", "10000000")
    path = tsq_file(d / "many.tsq", {"model": "squeezenet1_1", "bits": 1, "arrays": [
        {"name": f"w{k}", "kind": "sparse", "shape": [1 << 28], "entries": 0, "code_bits": 0, "gap_bits": 0,
         "sizes": [8, 2, 16, 0, 0]} for k in range(8)]}, (struct.pack("<2f", 0, 1) + bytes(18)) * 8)
    cases["tsq-many-sparse-arrays"] = (predict(path), path, "limit")
    path = tsq_file(d / "many-codes.tsq", {"model": "squeezenet1_1", "bits": 1, "arrays": [
        {"name": "w", "kind": "sparse", "shape": [1 << 26], "entries": 1 << 26, "code_bits": 8, "gap_bits": 8,
         "sizes": [8, 2, 16, 1, 1]}]}, struct.pack("<2f", 0, 1) + bytes([1, 1]) + bytes([1] + [0] * 15) + b"\0\0")
    cases["tsq-entries-beyond-its-bits"] = (predict(path), path, "entries")
    return cases


def pth_cases():
    """id -> (object pickled as data.pkl, or raw pickle bytes, says) for wrong types where the reader expects
    a tuple, dict, int or str, deep nesting, and sizes that overflow."""
    deep = b"\x80\x02}" + (ops("k") + b"}") * 100_000 + b"s" * 100_000 + b"."
    return {
        "storage-key-unhashable": ({"w": tensor(store=PID(("storage", FLOATS, ["0"], "cpu", 4)))}, "storage"),
        "persistent-id-an-int": ({"w": tensor(store=PID(5))}, "persistent id"),
        "persistent-id-short": ({"w": tensor(store=PID(("storage",)))}, "persistent id"),
        "persistent-id-empty": ({"w": tensor(store=PID(()))}, "persistent id"),
        "storage-type-a-string": ({"w": tensor(store=PID(("storage", "FloatStorage", "0", "cpu", 4)))}, "storage"),
        "storage-numel-a-string": ({"w": tensor(store=storage("0", "4"))}, "storage"),
        "storage-type-called": ({"w": Call(FLOATS)}, "PyTorch"),
        # the pickle sets the fields of what the reader made (BUILD): a dtype that is not one, and the rest
        "storage-dtype-rebuilt-evil": ({"w": tensor(store=Build(storage(), {"dtype": "evil"}))}, "storage|PyTorch"),
        "storage-numel-rebuilt": ({"w": tensor(store=Build(storage(), {"numel": "4"}))}, "storage|PyTorch"),
        "storage-key-rebuilt": ({"w": tensor(store=Build(storage(), {"key": 5}))}, "storage|PyTorch"),
        "storage-array-rebuilt": ({"w": tensor(store=Build(storage(), {"array": 5}))}, "storage|PyTorch"),
        "storage-slots-rebuilt": ({"w": tensor(store=Build(storage(), (None, {"dtype": "evil"})))}, "storage|PyTorch"),
        "storage-type-rebuilt": ({"w": tensor(store=PID(("storage", Build(FLOATS, {"dtype": "evil"}), "0", "cpu",
                                                          4)))}, "storage|PyTorch"),
        "tensor-rebuilt": ({"w": Build(tensor(), {"args": 5})}, "'w'|PyTorch"),
        "size-not-a-tuple": ({"w": tensor(0, 4, (1,))}, "'w'"),
        "stride-none": ({"w": tensor(0, (4,), None)}, "'w'"),
        "offset-a-list": ({"w": tensor([], (4,), (1,))}, "'w'"),
        "offset-a-float": ({"w": tensor(0.5, (4,), (1,))}, "'w'"),
        "tensor-of-no-storage": ({"w": Call(REBUILD, 5, 0, (4,), (1,), False, D())}, "'w'|storage keys"),
        "rebuild-one-argument": ({"w": Call(REBUILD, 1)}, "'w'|storage keys"),
        "a-tuple-posing-as-a-tensor": ({"w": ("tensor", 1, 2, 3, 4)}, "state_dict|storage keys"),
        "unhashable-state-key": (D(([1], tensor())), "PyTorch"),
        "int-state-key": ({5: tensor()}, "5"),
        "bytes-state-key": (D((b"w", tensor())), "state_dict"),
        "ordered-dict-of-an-int": (Call(G("collections", "OrderedDict"), 5), "PyTorch"),
        "no-weight-key": ({"b": tensor()}, "weight"),
        "a-0-d-weight": ({"weight": tensor(0, (), ())}, "weight"),
        "deep-nesting": (deep, "nest|storage keys"),
        "size-overflows-with-a-zero": ({"w": tensor(0, (1 << 64, 0), (1, 1))}, "'w'"),
        "sizes-overflow-their-product": ({"w": tensor(0, (1 << 40, 1 << 40), (0, 0))}, "'w'"),
        "stride-overflows": ({"w": tensor(0, (2, 2), (1 << 63, 0))}, "'w'"),
        "offset-overflows": ({"w": tensor(1 << 70, (1,), (1,))}, "'w'"),
    }


@pytest.fixture(scope="module")
def hostile(tiny_run, tmp_path_factory):
    """Every hostile file of every family, and the outcome of its command (run once, capped)."""
    d = tmp_path_factory.mktemp("hostile-files")
    image = d / "x.png"
    from PIL import Image
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(image)
    run = {"image": str(image), "run": tiny_run}
    families = {"memory": memory_bombs(d, run), "pth": {}, "zip": {}, "not-a-checkpoint": {}, "tsq": {}}
    for case, (obj, says) in pth_cases().items():
        for legacy in (False, True):
            raw = obj if isinstance(obj, bytes) else None
            path = pth(d / f"{case}-{legacy}.pth", obj, legacy=legacy, raw_pickle=raw)
            families["pth"][f"{case}-{'legacy' if legacy else 'zip'}"] = (
                ["predict", image, "--weights", path, "--model", "squeezenet1_1"], path, says)
    # one flipped bit in a zip entry's compression method (or its flags), in every command that reads weights
    weights = save_weights(squeezenet1_1(num_classes=10, seed=0), d / "ok.npz")
    resumable = shutil.copytree(tiny_run, d / "run")
    for field, bit, what, says in ((10, 0, "method", "compression method"), (8, 0, "encrypted", "encrypted")):
        zpth = flip_zip_field(os.path.join(FIXTURES, "tiny_zip.pth"), d / f"{what}.pth", field, bit)
        npz = flip_zip_field(weights, d / f"{what}.npz", field, bit)
        ckpt = flip_zip_field(tiny_run / "best.npz", d / f"{what}-best.npz", field, bit)
        family = families["zip"]
        family[f"{what}-predict-pth"] = (["predict", image, "--weights", zpth, "--model", "squeezenet1_1"], zpth, says)
        family[f"{what}-predict-npz"] = (["predict", image, "--weights", npz, "--model", "squeezenet1_1"], npz, says)
        family[f"{what}-predict-checkpoint"] = (["predict", image, "--checkpoint", ckpt], ckpt, says)
        family[f"{what}-evaluate"] = (["evaluate", "--checkpoint", ckpt], ckpt, says)
        family[f"{what}-compress"] = (["compress", "--checkpoint", ckpt, "--density", "0.5", "--out",
                                       d / f"{what}.tsq"], ckpt, says)
        if what == "method":
            last = resumable / "last.npz"
            flip_zip_field(tiny_run / "last.npz", last, field, bit)
            family[f"{what}-train-resume"] = (["train", *tiny_argv(resumable, epochs=2), "--resume", "--quiet"],
                                              last, says)
    # weights files given where a training checkpoint is expected: name the file and what to do instead
    legacy = os.path.join(FIXTURES, "tiny_legacy.pth")
    for name, path in (("legacy-pth", legacy), ("zip-pth", os.path.join(FIXTURES, "tiny_zip.pth")),
                       ("npz", weights)):
        families["not-a-checkpoint"][f"evaluate-{name}"] = (["evaluate", "--checkpoint", path], path, "--weights")
    families["not-a-checkpoint"]["predict-legacy-pth"] = (["predict", image, "--checkpoint", legacy], legacy,
                                                         "--weights")
    # .tsq headers of the wrong shape
    ok = {"bits": 1, "arrays": []}
    for case, header in {"deep-json": None, "model-a-list": dict(ok, model=["squeezenet1_1"]),
                         "model-args-a-list": dict(ok, model="squeezenet_meta", model_args=[1]),
                         "arrays-a-dict": dict(ok, model="squeezenet1_1", arrays={})}.items():
        path = d / f"{case}.tsq"
        if header is None:
            head = b"[" * 100_000 + b"]" * 100_000
            body = b"TSQZ" + struct.pack("<BI", 1, len(head)) + head
            path.write_bytes(body + struct.pack("<I", zlib.crc32(body)))
        else:
            tsq_file(path, header)
        families["tsq"][case] = (["predict", image, "--weights", path], path, "header")
    every = {f"{family}/{case}": spec[0] for family, cases in families.items() for case, spec in cases.items()}
    outcomes = run_capped(every, d / "stderr")
    (d / "outcomes.json").write_text(json.dumps(outcomes, indent=1))    # to read after a failure
    return {f"{family}/{case}": (outcomes[f"{family}/{case}"], spec[1:])
            for family, cases in families.items() for case, spec in cases.items()}


def cases_of(family):
    ids = {"memory": ["pth-deflate-bomb", "pth-zero-stride-zip", "pth-zero-stride-legacy", "pth-many-views-zip",
                      "pth-many-views-legacy", "pth-pickle-declares-1TB-zip", "pth-pickle-declares-1TB-legacy",
                      "npz-lying-header", "npz-deflate-bomb",
                      "checkpoint-lying-header-evaluate", "checkpoint-lying-header-predict",
                      "npz-model-of-10^7-classes-empty", "npz-model-of-10^7-classes-thin", "tsq-many-sparse-arrays",
                      "tsq-entries-beyond-its-bits"],
           "pth": [f"{case}-{kind}" for case in pth_cases() for kind in ("zip", "legacy")],
           "zip": [f"{what}-{command}" for what in ("method", "encrypted")
                   for command in ("predict-pth", "predict-npz", "predict-checkpoint", "evaluate", "compress")]
           + ["method-train-resume"],
           "not-a-checkpoint": ["evaluate-legacy-pth", "evaluate-zip-pth", "evaluate-npz", "predict-legacy-pth"],
           "tsq": ["deep-json", "model-a-list", "model-args-a-list", "arrays-a-dict"]}[family]
    return [f"{family}/{case}" for case in ids]


@pytest.mark.parametrize("case", cases_of("memory"))
def test_small_files_that_demand_huge_memory_are_refused_before_allocating(hostile, case):
    outcome, (path, *says) = hostile[case]
    assert_refused(outcome, path, *says)


@pytest.mark.parametrize("case", cases_of("pth"))
def test_a_pth_of_wrong_types_is_one_error_line(hostile, case):
    outcome, (path, *says) = hostile[case]
    assert_refused(outcome, path, *says)


@pytest.mark.parametrize("case", cases_of("zip"))
def test_one_flipped_bit_in_a_zip_entry_is_one_error_line_in_every_command(hostile, case):
    outcome, (path, *says) = hostile[case]
    assert_refused(outcome, path, *says)


@pytest.mark.parametrize("case", cases_of("not-a-checkpoint"))
def test_weights_given_as_a_checkpoint_say_what_to_do_instead(hostile, case):
    outcome, (path, *says) = hostile[case]
    line = assert_refused(outcome, path, *says)
    assert "allow_pickle" not in line and "unsafe" not in line, line


@pytest.mark.parametrize("case", cases_of("tsq"))
def test_a_tsq_header_of_the_wrong_shape_is_one_error_line(hostile, case):
    outcome, (path, *says) = hostile[case]
    assert_refused(outcome, path, *says)


def test_the_hostile_pth_files_are_refused_in_process_too(hostile):
    """The library, called directly (as lesson 9 does), refuses the same files with a ValueError."""
    from tinysqueeze.training.loading import load_model
    for case, (_, (path, *_says)) in hostile.items():
        if case.startswith("pth/"):
            with pytest.raises(ValueError, match=re.escape(str(path))):
                load_model(path, "squeezenet1_1")


# ------------------------------------------------------------------ fuzzing
def small_files(d):
    rng = np.random.default_rng(0)
    state = {"features.0.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
             "features.0.bias": rng.standard_normal(4).astype(np.float32),
             "classifier.1.weight": rng.standard_normal((3, 4, 1, 1)).astype(np.float32)}
    npz = save_weights(state, d / "small.npz")
    codes = rng.integers(0, 4, (6, 5, 3, 3)).astype(np.uint8) * (rng.random((6, 5, 3, 3)) < 0.4)
    write_tsq(d / "small.tsq", {"model": "squeezenet1_1", "bits": 2, "density": 0.4},
              {"w": (np.array([0, -1.5, 0.25, 2], np.float32), codes)}, {"b": rng.standard_normal(6)})
    return {"npz": npz, "zip-pth": os.path.join(FIXTURES, "tiny_zip.pth"),
            "legacy-pth": os.path.join(FIXTURES, "tiny_legacy.pth"), "tsq": d / "small.tsq"}


def mutations(data: bytes, rng, n_flips: int, n_cuts: int, crc_fixed: bool = False, start: int = 0):
    """Seeded single bit flips (from byte `start` on) and truncations of `data` (for a .tsq, flips with
    the CRC made right too)."""
    for _ in range(n_flips):
        k = int(rng.integers(start, len(data)))
        out = bytearray(data)
        out[k] ^= 1 << int(rng.integers(8))
        if crc_fixed and k < len(data) - 4:
            out[-4:] = struct.pack("<I", zlib.crc32(bytes(out[:-4])))
        yield f"flip {k}{' crc fixed' if crc_fixed else ''}", bytes(out)
    for _ in range(n_cuts):
        k = int(rng.integers(len(data)))
        yield f"cut at {k}", data[:k]


def same(a, b) -> bool:
    return list(a) == list(b) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def test_fuzzed_weights_files_are_a_clean_error_or_the_original(tmp_path):
    rng = np.random.default_rng(23)
    files, outcomes = small_files(tmp_path), {"refused": 0, "same": 0, "changed (no checksum)": 0}
    tracemalloc.start()
    try:
        for kind, path in files.items():
            data, original = open(path, "rb").read(), load_weights(path)
            plans = [(100, 40, False)] + ([(100, 0, True)] if kind == "tsq" else [])
            for n_flips, n_cuts, crc_fixed in plans:
                for what, mutated in mutations(data, rng, n_flips, n_cuts, crc_fixed):
                    target = tmp_path / f"m-{kind}"
                    target.write_bytes(mutated)
                    tracemalloc.reset_peak()
                    try:
                        state = load_weights(target)
                    except ValueError:
                        outcomes["refused"] += 1
                        continue
                    finally:
                        assert tracemalloc.get_traced_memory()[1] < 64 << 20, f"{kind} {what}: memory"
                    if same(state, original):
                        outcomes["same"] += 1
                    else:                       # loads, but not the original: only where nothing can tell
                        assert kind == "legacy-pth" or crc_fixed, f"{kind} {what}: loaded something else"
                        outcomes["changed (no checksum)"] += 1
    finally:
        tracemalloc.stop()
    assert sum(outcomes.values()) == 4 * 140 + 100 and outcomes["refused"] > 450, outcomes


def test_a_fuzzed_checkpoint_is_a_clean_error_or_the_original(tiny_run, tmp_path):
    from tinysqueeze.formats.checkpoint import load_checkpoint
    path = tiny_run / "best.npz"
    data, (model, optim, meta) = open(path, "rb").read(), load_checkpoint(path)
    rng, refused, directory = np.random.default_rng(7), 0, data.find(b"PK\x01\x02")
    every = [*mutations(data, rng, 40, 20), *mutations(data, rng, 60, 0, start=directory)]  # the zip's own fields too
    for what, mutated in every:
        target = tmp_path / "m.npz"
        target.write_bytes(mutated)
        try:
            got = load_checkpoint(target)
        except ValueError:
            refused += 1
            continue
        assert same(got[0], model) and same(got[1], optim) and got[2] == meta, what
    assert refused > 60


def test_fuzzed_files_through_the_capped_command(tmp_path):
    rng = np.random.default_rng(1)
    image = tmp_path / "x.png"
    from PIL import Image
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(image)
    cases = {}
    for kind, path in small_files(tmp_path).items():
        data = open(path, "rb").read()
        directory = max(data.find(b"PK\x01\x02"), 0)       # a zip's central directory: its entries' fields
        for k, (what, mutated) in enumerate(mutations(data, rng, 3, 1, kind == "tsq", directory)):
            target = tmp_path / f"{kind}-{k}"
            target.write_bytes(mutated)
            cases[f"{kind} {what}"] = ["predict", image, "--weights", target, "--model", "squeezenet1_1"]
    for case, (code, err, peak) in run_capped(cases, tmp_path / "stderr").items():
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert "Traceback" not in err and code == 2 and len(errors) == 1, f"{case}: exit {code}\n{err[-2000:]}"
        assert peak < PEAK, case


def random_value(rng, depth=0):
    """A seeded value of any kind a pickle can hold where the reader expects a field of a persistent id
    or a rebuild argument: numbers at the edges, text, bytes, None, containers, globals, BUILDs."""
    kinds = ["int", "big", "negative", "float", "bool", "none", "str", "bytes", "global", "storage-type"]
    kinds += ["tuple", "list", "dict", "build"] if depth < 2 else []
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind in ("tuple", "list"):
        items = [random_value(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return D(*[(random_value(rng, 2), random_value(rng, depth + 1)) for _ in range(int(rng.integers(0, 3)))])
    if kind == "build":
        field = ["dtype", "numel", "key", "args", "array"][int(rng.integers(5))]
        return Build(random_value(rng, depth + 1), D((field, random_value(rng, 2))))
    return {"int": int(rng.integers(0, 8)), "big": 1 << int(rng.integers(31, 80)), "negative": -int(rng.integers(1, 9)),
            "float": 0.5, "bool": True, "none": None, "str": ["0", "cpu", "storage", "evil"][int(rng.integers(4))],
            "bytes": b"storage", "global": [REBUILD, G("collections", "OrderedDict")][int(rng.integers(2))],
            "storage-type": [FLOATS, G("torch", "LongStorage")][int(rng.integers(2))]}[kind]


def test_fuzzed_persistent_ids_and_rebuild_arguments_are_a_clean_error(tmp_path, capsys):
    """Seeded persistent ids and rebuild calls of random shapes (each field any kind, BUILDs setting the
    fields of what the reader made), in zip and legacy files: every one loads or is a ValueError, never
    another exception (the issue's `'str' object has no attribute 'itemsize'`)."""
    rng = np.random.default_rng(32)
    counts = {"refused": 0, "loaded": 0}
    for k in range(600):
        fields = [random_value(rng) for _ in range(int(rng.integers(0, 7)))]
        where = k % 3
        if where == 0:                                   # the persistent id's fields
            obj = {"w": tensor(store=PID(("storage", *fields[:5])))}
        elif where == 1:                                 # a real storage, the rebuild's other arguments
            obj = {"w": Call(REBUILD, storage(), *fields)}
        else:                                            # a real storage with its fields set by BUILD
            obj = {"w": tensor(store=Build(storage(), D(*[(["dtype", "numel", "key", "array"][i % 4], v)
                                                          for i, v in enumerate(fields)])))}
        path = pth(tmp_path / f"f{k % 2}.pth", obj, legacy=bool(k % 2))
        try:
            load_weights(path)
            counts["loaded"] += 1
        except ValueError:
            counts["refused"] += 1
    with capsys.disabled():
        print(f"\n  fuzzed persistent ids and rebuild arguments: {sum(counts.values())} tried, {counts}, no traceback")
    assert sum(counts.values()) == 600 and counts["refused"] > 500
