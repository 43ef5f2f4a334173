"""``cr.nn.functional``: every op and loss under ``torch.nn.functional``'s names.

It defines nothing twice: each name is the registry-backed function of ``chainrule`` itself
(``conv2d`` is ``cr.conv2d``), plus ``linear`` with PyTorch's weight layout (out, in).

>>> import chainrule as cr, numpy as np
>>> import chainrule.nn.functional as F
>>> F.relu(cr.tensor([-1.0, 2.0])).numpy().tolist()
[0.0, 2.0]
"""
from __future__ import annotations

import chainrule as _cr

from ..core.tensor import Tensor
from ..errors import ShapeError
from ..ops import linalg as _linalg
from ..ops import shape as _sh
from ..ops.conv import affine as _affine
from ..ops.conv import conv2d
from ..ops.dropout import dropout
from ..ops.embedding import embedding
from ..ops.normalization import batch_norm, batch_norm_running_stats, group_norm, layer_norm
from ..ops.pooling import avg_pool2d, max_pool2d
from ..ops.registry import lift as _lift

# the everyday ops and losses, as chainrule defines them
relu, sigmoid, tanh = _cr.relu, _cr.sigmoid, _cr.tanh
softmax, log_softmax = _cr.softmax, _cr.log_softmax
mse_loss, binary_cross_entropy = _cr.mse_loss, _cr.binary_cross_entropy
cross_entropy, hinge_loss = _cr.cross_entropy, _cr.hinge_loss

# ops written beside these (activations, shape ops); re-exported when present
_LATER = ("flatten", "pad", "gelu", "leaky_relu", "logsumexp", "one_hot", "silu", "elu",
          "softplus", "nll_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "normalize")
for _name in _LATER:
    if hasattr(_cr, _name):
        globals()[_name] = getattr(_cr, _name)


def __getattr__(name: str):
    # a name chainrule gained after this module was imported (import order)
    if name in _LATER and hasattr(_cr, name):
        return getattr(_cr, name)
    raise AttributeError(f"module 'chainrule.nn.functional' has no attribute {name!r}")


def linear(x, weight, bias=None) -> Tensor:
    """``x @ weight.T + bias``, with ``weight`` of shape (out_features, in_features).

    >>> import chainrule as cr, numpy as np
    >>> import chainrule.nn.functional as F
    >>> F.linear(cr.tensor([[1.0, 2.0]]), cr.tensor([[1.0, 1.0], [0.0, 1.0]]), cr.tensor([0.5, 0.0])).numpy().tolist()
    [[3.5, 2.0]]
    """
    x = x if isinstance(x, Tensor) else _lift(x, None)
    weight = weight if isinstance(weight, Tensor) else _lift(weight, None)
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: x of shape {x.shape} and weight of shape {weight.shape} "
                         f"(out_features, in_features) do not fit")
    wt = _sh.transpose(weight, axes=(1, 0))
    if bias is not None and x.ndim == 2:     # one gate: the bias gradient as a matvec
        bias = bias if isinstance(bias, Tensor) else _lift(bias, None)
        return _affine(x, wt, bias)
    out = _linalg.matmul(x, wt)
    return out if bias is None else out + bias


__all__ = ["avg_pool2d", "batch_norm", "batch_norm_running_stats", "binary_cross_entropy",
           "conv2d", "cross_entropy", "dropout", "embedding", "group_norm", "hinge_loss",
           "layer_norm", "linear", "log_softmax", "max_pool2d", "mse_loss", "relu", "sigmoid",
           "softmax", "tanh"] + [n for n in _LATER if n in globals()]
