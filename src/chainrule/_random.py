"""The default random generator behind initialisation, dropout and data shuffling.

``manual_seed`` replaces the generator held in a context variable (no global config class),
so a seed set in one context does not leak into another, while plain scripts just work.
"""
from __future__ import annotations

import contextvars

import numpy as np

__all__ = ["manual_seed", "default_generator"]

# The default is created lazily: an unseeded generator costs an OS entropy read, and most
# programs that care about randomness call ``manual_seed`` first anyway.
_generator: contextvars.ContextVar[np.random.Generator | None] = contextvars.ContextVar(
    "chainrule_generator", default=None
)


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the default generator used by ``nn.Linear`` init, ``nn.Dropout`` and loaders.

    Parameters
    ----------
    seed : int
        Any non-negative integer accepted by ``numpy.random.default_rng``.

    Returns
    -------
    numpy.random.Generator
        The new default generator.

    Examples
    --------
    >>> import chainrule as cr
    >>> _ = cr.manual_seed(0)
    >>> a = default_generator().random()
    >>> _ = cr.manual_seed(0)
    >>> a == default_generator().random()
    True
    """
    generator = np.random.default_rng(seed)
    _generator.set(generator)
    return generator


def default_generator() -> np.random.Generator:
    """Return the default generator, creating an unseeded one on first use.

    Examples
    --------
    >>> isinstance(default_generator(), np.random.Generator)
    True
    """
    generator = _generator.get()
    if generator is None:
        generator = np.random.default_rng()
        _generator.set(generator)
    return generator
