"""Building blocks shared by the models: N-dimensional conv/norm/activation blocks."""
