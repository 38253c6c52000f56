"""tunelab: train, evaluate and tune PyTorch models, honestly."""

__version__ = "0.1.0"
