"""neuralsight: neural-network signal and image processing you can run, measure and see."""

__version__ = "0.1.0"
