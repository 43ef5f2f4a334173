"""``Module``: the container that registers parameters and submodules in order."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator, Mapping

import numpy as np

import chainrule as cr

__all__ = ["Module"]


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


class Module:
    """Base class of models: parameters and submodules are registered on attribute assignment.

    Assigning a ``cr.Variable`` registers it as a parameter, assigning a ``Module`` registers
    it as a submodule, both in assignment order. Parameters are renamed with their dotted path
    (``"0.weight"``) when a module is attached to a parent, so compiled code reads well.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> class Affine(cr.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = cr.Variable(np.ones(2), name="w")
    ...     def forward(self, x):
    ...         return x * self.w
    >>> [name for name, _ in Affine().named_parameters()]
    ['w']
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise cr.ChainruleError(
                f"{type(self).__name__}.__init__ must call super().__init__() before "
                f"assigning attributes (assigning {name!r})"
            )
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if _is_parameter(value):
            _rename(value, name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            for sub_name, param in value.named_parameters():
                _rename(param, f"{name}.{sub_name}")
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def add_module(self, name: str, module: "Module") -> None:
        """Register ``module`` under ``name`` (what ``Sequential`` uses for ``"0"``, ``"1"``)."""
        if not isinstance(module, Module):
            raise cr.ChainruleError(f"add_module expects a Module, got {type(module).__name__}")
        setattr(self, name, module)

    # -- traversal ------------------------------------------------------------------------
    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """Yield ``(dotted_name, parameter)`` pairs, own parameters first, each once."""
        seen: set[int] = set()
        for name, param in self._named_parameters(prefix):
            if id(param) not in seen:
                seen.add(id(param))
                yield name, param

    def _named_parameters(self, prefix: str) -> Iterator[tuple[str, Any]]:
        for name, param in self._parameters.items():
            yield prefix + name, param
        for name, module in self._modules.items():
            yield from module._named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Any]:
        """Return the parameters in registration order (a list, so it can be reused)."""
        return [param for _, param in self.named_parameters()]

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """Yield ``(dotted_name, module)`` for this module (name ``""``) and all below it."""
        yield prefix.rstrip("."), self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}{name}.")

    def children(self) -> Iterator["Module"]:
        """Yield the direct submodules in registration order."""
        yield from self._modules.values()

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Return ``{dotted_name: copy of the parameter's array}``."""
        return {name: np.array(param.data, copy=True) for name, param in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy arrays (or tensors) into the parameters, in place.

        Writing in place keeps every alias of a parameter's array (optimizer views, compiled
        functions) valid. Missing or unexpected keys and shape mismatches raise
        ``cr.ChainruleError`` before anything is written.
        """
        params = dict(self.named_parameters())
        missing = [name for name in params if name not in state]
        unexpected = [name for name in state if name not in params]
        if missing or unexpected:
            raise cr.ChainruleError(
                f"load_state_dict for {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        arrays = {}
        for name, param in params.items():
            value = state[name]
            array = np.asarray(value.data if isinstance(value, cr.Tensor) else value)
            if array.shape != param.data.shape:
                raise cr.ChainruleError(
                    f"load_state_dict for {type(self).__name__}: {name!r} has shape "
                    f"{array.shape} in the state but {param.data.shape} in the model"
                )
            arrays[name] = array
        for name, param in params.items():
            param.data[...] = arrays[name]

    # -- mode -----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode here and below (what ``Dropout`` reads); return ``self``."""
        for _, module in self.named_modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Set evaluation mode (``train(False)``); return ``self``."""
        return self.train(False)

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
