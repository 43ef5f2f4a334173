"""``save`` / ``load``: checkpoints as ``.npz`` archives or ``.safetensors`` files, written
atomically, never pickled.

A state is a (possibly nested) dict whose leaves are arrays, tensors, or plain JSON values
(numbers, strings, booleans, ``None``, lists of these). Arrays go into the file under their
dotted path; the other leaves and the nesting itself go into one small JSON entry (an array in
an ``.npz``, the metadata of a ``.safetensors`` file), so ``load`` gives back the same
structure, numbers as Python numbers. A flat state dict saved as ``.safetensors`` is exactly
what ``safetensors.torch.load_file`` expects, so weights move to PyTorch and back.

The JSON entry records the file format's version. Format 1 (chainrule 0.1) stored
``nn.Linear`` weights as ``(in, out)``; from format 2 they are PyTorch's ``(out, in)``, and
``load`` transposes them in a format-1 file (see :func:`_upgrade_from_format_1`).
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

import chainrule as cr

__all__ = ["load", "save"]

_META_KEY = "__chainrule__"
# 2: nn.Linear weights are (out_features, in_features), as in PyTorch (1: (in, out))
_FORMAT = 2
_SAFETENSORS_MAGIC_OFFSET = 8      # a u64 header length, then the JSON header's "{"


def _flatten(state: Mapping[str, Any], path: tuple[str, ...], arrays: dict, paths: dict,
             values: list) -> None:
    for key, value in state.items():
        if not isinstance(key, str):
            raise cr.ChainruleError(f"save: keys must be strings, got {key!r} at {'.'.join(path)}")
        here = path + (key,)
        if isinstance(value, Mapping):
            if not value:
                values.append([list(here), {}])
            _flatten(value, here, arrays, paths, values)
            continue
        if isinstance(value, cr.Tensor):
            value = value.data
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise cr.ChainruleError(f"save: {'.'.join(here)} is an object array; "
                                        "only numeric and string arrays can be saved")
            name = ".".join(here)
            if name in arrays or name == _META_KEY:
                name = f"{name}#{len(arrays)}"
            arrays[name] = value
            paths[name] = list(here)
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, tuple):
            value = list(value)
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise cr.ChainruleError(
                f"save: cannot store {'.'.join(here)} of type {type(value).__name__}: {exc}"
            ) from None
        values.append([list(here), value])


def _write_npz(fileobj: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Write the archive; a separate function so tests can make it fail partway."""
    np.savez(fileobj, **arrays)


def save(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` to exactly ``path``, atomically: the safetensors format when ``path``
    ends in ``.safetensors`` (needs the ``safetensors`` package: ``pip install
    'chainrule[safetensors]'``), an ``.npz`` archive otherwise.

    The file is written to a temporary file in the same directory, flushed and fsynced,
    then renamed over ``path``, and the directory is fsynced: a crash at any point leaves
    either the old file or the new one, never a torn one.

    Examples
    --------
    >>> import numpy as np, chainrule as cr, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> cr.save({"model": {"w": np.arange(3.0)}, "epoch": 4}, path)
    >>> state = cr.load(path)
    >>> state["epoch"], state["model"]["w"]
    (4, array([0., 1., 2.]))
    """
    if not isinstance(state, Mapping):
        raise cr.ChainruleError(f"save expects a dict, got {type(state).__name__}")
    arrays: dict[str, np.ndarray] = {}
    paths: dict[str, list[str]] = {}
    values: list = []
    _flatten(state, (), arrays, paths, values)
    meta = json.dumps({"format": _FORMAT, "chainrule": _version(), "arrays": paths,
                       "values": values})

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise cr.ChainruleError(f"save: folder {directory} does not exist (create it first, "
                                f"e.g. os.makedirs)")
    if os.path.isdir(path):
        raise cr.ChainruleError(f"save: {path} is a folder; give a file name")
    if path.endswith(".safetensors"):
        payload = _safetensors_bytes(arrays, meta)

        def write(fileobj: Any) -> None:
            fileobj.write(payload)
    else:
        arrays[_META_KEY] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)

        def write(fileobj: Any) -> None:
            _write_npz(fileobj, arrays)
    _write_atomically(path, directory, write)


def _version() -> str:
    return getattr(cr, "__version__", "")


def _import_safetensors() -> Any:
    try:
        import safetensors.numpy
    except ImportError:
        raise cr.ChainruleError(
            "the .safetensors format needs the safetensors package: pip install "
            "'chainrule[safetensors]' (or save to a .npz path)") from None
    return safetensors


def _safetensors_bytes(arrays: Mapping[str, np.ndarray], meta: str) -> bytes:
    st = _import_safetensors()
    tensors = {}
    for name, array in arrays.items():
        if array.dtype.kind in "SUV" or array.dtype.hasobject:
            raise cr.ChainruleError(f"save: {name} has dtype {array.dtype}, which the "
                                    f"safetensors format cannot hold; save to a .npz path")
        # safetensors 0.8.0 writes the bytes of the underlying buffer, not of the view: a
        # transposed or reversed array would come back scrambled, without an error
        if not array.flags.c_contiguous or not array.dtype.isnative:
            array = np.array(array, dtype=array.dtype.newbyteorder("="), order="C")
        tensors[name] = array
    try:
        return st.numpy.save(tensors, metadata={_META_KEY: meta})
    except Exception as exc:  # noqa: BLE001  (SafetensorError has no stable import path)
        raise cr.ChainruleError(f"save: safetensors refused the state: {exc}") from None


def _write_atomically(path: str, directory: str, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fileobj:
            write(fileobj)
            fileobj.flush()
            os.fsync(fileobj.fileno())
        # mkstemp creates the file private (0600); a checkpoint is an ordinary file.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _set(tree: dict, path: list[str], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a state written by ``save``, any ``.npz`` of plain arrays, or any
    ``.safetensors`` file (such as one written by ``safetensors.torch.save_file``).

    Never unpickles: a pickle, a truncated or corrupted file, or an archive holding object
    arrays raises ``cr.ChainruleError`` naming the file. A checkpoint written by chainrule
    0.1 comes back with its ``nn.Linear`` weights transposed to today's ``(out, in)``.

    Examples
    --------
    >>> import numpy as np, chainrule as cr, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> cr.save({"w": np.ones(2)}, path)
    >>> cr.load(path)["w"]
    array([1., 1.])
    """
    path = os.fspath(path)
    with open(path, "rb") as fileobj:
        head = fileobj.read(_SAFETENSORS_MAGIC_OFFSET + 1)
    if head[:4] == b"PK\x03\x04":
        arrays, raw_meta = _read_npz(path)
    elif len(head) > _SAFETENSORS_MAGIC_OFFSET and head[-1:] == b"{":
        arrays, raw_meta = _read_safetensors(path)
    else:
        raise cr.ChainruleError(f"load: {path} is not an .npz archive or a .safetensors file")
    if raw_meta is None:
        return arrays
    try:
        meta = json.loads(raw_meta)
        paths = meta["arrays"]
        values = meta["values"]
        version = int(meta.get("format", 1))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise cr.ChainruleError(f"load: {path} has unreadable metadata ({exc})") from None
    if version > _FORMAT:
        raise cr.ChainruleError(f"load: {path} was written by a newer chainrule (format "
                                f"{version}; this one reads up to {_FORMAT})")
    state: dict[str, Any] = {}
    for name, array in arrays.items():
        _set(state, paths.get(name, [name]), array)
    for key_path, value in values:
        _set(state, key_path, value)
    if version < 2:
        _upgrade_from_format_1(state)
    return state


_LOAD_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile,
                zipfile.LargeZipFile, RuntimeError, NotImplementedError)


def _read_npz(path: str) -> tuple[dict[str, np.ndarray], str | None]:
    try:
        with open(path, "rb") as fileobj, np.load(fileobj, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except _LOAD_ERRORS as exc:
        raise cr.ChainruleError(f"load: {path} is corrupted or not a chainrule archive "
                                f"({type(exc).__name__}: {exc})") from None
    raw_meta = arrays.pop(_META_KEY, None)
    if raw_meta is None:
        return arrays, None
    try:
        return arrays, raw_meta.tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise cr.ChainruleError(f"load: {path} has unreadable metadata ({exc})") from None


def _read_safetensors(path: str) -> tuple[dict[str, np.ndarray], str | None]:
    st = _import_safetensors()
    try:
        with st.safe_open(path, framework="numpy") as fileobj:
            meta = fileobj.metadata() or {}
            arrays = {name: fileobj.get_tensor(name) for name in fileobj.keys()}  # noqa: SIM118
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001  (SafetensorError; TypeError for bfloat16)
        raise cr.ChainruleError(f"load: {path} is corrupted or holds what NumPy cannot "
                                f"({type(exc).__name__}: {exc})") from None
    raw_meta = meta.get(_META_KEY)
    if raw_meta is not None:        # the order save saw (the file's header is sorted)
        try:
            order = list(json.loads(raw_meta)["arrays"])
        except (ValueError, KeyError, TypeError):
            order = []
        arrays = {name: arrays[name] for name in order if name in arrays} | arrays
    return arrays, raw_meta


def _upgrade_from_format_1(state: dict[str, Any]) -> None:
    """Transpose the ``nn.Linear`` weights of a chainrule 0.1 checkpoint to ``(out, in)``.

    In 0.1 the only 2-D arrays ``cr.nn`` named ``weight`` were Linear's, stored ``(in,
    out)``: each such array is transposed, wherever it sits in the state. A checkpoint of
    ``chainrule train`` also holds the optimizer's buffers, keyed by parameter position;
    those of a transposed weight are transposed too (position ``i`` is the ``i``-th entry
    of the model's state, which in 0.1 listed exactly the parameters, in order).
    """
    stack = [state]
    while stack:
        tree = stack.pop()
        for key, value in tree.items():
            if isinstance(value, dict):
                stack.append(value)
            elif _is_old_linear_weight(key, value):
                tree[key] = np.ascontiguousarray(value.T)
        optimizer = tree.get("optimizer")
        model = tree.get("model")
        if isinstance(model, dict) and isinstance(optimizer, dict) \
                and isinstance(optimizer.get("state"), dict):
            names = list(model)
            for index, buffers in optimizer["state"].items():
                if not (isinstance(buffers, dict) and str(index).isdigit()
                        and int(index) < len(names)
                        and _is_old_linear_weight(names[int(index)], model[names[int(index)]])):
                    continue
                for name, value in buffers.items():
                    if isinstance(value, np.ndarray) and value.ndim == 2:
                        buffers[name] = np.ascontiguousarray(value.T)


def _is_old_linear_weight(key: str, value: Any) -> bool:
    return (isinstance(value, np.ndarray) and value.ndim == 2
            and (key == "weight" or key.endswith(".weight")))
