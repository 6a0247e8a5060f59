"""tinysqueeze: SqueezeNet from scratch in NumPy, with every gradient written by hand.

Imports flow one way, down these layers (tests/test_architecture.py holds the code to it; a module
may import from its own layer or any below, never from one above):

    cli                                           the command line
    sweep, bench, torch_reference                 many runs; speed against PyTorch
    train, diagnose                               the training loop; its first steps, measured
    runs                                          a run's folder, metadata, model and data
    compress, gradcheck, evaluate, plots, pictures, predict
    models                                        Fire, SqueezeNet, AlexNet
    formats, datasets                             files: weights, checkpoints, .tsq; images
    nn, optim, transforms                         layers with forward and backward; optimizers

docs/ARCHITECTURE.md draws it, with the path of one image from file to prediction.
"""
__version__ = "0.1.0"

LAYERS = [
    ("nn", "optim", "transforms"),
    ("formats", "datasets"),
    ("models",),
    ("compress", "gradcheck", "evaluate", "plots", "pictures", "predict"),
    ("runs",),
    ("train", "diagnose"),
    ("sweep", "bench", "torch_reference"),
    ("cli", "__main__"),
]
