"""Every file format tinysqueeze reads or writes, below everything that uses them (lessons 9, 13, 17).

- `weights.py`: weights in and out: our `.npz`, PyTorch `.pth` read without PyTorch (safely), and
  any of the others recognised by content (`load_weights`);
- `checkpoint.py`: a training checkpoint (`.npz` with weights, optimizer state and a JSON `meta`);
- `tsq.py` and `huffman.py`: the compressed network file, Huffman-coded.
"""
from .checkpoint import load_checkpoint, save_checkpoint
from .tsq import read_tsq, write_tsq
from .weights import load_weights, save_weights

__all__ = ["load_weights", "save_weights", "load_checkpoint", "save_checkpoint", "read_tsq", "write_tsq"]
