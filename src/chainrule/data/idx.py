"""Reading IDX files, the format of MNIST and Fashion-MNIST (optionally gzipped)."""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np

import chainrule as cr

__all__ = ["read_idx", "load_mnist"]

# Third magic byte -> big-endian element type, from the IDX format description.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into an array in native byte order.

    The magic number (two zero bytes, a known type code, the number of dimensions) and the
    data size are checked; a bad file raises ``cr.ChainruleError`` naming it.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a-idx1-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(path)
    array([7, 8, 9], dtype=uint8)
    """
    path = Path(path)
    try:
        with open(path, "rb") as fileobj:
            gzipped = fileobj.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as fileobj:
            raw = fileobj.read()
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise cr.ChainruleError(f"IDX file {path} cannot be read: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise cr.ChainruleError(
            f"IDX file {path} has a bad magic number {raw[:4].hex() or '(empty)'}; expected "
            "00 00, a type code (08 09 0b 0c 0d 0e) and the number of dimensions"
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise cr.ChainruleError(f"IDX file {path} is truncated inside its header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise cr.ChainruleError(
            f"IDX file {path} holds {len(raw) - header} data bytes, but its header "
            f"(shape {shape}, {dtype.name}) needs {expected}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(directory: Path, stem: str, fashion: bool) -> Path:
    # Plain downloads, and torchvision's layout (<root>/MNIST/raw, <root>/FashionMNIST/raw).
    folders = [directory, directory / ("FashionMNIST" if fashion else "MNIST") / "raw"]
    for folder in folders:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    what = "Fashion-MNIST" if fashion else "MNIST"
    raise cr.ChainruleError(
        f"{what} file {stem}[.gz] not found in {directory}; download the four IDX files "
        f"of {what} into that directory"
    )


def load_mnist(directory: str | os.PathLike, kind: str = "train", fashion: bool = False,
               *, flatten: bool = True, dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST (or Fashion-MNIST, which uses the same file names) from IDX files.

    Parameters
    ----------
    directory : path
        Folder holding ``{kind}-images-idx3-ubyte[.gz]`` and ``{kind}-labels-idx1-ubyte[.gz]``.
    kind : {"train", "t10k"}
        Which split.
    fashion : bool
        Only changes messages and the torchvision sub-folder looked in.
    flatten : bool
        Return images as ``(n, rows * cols)`` rather than ``(n, rows, cols)``.
    dtype : numpy dtype, optional
        Image dtype (values scaled to [0, 1]); ``cr.default_dtype()`` otherwise.

    Returns
    -------
    images, labels : numpy.ndarray
        Images in [0, 1] and labels as int64.

    Examples
    --------
    >>> X, y = load_mnist("data/mnist", "t10k")  # doctest: +SKIP
    """
    if kind not in _MNIST_FILES:
        raise cr.ChainruleError(f"kind must be 'train' or 't10k', got {kind!r}")
    directory = Path(directory)
    image_stem, label_stem = _MNIST_FILES[kind]
    image_path = _find(directory, image_stem, fashion)
    label_path = _find(directory, label_stem, fashion)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise cr.ChainruleError(
            f"{image_path} should hold uint8 images of shape (n, rows, cols), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise cr.ChainruleError(
            f"{label_path} holds {labels.shape} labels for {len(images)} images in {image_path}"
        )
    dtype = np.dtype(cr.default_dtype() if dtype is None else dtype)
    X = images.astype(dtype) / dtype.type(255)
    if flatten:
        X = X.reshape(len(X), -1)
    return X, labels.astype(np.int64)
