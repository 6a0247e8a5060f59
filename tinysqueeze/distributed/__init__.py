"""Data-parallel training over MPI (lesson 19, docs/distributed.md).

Read in this order: launch.py (was this process started as one of several?), threads.py (each rank's
share of the cores, set before NumPy loads), ring.py (the ring all-reduce, from first principles),
world.py (`World`, `MPIWorld`: the five things ranks say to each other; `GradientSum`, the step's
one all-reduce). Nothing here imports the rest of tinysqueeze, nor MPI until several ranks need it.
"""
