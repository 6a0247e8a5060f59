"""Many runs at once: design-space sweeps and side-by-side comparisons (sweep.py), the mean and
spread of seeds (stats.py); speed and memory against PyTorch (bench.py, with torch_reference.py,
PyTorch's SqueezeNet for the benchmark and the parity tests)."""
