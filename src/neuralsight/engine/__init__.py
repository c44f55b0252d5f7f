"""The one training engine: device and precision, the loop, checkpoints, distributed launch."""
