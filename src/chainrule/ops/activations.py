"""Activations beyond relu, sigmoid and tanh: gelu, leaky_relu, and the error function gelu
is made of.

Each is one gate with its rule beside it, so a drawing shows ``gelu`` (not the five ops of its
formula) and flat code prints the formula on one line.
"""
from __future__ import annotations

import math

import numpy as np

from .registry import primitive

# The error function. NumPy has none; SciPy's is fast and exact, and is used when it is
# installed. Without it, math.erf element by element: exact to the last digit, but about 50x
# slower than np.tanh (0.2 s for 10^6 elements here), so ``gelu(x, approximate="tanh")`` is the
# fast choice on a NumPy-only install. The text is the helper compiled code carries.
ERF_SOURCE = '''\
_scipy_erf = None     # SciPy's erf, looked up on first use; False when it is not installed


def _erf(x):
    global _scipy_erf
    if _scipy_erf is None:
        try:
            from scipy.special import erf as _scipy_erf
        except ImportError:
            _scipy_erf = False
    if _scipy_erf is not False:
        return _scipy_erf(x).astype(x.dtype, copy=False)
    import math
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=x.dtype)
'''
_namespace: dict = {"np": np}
exec(compile(ERF_SOURCE, "<chainrule kernels>", "exec"), _namespace)
erf_kernel = _namespace["_erf"]

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_HALF = math.sqrt(0.5)
_SQRT_TWO_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_TWO_PI = 1.0 / math.sqrt(2.0 * math.pi)


def _erf(x: np.ndarray) -> np.ndarray:
    return erf_kernel(np.asarray(x))


# d erf(x) = 2/sqrt(pi) exp(-x^2) dx
erf = primitive("erf", _erf, (lambda F, g, out, x: g * (F.exp(-(x * x)) * _TWO_OVER_SQRT_PI),),
                "_erf({0})", "erf", helper=ERF_SOURCE)


# -- gelu --------------------------------------------------------------------------------------
def _gelu(x: np.ndarray, *, approximate: str = "none") -> np.ndarray:
    # the formulas PyTorch computes, in the same order, so float64 results agree to rounding
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * _SQRT_TWO_OVER_PI
        return x * 0.5 * (1 + np.tanh(inner))
    return x * 0.5 * (1 + _erf(x * _SQRT_HALF))


def _gelu_vjp(F, g, out, x, *, approximate="none"):
    if approximate == "tanh":
        # u = k (x + c x^3), gelu = x (1 + tanh u) / 2:
        # d gelu = (1 + tanh u) / 2 + x (1 - tanh^2 u) k (1 + 3 c x^2) / 2
        x2 = x * x
        t = F.tanh((x + x2 * x * 0.044715) * _SQRT_TWO_OVER_PI)
        du = (x2 * (3 * 0.044715) + 1) * _SQRT_TWO_OVER_PI
        return g * ((t + 1) * 0.5 + x * (1 - t * t) * du * 0.5)
    # gelu = x Phi(x): d gelu = Phi(x) + x phi(x), phi the standard normal density
    cdf = (F.erf(x * _SQRT_HALF) + 1) * 0.5
    pdf = F.exp(x * x * -0.5) * _INV_SQRT_TWO_PI
    return g * (cdf + x * pdf)


def _gelu_code(a, p, node) -> str:
    x = a[0]
    if p.get("approximate", "none") == "tanh":
        return (f"{x} * 0.5 * (1 + np.tanh(({x} + {x} * {x} * {x} * 0.044715)"
                f" * {_SQRT_TWO_OVER_PI!r}))")
    return f"{x} * 0.5 * (1 + _erf({x} * {_SQRT_HALF!r}))"


def _gelu_expand(x, *, approximate="none"):
    if approximate == "tanh":
        from .elementwise import tanh

        return x * 0.5 * (1 + tanh((x + x * x * x * 0.044715) * _SQRT_TWO_OVER_PI))
    return x * 0.5 * (1 + erf(x * _SQRT_HALF))


# One gate with its own rule: composed, it would be five gates in every drawing and flat line
gelu_p = primitive("gelu", _gelu, (_gelu_vjp,), _gelu_code, "gelu", helper=ERF_SOURCE,
                   expand=_gelu_expand)


def gelu(x, approximate: str = "none"):
    """Gaussian error linear unit ``x * Phi(x)``, as ``torch.nn.functional.gelu``.

    ``approximate="tanh"`` uses ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    >>> import chainrule as cr
    >>> cr.gelu(cr.tensor([-1.0, 0.0, 1.0], dtype="float64")).numpy().round(4).tolist()
    [-0.1587, 0.0, 0.8413]
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return gelu_p(x, approximate=approximate)


# -- leaky relu --------------------------------------------------------------------------------
def _leaky(x: np.ndarray, *, negative_slope: float = 0.01) -> np.ndarray:
    return np.where(x > 0, x, x * negative_slope)


# d leaky_relu = dx where x > 0, slope dx elsewhere (at 0 too, as PyTorch). A gate of its own:
# maximum(x, slope x) would split the gradient at the tie x = 0 and fail for slopes above 1
leaky_relu_p = primitive(
    "leaky_relu", _leaky,
    (lambda F, g, out, x, *, negative_slope=0.01: F.where(x > 0, g, g * negative_slope),),
    "np.where({0} > 0, {0}, {0} * {negative_slope})", "leaky_relu")


def leaky_relu(x, negative_slope: float = 0.01):
    """``x`` where positive, ``negative_slope * x`` elsewhere, as PyTorch.

    >>> import chainrule as cr
    >>> cr.leaky_relu(cr.tensor([-2.0, 3.0]), 0.1).numpy().tolist()
    [-0.20000000298023224, 3.0]
    """
    return leaky_relu_p(x, negative_slope=float(negative_slope))
