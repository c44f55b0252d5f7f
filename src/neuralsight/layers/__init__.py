"""Building blocks: signal convolution, classic kernels, ConvBlock, pooling and rank filters."""
