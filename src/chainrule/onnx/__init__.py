"""ONNX export: ``cr.onnx.export(model, args, "model.onnx")``.

Needs the ``onnx`` package (``pip install 'chainrule[onnx]'``, which also installs
``onnxruntime`` to run the result); it is imported only when an export runs, so
``import chainrule`` needs NumPy alone.
"""
from .export import export
from .forms import FORMS, NO_FORM

__all__ = ["FORMS", "NO_FORM", "export"]
