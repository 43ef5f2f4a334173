"""Data: a resumable mini-batch loader, small built-in datasets, and an IDX (MNIST) reader."""
from .loader import DataLoader
from .datasets import (Dataset, xor, spiral, moons, circles, digits, load_dataset,
                       DATASETS, TOY_DATASETS)
from .idx import read_idx, load_mnist

__all__ = ["DataLoader", "Dataset", "xor", "spiral", "moons", "circles", "digits",
           "load_dataset", "DATASETS", "TOY_DATASETS", "read_idx", "load_mnist"]
