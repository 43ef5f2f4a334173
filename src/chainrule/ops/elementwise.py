"""Elementwise primitives. Each is one forward rule, one backward rule and one line of code.

Backward rules may assume the gradient has the result's shape; the engine reduces broadcast
gradients back to each operand's shape in one place (``sum_to`` in autodiff).
"""
from __future__ import annotations

import numpy as np

from .registry import primitive

# A backward rule is either a tuple of one rule per input (each returns that input's gradient,
# and runs only if the input needs one), or one function returning a tuple (for rules whose
# inputs share work, like max's tie mask).

# -- binary arithmetic -------------------------------------------------------------------------
# d(x + y) = dx + dy: the add gate distributes the upstream gradient unchanged
add = primitive("add", np.add, (lambda F, g, out, x, y: g, lambda F, g, out, x, y: g),
                "{0} + {1}", "+")
# d(x - y) = dx - dy. A primitive (not x + -y) so flat code reads as the formula
sub = primitive("sub", np.subtract, (lambda F, g, out, x, y: g, lambda F, g, out, x, y: -g),
                "{0} - {1}", "-")
# d(x y) = y dx + x dy: the mul gate switches its inputs
mul = primitive("mul", np.multiply, (lambda F, g, out, x, y: g * y, lambda F, g, out, x, y: g * x),
                "{0} * {1}", "*")
# d(x / y) = dx / y - (x / y) dy / y. A primitive: one NumPy call instead of x * y**-1
div = primitive("div", np.true_divide,
                (lambda F, g, out, x, y: g / y, lambda F, g, out, x, y: -(g * out) / y),
                "{0} / {1}", "/")
# d(-x) = -dx
neg = primitive("neg", np.negative, (lambda F, g, out, x: -g,), "-{0}", "neg")


def _powc_vjp(F, g, out, x, *, p):
    # d x^p = p x^(p-1) dx; p == 2 is the common square and needs no power at all. For p = 0
    # the formula takes 0 * 0^-1 = NaN at 0, also in the second derivative of x ** 1 (whose
    # gradient is x ** 0): the slope of a constant is 0 everywhere, as PyTorch has it
    if p == 0:
        return g * 0
    if p == 2:
        return g * (x * 2)
    return g * (x ** (p - 1) * p)


# x ** p for a constant exponent: its own rule, so no log(x) is taken for a gradient nobody needs
powc = primitive("powc", lambda x, *, p: np.power(x, p), (_powc_vjp,), "{0} ** {p}", "**")
# d x^y = y x^(y-1) dx + x^y log(x) dy
pow = primitive("pow", np.power,
                (lambda F, g, out, x, y: g * (y * x ** (y - 1)),
                 lambda F, g, out, x, y: g * (out * F.log(x))),
                "{0} ** {1}", "**")

# -- unary -------------------------------------------------------------------------------------
# d exp(x) = exp(x) dx
exp = primitive("exp", np.exp, (lambda F, g, out, x: g * out,), "np.exp({0})", "exp")
# d log(x) = dx / x
log = primitive("log", np.log, (lambda F, g, out, x: g / x,), "np.log({0})", "log")
# d sqrt(x) = dx / (2 sqrt(x))
sqrt = primitive("sqrt", np.sqrt, (lambda F, g, out, x: g / (out * 2),), "np.sqrt({0})",
                 "sqrt")
# d tanh(x) = (1 - tanh(x)^2) dx
tanh = primitive("tanh", np.tanh, (lambda F, g, out, x: g * (1 - out * out),),
                 "np.tanh({0})", "tanh")


def _sigmoid(x):
    # 1/(1+exp(-x)) overflows exp for x < -88 in float32; the tanh form cannot overflow
    return np.tanh(x * 0.5) * 0.5 + 0.5


# d sigma(x) = sigma(x) (1 - sigma(x)) dx. One gate, as in the backprop notes: the local
# gradient comes from the output alone
sigmoid = primitive("sigmoid", _sigmoid, (lambda F, g, out, x: g * (out * (1 - out)),),
                    "np.tanh({0} * 0.5) * 0.5 + 0.5", "sigmoid",
                    expand=lambda x: 1.0 / (1.0 + exp(-x)))
# d relu(x) = [x > 0] dx: the gate lets the gradient through where it let the value through
relu = primitive("relu", lambda x: np.maximum(x, 0), (lambda F, g, out, x: g * (out > 0),),
                 "np.maximum({0}, 0)", "relu")
# d |x| = sign(x) dx (0 at 0, like PyTorch)
abs = primitive("abs", np.abs, (lambda F, g, out, x: g * F.sign(x),), "np.abs({0})", "abs")
sign = primitive("sign", np.sign, None, "np.sign({0})", "sign")
# d sin(x) = cos(x) dx
sin = primitive("sin", np.sin, (lambda F, g, out, x: g * F.cos(x),), "np.sin({0})", "sin")
# d cos(x) = -sin(x) dx
cos = primitive("cos", np.cos, (lambda F, g, out, x: -(g * F.sin(x)),), "np.cos({0})", "cos")
# d log(1 + x) = dx / (1 + x). Its own gate: log(1 + x) loses every digit of a tiny x
log1p = primitive("log1p", np.log1p, (lambda F, g, out, x: g / (x + 1),), "np.log1p({0})",
                  "log1p")
# d (exp(x) - 1) = exp(x) dx = (out + 1) dx. Its own gate, for tiny x as log1p
expm1 = primitive("expm1", np.expm1, (lambda F, g, out, x: g * (out + 1),), "np.expm1({0})",
                  "expm1")
# d cast(x) = cast back: a gradient has its input's dtype
cast = primitive("cast", lambda x, *, dtype: x.astype(dtype),
                 (lambda F, g, out, x, *, dtype: F.cast(g, x.dtype),),
                 lambda a, p, node: f"{a[0]}.astype(np.{np.dtype(p['dtype']).name})", "cast")


# -- routing gates -----------------------------------------------------------------------------
def _max_vjp(F, g, out, x, y):
    # the max gate routes the gradient to the winner; a tie splits it evenly
    tie = x == y
    half = g * 0.5
    return F.where(tie, half, g * (x > y)), F.where(tie, half, g * (y > x))


def _min_vjp(F, g, out, x, y):
    tie = x == y
    half = g * 0.5
    return F.where(tie, half, g * (x < y)), F.where(tie, half, g * (y < x))


maximum = primitive("maximum", np.maximum, _max_vjp, "np.maximum({0}, {1})", "max")
minimum = primitive("minimum", np.minimum, _min_vjp, "np.minimum({0}, {1})", "min")
# d where(c, x, y) = where(c, dx, dy): the condition carries no gradient
where = primitive("where", np.where,
                  (None, lambda F, g, out, c, x, y: F.where(c, g, 0),
                   lambda F, g, out, c, x, y: F.where(c, 0, g)),
                  "np.where({0}, {1}, {2})", "where")


def _clip_vjp(F, g, out, x, *, lo, hi):
    # passes the gradient where the value was not clipped (both ends inclusive, as PyTorch)
    if lo is None:
        return g * (x <= hi)
    if hi is None:
        return g * (x >= lo)
    return g * ((x >= lo) * (x <= hi))


clip = primitive("clip", lambda x, *, lo, hi: np.clip(x, lo, hi), (_clip_vjp,),
                 "np.clip({0}, {lo}, {hi})", "clip")


# clip with tensor bounds, PyTorch's clamp: the bounds are inputs and get gradients. A second
# primitive (not clip's params) so the common scalar clip keeps its one-input rule and prints
# its bounds as literals. The routing is PyTorch's, ties included: x gets g where
# lo <= x <= hi; lo where x < lo < hi; hi where x > hi or the bounds cross (hi < lo)
clamp = primitive(
    "clamp", np.clip,
    (lambda F, g, out, x, lo, hi: g * ((x >= lo) * (x <= hi)),
     lambda F, g, out, x, lo, hi: g * ((x < lo) * (lo < hi)),
     lambda F, g, out, x, lo, hi: F.where(hi < lo, g, g * (x > hi))),
    "np.clip({0}, {1}, {2})", "clip")

# -- comparisons: results carry no gradient ----------------------------------------------------
lt = primitive("lt", np.less, None, "{0} < {1}", "<")
le = primitive("le", np.less_equal, None, "{0} <= {1}", "<=")
gt = primitive("gt", np.greater, None, "{0} > {1}", ">")
ge = primitive("ge", np.greater_equal, None, "{0} >= {1}", ">=")
eq = primitive("eq", np.equal, None, "{0} == {1}", "==")
ne = primitive("ne", np.not_equal, None, "{0} != {1}", "!=")
