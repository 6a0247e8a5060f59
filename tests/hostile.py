"""Helpers of the tests that attack commands with hostile files (not a test file): run a command and
expect one `error:` line; a small image; an .npz with one entry rewritten."""
import json
import warnings

import numpy as np
from PIL import Image

from tinysqueeze.cli import main


def refused(capsys, argv, *says) -> str:
    """Runs the command: exit 2, exactly one `error:` line on stderr, containing each of `says`; no
    traceback, nothing but the error from NumPy (a ComplexWarning or RuntimeWarning is a failure)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        warnings.simplefilter("error", RuntimeWarning)
        code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err[-2000:]
    for text in says:
        assert text in errors[0], errors[0]
    return errors[0]


def an_image(tmp_path, name="x.png"):
    path = tmp_path / name
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
    return str(path)


def rewrite_npz(src, dst, arrays=None, meta=None):
    """A copy of the .npz `src` at `dst` with some arrays replaced (name -> function of the array)
    and its JSON meta changed (key -> new value, or a function of the meta)."""
    with np.load(src) as data:
        out = {k: data[k] for k in data.files}
    for name, change in (arrays or {}).items():
        out[name] = change(out[name].copy())
    if meta is not None:
        doc = json.loads(bytes(out["meta"]).decode())
        doc = meta(doc) if callable(meta) else dict(doc, **meta)
        out["meta"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, **out)
    return str(dst)
