"""Neural-network building blocks: ``Module``, layers and loss modules, with PyTorch's names,
parameter shapes and default initialisation."""
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Tanh
from .containers import ModuleList, Sequential
from .dropout import Dropout
from .layers import Flatten, Identity, Linear
from .losses import BCELoss, CrossEntropyLoss, HingeLoss, MSELoss
from .module import Module
from . import functional

__all__ = [
    "GELU",
    "BCELoss",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "HingeLoss",
    "Identity",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "Module",
    "ModuleList",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
]
