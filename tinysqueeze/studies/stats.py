"""The mean and spread of results over seeds: how every table of tinysqueeze reports a result that
depends on luck (sweeps, the seed table, runs side by side)."""
from __future__ import annotations

import numpy as np


def mean_and_spread(values) -> tuple[float, float]:
    """-> (mean, sample standard deviation) of `values` (one per seed); the spread of one value is 0."""
    values = np.asarray(list(values), dtype=np.float64)
    if values.size == 0:
        raise ValueError("mean_and_spread needs at least one value")
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def format_mean_spread(values, unit: str = "%") -> str:
    """'68.0 ± 1.8%': mean ± sample standard deviation, one decimal."""
    mean, spread = mean_and_spread(values)
    return f"{mean:.1f} ± {spread:.1f}{unit}"


def labelled_groups(arguments: list[str]) -> list[tuple[str, list[str]]]:
    """["LABEL=a,b", ...] -> [("LABEL", ["a", "b"]), ...]: the experiment scripts' way of naming groups
    of runs. A label may hold "=", a path does not, so the split is at the last one."""
    groups = []
    for argument in arguments:
        if "=" not in argument:
            raise ValueError(f"expected LABEL=path[,path...], got {argument!r}")
        label, paths = argument.rsplit("=", 1)
        groups.append((label, [p for p in paths.split(",") if p]))
    return groups
