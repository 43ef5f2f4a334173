"""``Optimizer``: the shared machinery of param groups, eager steps, state and compiled updates.

Every optimizer keeps its state (momentum buffers, moment estimates, step counters) as NumPy
arrays updated in place, each wrapped in a ``cr.Variable`` that shares it. ``step()`` works on
the arrays directly; ``updates()`` expresses the same step in chainrule ops over those
Variables for ``cr.function(..., updates=...)``. Because both paths touch the same arrays, one
can switch between them at any time.

Hyper-parameters live in ``param_groups``, plain dicts as in PyTorch. A compiled step reads
each numeric one (``lr``, ``momentum``, ``betas``, ...) from a 0-d array in its parameter's
dtype, which the group writes whenever its entry is set: a scheduler changing ``group["lr"]``
reaches an already compiled step, and a float32 parameter is updated in float32 (NumPy
promotes a float32 array against a float64 0-d *array*, unlike against a Python float).
"""
from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

import chainrule as cr

__all__ = ["Optimizer", "ParamGroup"]


class ParamGroup(dict):
    """One entry of ``optimizer.param_groups``: a dict whose numeric entries are mirrored into
    the 0-d arrays compiled steps read, so ``group["lr"] = 0.1`` takes effect everywhere.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> opt = cr.optim.SGD([cr.Variable(np.zeros(2, np.float32))], lr=0.5)
    >>> group = opt.param_groups[0]
    >>> lr = group.scalar("lr", np.float32)
    >>> group["lr"] = 0.25
    >>> lr.data, lr.dtype
    (array(0.25, dtype=float32), dtype('float32'))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__({key: _python(value) for key, value in dict(*args, **kwargs).items()})
        self._scalars: dict[tuple[str, int | None, np.dtype], Any] = {}
        # Terms a compiled step left out because their hyper-parameter was zero when it was
        # built: making one non-zero later cannot reach that step, so say so.
        self._left_out: set[str] = set()

    def __setitem__(self, key: str, value: Any) -> None:
        value = _python(value)
        super().__setitem__(key, value)
        for (name, index, _), var in self._scalars.items():
            if name == key:
                var.data[...] = value if index is None else value[index]
        if key in self._left_out and _nonzero(value):
            warnings.warn(
                f"{key} was 0 when a compiled step was built from this optimizer, so that step "
                f"has no {key} term; build it again (opt.updates() / opt.minimize()) to use it",
                stacklevel=2,
            )

    def update(self, *args: Any, **kwargs: Any) -> None:  # route through __setitem__
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def scalar(self, key: str, dtype: Any, index: int | None = None) -> Any:
        """The 0-d Variable holding ``self[key]`` (or ``self[key][index]``) in ``dtype``,
        created on first use and kept in step with the dict from then on."""
        dtype = np.dtype(dtype)
        var = self._scalars.get((key, index, dtype))
        if var is None:
            value = self[key] if index is None else self[key][index]
            label = key if index is None else (
                f"beta{index + 1}" if key == "betas" else f"{key}{index}")
            var = cr.Variable(np.asarray(value, dtype=dtype), name=label)
            self._scalars[(key, index, dtype)] = var
        return var

    def uses(self, key: str) -> bool:
        """Whether a compiled step needs the ``key`` term (it is non-zero now); a zero one is
        recorded so that making it non-zero later warns instead of being silently ignored."""
        if _nonzero(self[key]):
            return True
        self._left_out.add(key)
        return False


def _python(value: Any) -> Any:
    """NumPy scalars as Python numbers: NumPy 2 keeps a float32 array float32 against a Python
    float but promotes it against ``np.float64(0.1)``, and eager steps use these values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return tuple(_python(v) for v in value)
    return value


def _nonzero(value: Any) -> bool:
    return bool(value) if not isinstance(value, (tuple, list)) else any(map(bool, value))


class Scalars:
    """The hyper-parameters of one group as 0-d Variables of one dtype, plus scalar
    expressions built from them once per group and dtype instead of once per parameter."""

    def __init__(self, group: ParamGroup, dtype: np.dtype) -> None:
        self.group, self.dtype, self._made = group, dtype, {}

    def __call__(self, key: str, index: int | None = None) -> Any:
        return self.group.scalar(key, self.dtype, index)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]


class Optimizer:
    """Base class: parameter groups, per-parameter state, eager and compiled steps.

    ``params`` is an iterable of Variables or of dicts ``{"params": [...], "lr": ...}``
    (PyTorch's param groups); a group's missing entries come from ``defaults``. Subclasses
    define ``_buffers(group)`` (the state each parameter of a group needs), ``_step_eager``
    (one in-place NumPy update) and ``_step_symbolic`` (the same update as chainrule ops).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> w, b = cr.Variable(np.ones(2)), cr.Variable(np.ones(1))
    >>> opt = cr.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
    >>> [group["lr"] for group in opt.param_groups]
    [0.1, 0.5]
    """

    def __init__(self, params: Iterable[Any], defaults: Mapping[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[ParamGroup] = []
        self.params: list[Any] = []             # every parameter, in group order
        self.state: list[dict[str, Any]] = []   # aligned with self.params
        self._index: dict[int, int] = {}        # id(param) -> position in self.params
        if isinstance(params, cr.Tensor):
            raise cr.ChainruleError(
                f"{type(self).__name__} expects an iterable of Variables or of param-group "
                "dicts, got one tensor; wrap it in a list"
            )
        groups = list(params)
        if not groups:
            raise cr.ChainruleError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # -- groups and state -----------------------------------------------------------------
    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group ``{"params": [...], <hyper-parameter>: value, ...}``, as PyTorch."""
        if not isinstance(param_group, Mapping) or "params" not in param_group:
            raise cr.ChainruleError(
                f"{type(self).__name__}: a param group is a dict with a 'params' entry, got "
                f"{type(param_group).__name__}"
            )
        given = param_group["params"]
        given = [given] if isinstance(given, cr.Tensor) else list(given)
        params: list[Any] = []
        for param in given:
            if not isinstance(param, cr.Tensor) or not param.requires_grad:
                raise cr.ChainruleError(
                    f"{type(self).__name__} expects Variables (tensors with requires_grad), "
                    f"got {type(param).__name__}"
                )
            if id(param) in self._index:
                raise cr.ChainruleError(
                    f"{type(self).__name__}: parameter {param.name or ''} appears in more "
                    "than one param group"
                )
            if all(p is not param for p in params):
                params.append(param)
        if not params:
            raise cr.ChainruleError(f"{type(self).__name__} got a param group with no parameters")
        unknown = set(param_group) - set(self.defaults) - {"params"}
        if unknown:
            raise cr.ChainruleError(
                f"{type(self).__name__}: unknown hyper-parameter(s) {sorted(unknown)}; "
                f"known: {sorted(self.defaults)}"
            )
        group = ParamGroup({**self.defaults, **param_group, "params": params})
        self._check(group)
        self.param_groups.append(group)
        for param in params:
            self._index[id(param)] = len(self.params)
            self.params.append(param)
            self.state.append({})
            self._ensure_buffers(len(self.params) - 1, group)

    def _check(self, group: Mapping[str, Any]) -> None:
        """Reject invalid hyper-parameters (subclasses add their own rules)."""
        if not group["lr"] >= 0.0:
            raise cr.ChainruleError(f"learning rate must be >= 0, got {group['lr']}")

    def _buffers(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        return ()

    def _initial(self, name: str, param: Any, group: Mapping[str, Any]) -> np.ndarray:
        """A new buffer: zeros shaped like the parameter, in its dtype (a 0-d step counter)."""
        if name == "step":
            return np.zeros((), dtype=param.dtype)
        return np.zeros_like(param.data)

    def _ensure_buffers(self, index: int, group: Mapping[str, Any]) -> dict[str, Any]:
        """Create the buffers ``group`` needs that parameter ``index`` lacks (a scheduler may
        turn momentum on after construction, as PyTorch allows)."""
        state, param = self.state[index], self.params[index]
        for name in self._buffers(group):
            if name not in state:
                label = param.name or f"p{index}"
                state[name] = cr.Variable(self._initial(name, param, group),
                                          name=f"{label}.{name}")
        return state

    # -- the learning rate of every group -------------------------------------------------
    @property
    def lr(self) -> float:
        """The first group's learning rate; setting it sets every group's."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.param_groups:
            group["lr"] = value

    # -- eager ----------------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Forget the accumulated gradients (set each ``.grad`` to ``None``, like PyTorch)."""
        for param in self.params:
            param.grad = None

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, in place, from ``p.grad.data``.

        ``closure``, as PyTorch's, recomputes the loss (with its backward) and is returned.
        """
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            needed = frozenset(self._buffers(group))
            for param in group["params"]:
                if param.grad is None:
                    continue
                index = self._index[id(param)]
                state = self.state[index]
                if not state.keys() >= needed:  # momentum turned on since the last step
                    self._ensure_buffers(index, group)
                buffers = {name: var.data for name, var in state.items()}
                self._step_eager(param.data, np.asarray(param.grad.data), buffers, group)
        return loss

    def _step_eager(self, p: np.ndarray, g: np.ndarray, state: dict,
                    group: Mapping[str, Any]) -> None:
        raise NotImplementedError

    # -- symbolic -------------------------------------------------------------------------
    def updates(self, loss: Any = None, *, grads: Sequence[Any] | None = None) -> list[tuple]:
        """One optimizer step as ``(variable, new_value_tensor)`` pairs for ``cr.function``.

        Give the scalar ``loss`` (its gradients w.r.t. the parameters are taken with
        ``cr.grad``) or precomputed ``grads``, one per parameter, in ``self.params`` order.
        Every hyper-parameter enters as a 0-d Variable in its parameter's dtype, read at call
        time; a term whose hyper-parameter is 0 now (weight decay, momentum) is left out.

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
        for group in self.param_groups:
            by_dtype: dict[np.dtype, Scalars] = {}
            for param in group["params"]:
                index = self._index[id(param)]
                scalars = by_dtype.setdefault(param.dtype, Scalars(group, param.dtype))
                state = self._ensure_buffers(index, group)
                pairs.extend(self._step_symbolic(param, grads[index], state, scalars))
        return pairs

    def _step_symbolic(self, p: Any, g: Any, state: dict, h: Scalars) -> list[tuple]:
        raise NotImplementedError

    def minimize(self, loss: Any, inputs: Sequence[Any], outputs: Sequence[Any] = ()) -> Any:
        """Compile one training step: a function of ``inputs`` that updates the parameters.

        It returns the loss when ``outputs`` is empty, otherwise the values of ``outputs``.

        Examples
        --------
        >>> import numpy as np, chainrule as cr
        >>> w = cr.Variable(np.zeros(2, np.float32), name="w")
        >>> x = cr.placeholder((None, 2), dtype=np.float32, name="x")
        >>> step = cr.optim.Adam([w], lr=0.1).minimize(cr.mean((x @ w - 1.0) ** 2), [x])
        >>> _ = step(np.ones((4, 2), np.float32))
        >>> w.data, w.dtype
        (array([0.1, 0.1], dtype=float32), dtype('float32'))
        """
        fetched = list(outputs) if outputs else loss
        return cr.function(list(inputs), fetched, updates=self.updates(loss))

    # -- checkpointing --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Buffers and param groups as plain numbers and array copies, as PyTorch's.

        Buffers are keyed by parameter position (``"0"``, ``"1"``, ...); each group lists
        its parameters' positions under ``"params"``.
        """
        groups = []
        for group in self.param_groups:
            plain = {key: _plain(value) for key, value in group.items() if key != "params"}
            plain["params"] = [self._index[id(p)] for p in group["params"]]
            groups.append(plain)
        return {
            "state": {
                str(index): {name: np.array(var.data, copy=True) for name, var in state.items()}
                for index, state in enumerate(self.state)
            },
            "param_groups": groups,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned, writing buffers in place.

        Also reads the single-group form of chainrule 0.1 (``"lr"`` and ``"hyper"``).
        """
        buffers = state_dict.get("state", {})
        if len(buffers) != len(self.state):
            raise cr.ChainruleError(
                f"optimizer state has {len(buffers)} parameters, this optimizer has "
                f"{len(self.state)}"
            )
        if "param_groups" in state_dict:
            saved_groups = list(state_dict["param_groups"])
            sizes = [len(g["params"]) for g in saved_groups]
            if sizes != [len(g["params"]) for g in self.param_groups]:
                raise cr.ChainruleError(
                    f"optimizer state has param groups of sizes {sizes}, this optimizer has "
                    f"{[len(g['params']) for g in self.param_groups]}"
                )
        else:  # chainrule 0.1: one group
            legacy = {"lr": state_dict["lr"], **dict(state_dict.get("hyper", {}))}
            saved_groups = [legacy] * len(self.param_groups)
        for index, param in enumerate(self.params):
            saved = buffers[str(index)]
            for name, value in saved.items():
                value = np.asarray(value)
                if value.shape != (() if name == "step" else param.data.shape):
                    raise cr.ChainruleError(
                        f"optimizer state {index}.{name} has shape {value.shape}, "
                        f"parameter {index} has shape {param.data.shape}"
                    )
        for group, saved in zip(self.param_groups, saved_groups):
            for key, value in saved.items():
                if key != "params":
                    group[key] = tuple(value) if isinstance(value, list) else value
        for index, param in enumerate(self.params):
            state = self.state[index]
            for name, value in buffers[str(index)].items():
                if name not in state:
                    state[name] = cr.Variable(np.zeros_like(np.asarray(value), dtype=param.dtype),
                                              name=f"{param.name or f'p{index}'}.{name}")
                state[name].data[...] = value

    def __repr__(self) -> str:
        def hyper(group: Mapping[str, Any]) -> str:
            return ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
        if len(self.param_groups) == 1:
            return f"{type(self).__name__}({hyper(self.param_groups[0])})"
        groups = "; ".join(f"group {i}: {hyper(g)}" for i, g in enumerate(self.param_groups))
        return f"{type(self).__name__}({groups})"


def _plain(value: Any) -> Any:
    """A hyper-parameter as a JSON-able Python value (NumPy scalars and tuples converted)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (numbers.Number, str, bool)) or value is None:
        return value
    return float(value)
