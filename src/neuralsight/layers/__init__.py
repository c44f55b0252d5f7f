"""Building blocks: signal convolution and classic kernels (conv.py), pooling and rank filters (pool.py),
N-dimensional conv/norm/activation blocks (blocks.py), recurrent cells (recurrent.py)."""
