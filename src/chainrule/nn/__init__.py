"""Neural-network building blocks: ``Module``, layers and loss modules, with PyTorch's names,
parameter shapes and default initialisation."""
from . import functional, init, utils
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Tanh
from .containers import ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .embedding import Embedding
from .layers import Flatten, Identity, Linear
from .losses import BCELoss, CrossEntropyLoss, HingeLoss, MSELoss
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from .pooling import AvgPool2d, MaxPool2d

__all__ = [
    "GELU",
    "AvgPool2d",
    "BCELoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Flatten",
    "GroupNorm",
    "HingeLoss",
    "Identity",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ModuleList",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "functional",
    "init",
    "utils",
]
