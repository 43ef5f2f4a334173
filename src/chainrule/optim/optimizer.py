"""``Optimizer``: the shared machinery of eager steps, state and compiled updates.

Every optimizer keeps its state (momentum buffers, moment estimates, step counters, the
learning rate) as NumPy arrays updated in place, and wraps each array in a ``cr.Variable``
that shares it. ``step()`` works on the arrays directly; ``updates()`` expresses the same
step in chainrule ops over those Variables for ``cr.function(..., updates=...)``. Because
both paths touch the same arrays, one can switch between them at any time, and a learning-
rate scheduler changing ``lr`` is seen by an already compiled function.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

import chainrule as cr

__all__ = ["Optimizer"]


class Optimizer:
    """Base class: holds the parameters, the learning rate and per-parameter state.

    Subclasses define ``_state_names`` (the buffers each parameter needs), ``_step_eager``
    (one in-place NumPy update) and ``_step_symbolic`` (the same update as chainrule ops).
    """

    _state_names: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Any], lr: float) -> None:
        self.params: list[Any] = []
        seen: set[int] = set()
        for param in params:
            if not isinstance(param, cr.Tensor) or not param.requires_grad:
                raise cr.ChainruleError(
                    f"{type(self).__name__} expects Variables (tensors with requires_grad), "
                    f"got {type(param).__name__}"
                )
            if id(param) not in seen:
                seen.add(id(param))
                self.params.append(param)
        if not self.params:
            raise cr.ChainruleError(f"{type(self).__name__} got an empty parameter list")
        if lr < 0.0:
            raise cr.ChainruleError(f"learning rate must be >= 0, got {lr}")
        # The learning rate lives in a 0-d array so compiled updates read it at call time.
        self._lr = cr.Variable(np.asarray(lr, dtype=np.float64), name="lr")
        self.state: list[dict[str, Any]] = [self._new_state(i, p) for i, p in enumerate(self.params)]

    def _param_label(self, index: int, param: Any) -> str:
        name = getattr(param, "name", None)
        return str(name) if name else f"p{index}"

    def _new_state(self, index: int, param: Any) -> dict[str, Any]:
        """One Variable per buffer; the Variable's ``.data`` *is* the eager state."""
        label = self._param_label(index, param)
        state = {}
        for buffer in self._state_names:
            if buffer == "step":
                value = np.zeros((), dtype=np.float64)
            else:
                value = np.zeros_like(param.data)
            state[buffer] = cr.Variable(value, name=f"{label}.{buffer}")
        return state

    # -- learning rate --------------------------------------------------------------------
    @property
    def lr(self) -> float:
        """The current learning rate (schedulers set it; compiled steps see the change)."""
        return float(self._lr.data)

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr.data[...] = value

    # -- eager ----------------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Forget the accumulated gradients (set each ``.grad`` to ``None``, like PyTorch)."""
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, in place, from ``p.grad.data``."""
        lr = self.lr
        for param, state in zip(self.params, self.state):
            if param.grad is None:
                continue
            grad = np.asarray(param.grad.data)
            buffers = {name: var.data for name, var in state.items()}
            self._step_eager(param.data, grad, buffers, lr)

    def _step_eager(self, p: np.ndarray, g: np.ndarray, state: dict, lr: float) -> None:
        raise NotImplementedError

    # -- symbolic -------------------------------------------------------------------------
    def updates(self, loss: Any = None, *, grads: Sequence[Any] | None = None) -> list[tuple]:
        """One optimizer step as ``(variable, new_value_tensor)`` pairs for ``cr.function``.

        Give the scalar ``loss`` (its gradients w.r.t. the parameters are taken with
        ``cr.grad``) or precomputed ``grads``, one per parameter, in ``self.params`` order.

        Examples
        --------
        >>> import numpy as np, chainrule as cr
        >>> w = cr.Variable(np.zeros(2), name="w")
        >>> x = cr.placeholder((None, 2), dtype=np.float64, name="x")
        >>> loss = cr.mean((x @ w - 1.0) ** 2)
        >>> opt = cr.optim.SGD([w], lr=0.1)
        >>> step = cr.function([x], loss, updates=opt.updates(loss))
        >>> _ = step(np.ones((4, 2)))
        >>> w.data
        array([0.2, 0.2])
        """
        if grads is None:
            if loss is None:
                raise cr.ChainruleError("updates() needs the loss or the gradients")
            grads = cr.grad(loss, self.params)
        grads = list(grads)
        if len(grads) != len(self.params):
            raise cr.ChainruleError(
                f"updates() got {len(grads)} gradients for {len(self.params)} parameters"
            )
        pairs: list[tuple] = []
        for param, grad, state in zip(self.params, grads, self.state):
            pairs.extend(self._step_symbolic(param, grad, state, self._lr))
        return pairs

    def _step_symbolic(self, p: Any, g: Any, state: dict, lr: Any) -> list[tuple]:
        raise NotImplementedError

    def minimize(self, loss: Any, inputs: Sequence[Any], outputs: Sequence[Any] = ()) -> Any:
        """Compile one training step: a function of ``inputs`` that updates the parameters.

        It returns the loss when ``outputs`` is empty, otherwise the values of ``outputs``.
        """
        fetched = list(outputs) if outputs else loss
        return cr.function(list(inputs), fetched, updates=self.updates(loss))

    # -- checkpointing --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters and buffers as plain numbers and array copies.

        Buffers are keyed by parameter position (``"0"``, ``"1"``, ...), as in PyTorch.
        """
        return {
            "lr": self.lr,
            "hyper": dict(self._hyperparameters()),
            "state": {
                str(index): {name: np.array(var.data, copy=True) for name, var in state.items()}
                for index, state in enumerate(self.state)
            },
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned, writing buffers in place."""
        buffers = state_dict.get("state", {})
        if len(buffers) != len(self.state):
            raise cr.ChainruleError(
                f"optimizer state has {len(buffers)} parameters, this optimizer has "
                f"{len(self.state)}"
            )
        for index, state in enumerate(self.state):
            saved = buffers[str(index)]
            for name, var in state.items():
                if name not in saved:
                    raise cr.ChainruleError(f"optimizer state for parameter {index} lacks {name!r}")
                value = np.asarray(saved[name])
                if value.shape != var.data.shape:
                    raise cr.ChainruleError(
                        f"optimizer state {index}.{name} has shape {value.shape}, "
                        f"expected {var.data.shape}"
                    )
        for index, state in enumerate(self.state):
            for name, var in state.items():
                var.data[...] = buffers[str(index)][name]
        for name, value in state_dict.get("hyper", {}).items():
            setattr(self, name, value if not isinstance(value, list) else tuple(value))
        self.lr = state_dict["lr"]

    def _hyperparameters(self) -> Mapping[str, Any]:
        return {}

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}(lr={self.lr}{', ' if hyper else ''}{hyper})"
