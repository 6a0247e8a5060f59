"""tinysqueeze: SqueezeNet from scratch in NumPy, with every gradient written by hand.

Layers live in `tinysqueeze.nn`; imports flow one way: nn <- models <- datasets, optim, train,
compress, sweep <- cli.
"""
__version__ = "0.1.0"
