"""chainrule: automatic differentiation on NumPy you can read, see and compile to flat code.

>>> import chainrule as cr
>>> x = cr.Variable(3.0)
>>> y = (x - 1.0) ** 2
>>> y.backward()
>>> float(x.grad.item())
4.0
"""
from ._config import default_dtype, set_default_dtype, no_grad, enable_grad, is_grad_enabled, detect_anomaly
from .errors import ChainruleError, ShapeError, GraphError, GradcheckError
from .core.tensor import Tensor, tensor, Variable, placeholder
from .ops import (
    exp, log, sqrt, tanh, sigmoid, relu, abs, sum, mean, max, min, maximum, minimum, matmul,
    reshape, transpose, concatenate, stack, where, clip, softmax, log_softmax,
    mse_loss, binary_cross_entropy, cross_entropy, hinge_loss,
)
from .ops import (  # PyTorch habits: creation, math, statistics, axes, indexing
    zeros, ones, full, arange, linspace, eye, rand, randn, zeros_like, ones_like,
    sin, cos, log1p, expm1, sign, argmax, argmin, var, std, logsumexp, norm, einsum,
    squeeze, unsqueeze, expand_dims, flatten, swapaxes, pad, gather, take_along_axis, cat,
    gelu, leaky_relu,
)
from .ops.conv import conv2d
from .ops.pooling import avg_pool2d, max_pool2d
from .ops.normalization import batch_norm, group_norm, layer_norm
from .ops.dropout import dropout
from .ops.embedding import embedding
from .autodiff import grad
from .function import Function
from .gradcheck import gradcheck, numerical_grad
from .graph.compile import function
from .viz import draw, explain
from ._random import manual_seed
from .io import save, load
from . import nn, optim, data, distributed
from . import onnx

__version__ = "0.1.0"
