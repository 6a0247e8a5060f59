"""Data-parallel training over MPI: ring.py sums a buffer across ranks (ring all-reduce), from first principles."""
