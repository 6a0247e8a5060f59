"""tinysqueeze: SqueezeNet from scratch in NumPy, with every gradient written by hand.

The package's folders are its layers, and imports flow one way, down `LAYERS` (bottom first): a
module may import from its own layer or any below, never from one above. docs/ARCHITECTURE.md is
the map (what each folder holds, and why this order); tests/docs/test_architecture.py holds the code and
the map to this list.
"""
__version__ = "0.1.0"

LAYERS = [
    ("nn", "optim", "distributed"),
    ("formats", "datasets"),
    ("models",),
    ("compress", "evaluation", "course"),
    ("training",),
    ("studies",),
    ("cli", "__main__"),
]
