"""``save`` / ``load``: checkpoints as ``.npz`` archives, written atomically, never pickled.

A state is a (possibly nested) dict whose leaves are arrays, tensors, or plain JSON values
(numbers, strings, booleans, ``None``, lists of these). Arrays go into the archive under
their dotted path; the other leaves and the nesting itself go into one small JSON entry,
so ``load`` gives back the same structure, numbers as Python numbers.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any, Mapping

import numpy as np

import chainrule as cr

__all__ = ["save", "load"]

_META_KEY = "__chainrule__"
_FORMAT = 1


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
    """Write ``state`` to exactly ``path`` as an ``.npz`` archive, atomically.

    The archive is written to a temporary file in the same directory, flushed and fsynced,
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
    meta = json.dumps({"format": _FORMAT, "arrays": paths, "values": values})
    arrays[_META_KEY] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fileobj:
            _write_npz(fileobj, arrays)
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
    """Read a state written by ``save`` (or any ``.npz`` of plain arrays).

    Never unpickles: a pickle, a truncated or corrupted archive, or one holding object
    arrays raises ``cr.ChainruleError`` naming the file.

    Examples
    --------
    >>> import numpy as np, chainrule as cr, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> cr.save({"w": np.ones(2)}, path)
    >>> cr.load(path)["w"]
    array([1., 1.])
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fileobj:
            if fileobj.read(4) != b"PK\x03\x04":
                raise cr.ChainruleError(f"load: {path} is not an .npz archive")
            fileobj.seek(0)
            with np.load(fileobj, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
    except cr.ChainruleError:
        raise
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile,
            RuntimeError, NotImplementedError) as exc:
        raise cr.ChainruleError(f"load: {path} is corrupted or not a chainrule archive "
                                f"({type(exc).__name__}: {exc})") from None

    raw_meta = arrays.pop(_META_KEY, None)
    if raw_meta is None:
        return arrays
    try:
        meta = json.loads(raw_meta.tobytes().decode("utf-8"))
        paths = meta["arrays"]
        values = meta["values"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise cr.ChainruleError(f"load: {path} has unreadable metadata ({exc})") from None
    state: dict[str, Any] = {}
    for name, array in arrays.items():
        _set(state, paths.get(name, [name]), array)
    for key_path, value in values:
        _set(state, key_path, value)
    return state
