"""``Module``: the container that registers parameters, buffers and submodules in order."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

import chainrule as cr

__all__ = ["IncompatibleKeys", "Module"]


def _is_parameter(value: Any) -> bool:
    """A parameter is a trainable leaf tensor, i.e. what ``cr.Variable`` makes."""
    return (
        isinstance(value, cr.Tensor)
        and bool(getattr(value, "requires_grad", False))
        and bool(getattr(value, "is_leaf", True))
    )


def _rename(tensor: Any, name: str) -> None:
    # Names only make generated code and drawings readable; a tensor class that does not
    # allow renaming should not stop a model from being built.
    try:
        tensor.name = name
    except (AttributeError, TypeError):
        pass


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, cr.Tensor):
        return np.asarray(value.data)
    if hasattr(value, "detach") and hasattr(value, "numpy"):   # a torch tensor, even a Parameter
        return value.detach().cpu().numpy()
    return np.asarray(value)


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(..., strict=False)`` could not match, as PyTorch reports it."""

    missing_keys: list
    unexpected_keys: list

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (f"IncompatibleKeys(missing_keys={self.missing_keys}, "
                f"unexpected_keys={self.unexpected_keys})")


class Module:
    """Base class of models: parameters, buffers and submodules registered on assignment.

    Assigning a ``cr.Variable`` registers it as a parameter, assigning a ``Module`` registers
    it as a submodule, both in assignment order; ``register_buffer`` adds state that is saved
    but not trained (batch norm's running statistics). Parameters and buffers are renamed
    with their dotted path (``"0.weight"``) when a module is attached to a parent, so compiled
    code reads well.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> class Affine(cr.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = cr.Variable(np.ones(2), name="w")
    ...         self.register_buffer("calls", np.zeros((), dtype=np.int64))
    ...     def forward(self, x):
    ...         return x * self.w
    >>> [name for name, _ in Affine().named_parameters()]
    ['w']
    >>> sorted(Affine().state_dict())
    ['calls', 'w']
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise cr.ChainruleError(
                f"{type(self).__name__}.__init__ must call super().__init__() before "
                f"assigning attributes (assigning {name!r})"
            )
        if name in self._buffers:
            # ``self.running_mean = new`` keeps it a buffer, as in PyTorch
            self._buffers[name] = None if value is None else self._buffer_tensor(name, value)
            object.__setattr__(self, name, self._buffers[name])
            return
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if _is_parameter(value):
            _rename(value, name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            for sub_name, tensor in value._named_tensors():
                _rename(tensor, f"{name}.{sub_name}")
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)
        object.__delattr__(self, name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` under ``name`` (what ``Sequential`` uses for ``"0"``, ``"1"``)."""
        if not isinstance(module, Module):
            raise cr.ChainruleError(f"add_module expects a Module, got {type(module).__name__}")
        setattr(self, name, module)

    def register_module(self, name: str, module: Module) -> None:
        """Alias of :meth:`add_module`, as in PyTorch."""
        self.add_module(name, module)

    def register_buffer(self, name: str, array: Any, persistent: bool = True) -> None:
        """Register state that is saved and moved with the model but not trained.

        ``array`` (an array-like or a tensor; ``None`` leaves the slot empty) becomes a
        tensor that records no gradient, reachable as ``self.<name>``. Persistent buffers
        are in :meth:`state_dict`. A compiled function reads a buffer when it is called, not
        when it is compiled, so running statistics updated later are seen.

        Examples
        --------
        >>> import numpy as np, chainrule as cr
        >>> m = cr.nn.Module()
        >>> m.register_buffer("running_mean", np.zeros(3))
        >>> [name for name, _ in m.named_buffers()], m.running_mean.requires_grad
        (['running_mean'], False)
        """
        if "_buffers" not in self.__dict__:
            raise cr.ChainruleError("register_buffer called before Module.__init__()")
        if not isinstance(name, str) or not name or "." in name:
            raise cr.ChainruleError(f"register_buffer: invalid buffer name {name!r}")
        if name in self._parameters or name in self._modules:
            raise cr.ChainruleError(
                f"register_buffer: {name!r} is already a parameter or submodule of "
                f"{type(self).__name__}")
        if name in self.__dict__ and name not in self._buffers:
            raise cr.ChainruleError(f"register_buffer: attribute {name!r} already exists")
        tensor = None if array is None else self._buffer_tensor(name, array)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    @staticmethod
    def _buffer_tensor(name: str, array: Any) -> Any:
        from ..graph.state import mark_state  # buffers are read by compiled code at call time

        if isinstance(array, cr.Tensor):
            if array.data is None:
                raise cr.ChainruleError(f"buffer {name!r} must have a value, got a symbolic "
                                        "tensor")
            tensor = array if not array.requires_grad else cr.tensor(array.data)
        else:
            tensor = cr.tensor(np.asarray(array))
        _rename(tensor, name)
        return mark_state(tensor)

    # -- traversal ------------------------------------------------------------------------
    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Any]]:
        """Yield ``(dotted_name, parameter)`` pairs, own parameters first, each once."""
        seen: set[int] = set()
        for name, param in self._walk("_parameters", prefix, recurse):
            if id(param) not in seen:
                seen.add(id(param))
                yield name, param

    def named_buffers(self, prefix: str = "", recurse: bool = True
                      ) -> Iterator[tuple[str, Any]]:
        """Yield ``(dotted_name, buffer)`` pairs (empty slots skipped), each once."""
        seen: set[int] = set()
        for name, buf in self._walk("_buffers", prefix, recurse):
            if buf is not None and id(buf) not in seen:
                seen.add(id(buf))
                yield name, buf

    def _walk(self, kind: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Any]]:
        # iterative, own entries first then each submodule's in registration order
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            pre, module = stack.pop()
            for name, value in getattr(module, kind).items():
                yield pre + name, value
            if recurse:
                stack.extend(reversed([(f"{pre}{name}.", sub)
                                       for name, sub in module._modules.items()]))

    def _named_tensors(self) -> Iterator[tuple[str, Any]]:
        yield from self.named_parameters()
        yield from self.named_buffers()

    def parameters(self, recurse: bool = True) -> list[Any]:
        """Return the parameters in registration order (a list, so it can be reused)."""
        return [param for _, param in self.named_parameters(recurse=recurse)]

    def buffers(self, recurse: bool = True) -> list[Any]:
        """Return the buffers (running statistics and the like) in registration order."""
        return [buf for _, buf in self.named_buffers(recurse=recurse)]

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Yield ``(dotted_name, module)`` for this module (name ``""``) and all below it."""
        stack: list[tuple[str, Module]] = [(prefix, self)]
        seen: set[int] = set()
        while stack:
            pre, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield pre.rstrip("."), module
            stack.extend(reversed([(f"{pre}{name}.", sub)
                                   for name, sub in module._modules.items()]))

    def modules(self) -> Iterator[Module]:
        """Yield this module and every module below it, each once."""
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Yield ``(name, module)`` for the direct submodules in registration order."""
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        """Yield the direct submodules in registration order."""
        yield from self._modules.values()

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Return ``{dotted_name: copy of the array}`` for parameters and persistent buffers,
        in PyTorch's order and under PyTorch's names (each module's parameters, then its
        buffers, then its submodules')."""
        state: dict[str, np.ndarray] = {}
        for name, tensor in self._state_items():
            state[name] = np.array(tensor.data, copy=True)
        return state

    def _state_items(self) -> Iterator[tuple[str, Any]]:
        stack: list[tuple[str, Module]] = [("", self)]
        seen: set[int] = set()
        while stack:
            pre, module = stack.pop()
            for name, param in module._parameters.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield pre + name, param
            for name, buf in module._buffers.items():
                if buf is not None and name not in module._non_persistent \
                        and id(buf) not in seen:
                    seen.add(id(buf))
                    yield pre + name, buf
            stack.extend(reversed([(f"{pre}{name}.", sub)
                                   for name, sub in module._modules.items()]))

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays (or tensors) into the parameters and buffers, in place.

        Writing in place keeps every alias of an array (optimizer views, compiled functions)
        valid; values are cast to each parameter's dtype. With ``strict=True`` (the default)
        missing or unexpected keys raise ``cr.ChainruleError``; with ``strict=False`` the
        matching keys load and the others are returned as ``(missing_keys,
        unexpected_keys)``. A shape mismatch always raises, before anything is written.

        Examples
        --------
        >>> import chainrule as cr
        >>> model = cr.nn.Linear(2, 3)
        >>> model.load_state_dict({"weight": model.weight.data * 0}, strict=False)
        IncompatibleKeys(missing_keys=['bias'], unexpected_keys=[])
        """
        if not isinstance(state, Mapping):
            raise cr.ChainruleError(
                f"load_state_dict expects a dict of arrays, got {type(state).__name__}")
        own = dict(self._state_items())
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        if strict and (missing or unexpected):
            raise cr.ChainruleError(
                f"load_state_dict for {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected} (strict=False loads the keys that match and "
                f"returns the others)"
            )
        arrays = {}
        for name, tensor in own.items():
            if name not in state:
                continue
            array = _as_array(state[name])
            if array.shape != tensor.data.shape:
                raise cr.ChainruleError(
                    f"load_state_dict for {type(self).__name__}: {name!r} has shape "
                    f"{array.shape} in the state but {tensor.data.shape} in the model"
                    + _transposed_hint(name, array.shape, tensor.data.shape)
                )
            arrays[name] = array
        for name, array in arrays.items():
            own[name].data[...] = array
        return IncompatibleKeys(missing, unexpected)

    # -- mode, dtype, gradients -----------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode here and below (what ``Dropout`` and batch norm read); return
        ``self``. A graph records the mode it was built in: compile the training step after
        ``train()`` and the predictor after ``eval()``."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Set evaluation mode (``train(False)``); return ``self``."""
        return self.train(False)

    def to(self, dtype: Any) -> Module:
        """Cast floating-point parameters and buffers to ``dtype``, keeping each tensor
        object (so optimizers and compiled functions built afterwards see the same
        Variables); integer buffers such as ``num_batches_tracked`` keep their dtype.

        Examples
        --------
        >>> import numpy as np, chainrule as cr
        >>> cr.nn.Linear(2, 3).to(np.float64).weight.dtype
        dtype('float64')
        """
        if isinstance(dtype, str) and dtype in ("cpu",):
            return self         # the only device there is
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise cr.ChainruleError(f"Module.to expects a NumPy dtype, got {dtype!r}") from None
        if dtype.kind not in "fc":
            raise cr.ChainruleError(f"Module.to({dtype}): parameters must stay floating-point")
        for tensor in list(self.parameters()) + list(self.buffers()):
            if tensor.data.dtype.kind in "fc" and tensor.data.dtype != dtype:
                tensor.data = tensor.data.astype(dtype)
                if tensor.grad is not None:
                    tensor.grad = None   # a gradient of the old dtype no longer matches
        return self

    def double(self) -> Module:
        """``to(np.float64)``."""
        return self.to(np.float64)

    def float(self) -> Module:
        """``to(np.float32)``."""
        return self.to(np.float32)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the accumulated gradients of every parameter (``None``, as PyTorch does by
        default; zeros with ``set_to_none=False``)."""
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad = cr.tensor(np.zeros_like(param.data))

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Turn gradient recording for every parameter on or off (freezing); return ``self``.

        A frozen parameter stays a parameter (in ``parameters()`` and the state dict); a
        compiled function treats it as a constant of the graph it was built from.
        """
        for param in self.parameters():
            param.requires_grad = bool(requires_grad)
        return self

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule (children first) and then on ``self``; return
        ``self``. The usual use is custom initialisation.

        Examples
        --------
        >>> import chainrule as cr
        >>> seen = []
        >>> _ = cr.nn.Sequential(cr.nn.Linear(2, 2), cr.nn.ReLU()).apply(
        ...     lambda m: seen.append(type(m).__name__))
        >>> seen
        ['Linear', 'ReLU', 'Sequential']
        """
        # post-order without recursion: every module after all of its children
        stack: list[tuple[Module, bool]] = [(self, False)]
        seen: set[int] = set()
        while stack:
            module, children_done = stack.pop()
            if children_done:
                fn(module)
            elif id(module) not in seen:
                seen.add(id(module))
                stack.append((module, True))
                stack.extend((sub, False) for sub in reversed(module._modules.values()))
        return self

    # -- calling --------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the module's output; subclasses override this."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -- printing -------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text between the parentheses of this module's one-line repr."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + "\n" + "\n".join(lines) + "\n)"


def _transposed_hint(name: str, got: tuple, want: tuple) -> str:
    if len(got) == 2 and got[::-1] == want and name.endswith("weight"):
        return ("; it looks transposed: chainrule 0.1 stored Linear weights as (in, out), "
                "PyTorch and chainrule now store (out, in) (cr.load transposes them in "
                "checkpoints written by 0.1)")
    return ""
