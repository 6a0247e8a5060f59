"""Model compression as in Deep Compression (Han et al.) and SqueezeNet's section 4: low-rank (SVD)
factorisation, magnitude pruning, weight sharing by k-means, Huffman coding, and the `.tsq` file."""
from .huffman import canonical_codes, code_lengths, decode, encode
from .pipeline import compress_weights, format_sizes, save_compressed
from .prune import MaskedOptimizer, magnitude_mask, prune
from .quantize import SharedWeights, centroid_gradient, kmeans_1d, quantize_weight
from .svd import low_rank
from .tsq import read_tsq, write_tsq

__all__ = ["code_lengths", "canonical_codes", "encode", "decode", "prune", "magnitude_mask", "MaskedOptimizer",
           "kmeans_1d", "quantize_weight", "centroid_gradient", "SharedWeights", "low_rank", "read_tsq",
           "write_tsq", "compress_weights", "save_compressed", "format_sizes"]
