"""Model compression as in Deep Compression (Han et al.) and SqueezeNet's section 4: low-rank (SVD)
factorisation, magnitude pruning, weight sharing by k-means, fine-tuning, and `deep_compress`, the
pipeline that chains them (the `.tsq` file and Huffman coding are file formats: tinysqueeze/formats/)."""
from .deep_compress import Compressed, Stage, deep_compress, save_compressed
from .prune import gradient_masker, magnitude_mask, prune
from .quantize import SharedWeights, SharedWeightsOptimizer, centroid_gradient, kmeans_1d, quantize_weight
from .sizes import format_sizes
from .svd import low_rank

__all__ = ["prune", "magnitude_mask", "gradient_masker", "kmeans_1d", "quantize_weight", "centroid_gradient",
           "SharedWeights", "SharedWeightsOptimizer", "low_rank", "deep_compress", "save_compressed", "format_sizes", "Compressed", "Stage"]
