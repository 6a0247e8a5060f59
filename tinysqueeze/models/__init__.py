"""Networks built from tinysqueeze.nn: the Fire module, SqueezeNet v1.0 / v1.1 written out as in the
paper's Table 1 (squeezenet.py; its features run FireCNHW, the Fire module with the batch
inside, fast_fire.py), any point of the paper's design space (design_space.py), and AlexNet
for comparison. `get_model(name)` builds one by name."""
from .alexnet import AlexNet, alexnet
from .design_space import fire_sizes_from_metaparameters, squeezenet_from_metaparameters
from .fast_fire import FireCNHW
from .fire import Fire
from .registry import MODELS, get_model, model_names
from .squeezenet import SqueezeNet, squeezenet1_0, squeezenet1_1

__all__ = ["Fire", "FireCNHW", "SqueezeNet", "AlexNet", "squeezenet1_0", "squeezenet1_1", "alexnet",
           "squeezenet_from_metaparameters", "fire_sizes_from_metaparameters", "MODELS", "get_model",
           "model_names"]
