"""Neural-network building blocks: ``Module``, layers and loss modules."""
from .module import Module
from . import functional
from .layers import Linear, Sequential, ReLU, Sigmoid, Tanh, Dropout
from .losses import CrossEntropyLoss, HingeLoss, MSELoss, BCELoss

__all__ = [
    "Module", "Linear", "Sequential", "ReLU", "Sigmoid", "Tanh", "Dropout",
    "CrossEntropyLoss", "HingeLoss", "MSELoss", "BCELoss",
]
