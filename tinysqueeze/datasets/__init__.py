"""Datasets: the built-in `synthetic` set, image folders (Imagenette, Tiny ImageNet, any ImageFolder),
downsampled ImageNet; a decode-once uint8 cache; a background-thread loader with augmentation."""
from .dataset import MAX_CLASSES, ArrayDataset, channel_stats, load_split, stored_size
from .loader import DataLoader
from .synthetic import CLASSES as SYNTHETIC_CLASSES
from .synthetic import SIZES as SYNTHETIC_SIZES
from .synthetic import make_synthetic
from .transforms import MAX_IMAGE_SIZE

__all__ = ["ArrayDataset", "DataLoader", "load_split", "channel_stats", "stored_size", "make_synthetic",
           "SYNTHETIC_CLASSES", "SYNTHETIC_SIZES",
           "MAX_CLASSES", "MAX_IMAGE_SIZE"]
