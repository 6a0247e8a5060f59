"""The fast path: what makes tinysqueeze fast, kept beside the layers a learner reads, not inside them.

Nothing here changes what a layer computes, only how fast. Read nn/ first; come here with lesson 14.

    numba_kernels.py   the Numba twins of nn/kernels.py (and the thread policy)
    cnhw_kernels.py    im2col and col2im with the batch inside, (C, N, H, W), and a convolution's bias
                       and ReLU in one pass: NumPy and Numba twins
    layers.py          Conv2dCNHW, Conv2dReLUCNHW (with its ReLU fused in), ConcatCNHW, CNHWSequential
                       (what SqueezeNet's features run),
                       Conv2dSmallMaps (conv10's)
    memory.py          keep_freed_memory: a step reuses the memory the last one freed
    blas_threads.py    training's BLAS threads: one for small batches (a shared machine), all cores else

nn/backend.py chooses which kernels every layer runs, these or the readable ones. (This file imports
nothing, so that backend.py can load the kernels here without the layers, which need backend.py.)
"""
