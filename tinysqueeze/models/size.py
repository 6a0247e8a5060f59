"""How big a model is, in the one unit tinysqueeze uses: a megabyte (MB) is 10^6 bytes, as in the
paper's "240 MB" AlexNet and its "<0.5 MB" compressed SqueezeNet. (A MiB, 2^20 bytes, is 4.9% more.)"""
from __future__ import annotations

BYTES_PER_MB = 10**6
ALEXNET_PARAMETERS = 61_100_840        # torchvision's AlexNet at 1000 classes: the paper's baseline


def megabytes(num_bytes: int) -> float:
    return num_bytes / BYTES_PER_MB


def fp32_megabytes(parameters: int) -> float:
    """The size of `parameters` 32-bit floats in MB (4 bytes each)."""
    return megabytes(4 * parameters)
