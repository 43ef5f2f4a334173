"""Small built-in datasets: seeded 2-D toy problems, scikit-learn's digits, MNIST by name.

Image sets (digits, MNIST, Fashion-MNIST) come as flat feature rows for an MLP, or with
``images=True`` as ``(N, 1, H, W)`` arrays for a convolutional network.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

import chainrule as cr

from .idx import load_mnist

__all__ = [
    "DATASETS",
    "IMAGE_DATASETS",
    "TOY_DATASETS",
    "Dataset",
    "circles",
    "digits",
    "load_dataset",
    "moons",
    "spiral",
    "xor",
]


class Dataset(NamedTuple):
    """A train/test split with its name and number of classes."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    num_classes: int

    @property
    def num_features(self) -> int:
        """Values per sample (64 for digits, whether flat or as 1x8x8 images)."""
        return int(np.prod(self.X_train.shape[1:], dtype=np.int64))

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(2,)`` for the toy sets, ``(1, 8, 8)`` for digit images."""
        return tuple(int(n) for n in self.X_train.shape[1:])


def _finish(X: np.ndarray, y: np.ndarray, rng: np.random.Generator,
            dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    # Shuffle so classes are interleaved (a split or a non-shuffled loader sees all of them).
    order = rng.permutation(len(X))
    dtype = np.dtype(cr.default_dtype() if dtype is None else dtype)
    return X[order].astype(dtype), y[order].astype(np.int64)


def xor(n: int = 200, noise: float = 0.1, seed: int = 0,
        dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Points around the four corners of ``[-1, 1]^2``; label 1 where the signs differ.

    Examples
    --------
    >>> X, y = xor(8, seed=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((8, 2), [0, 1])
    """
    rng = np.random.default_rng(seed)
    corners = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], dtype=np.float64)
    which = np.arange(n) % 4
    X = corners[which] + noise * rng.standard_normal((n, 2))
    y = (corners[which, 0] * corners[which, 1] < 0).astype(np.int64)
    return _finish(X, y, rng, dtype)


def spiral(n: int = 300, classes: int = 3, noise: float = 0.2, seed: int = 0,
           dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class (the CS231n toy problem); ``n`` points in all.

    Examples
    --------
    >>> X, y = spiral(300, classes=3)
    >>> X.shape, np.bincount(y).tolist()
    ((300, 2), [100, 100, 100])
    """
    rng = np.random.default_rng(seed)
    per_class = n // classes
    X = np.zeros((per_class * classes, 2))
    y = np.zeros(per_class * classes, dtype=np.int64)
    for k in range(classes):
        rows = slice(k * per_class, (k + 1) * per_class)
        radius = np.linspace(0.0, 1.0, per_class)
        theta = np.linspace(k * 4.0, (k + 1) * 4.0, per_class)
        theta = theta + noise * rng.standard_normal(per_class)
        X[rows] = np.column_stack([radius * np.sin(theta), radius * np.cos(theta)])
        y[rows] = k
    return _finish(X, y, rng, dtype)


def moons(n: int = 200, noise: float = 0.1, seed: int = 0,
          dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (as scikit-learn's ``make_moons``).

    Examples
    --------
    >>> X, y = moons(10)
    >>> X.shape, int(y.sum())
    ((10, 2), 5)
    """
    rng = np.random.default_rng(seed)
    n_out = n // 2
    n_in = n - n_out
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    outer = np.column_stack([np.cos(t_out), np.sin(t_out)])
    inner = np.column_stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5])
    X = np.vstack([outer, inner]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)]).astype(np.int64)
    return _finish(X, y, rng, dtype)


def circles(n: int = 200, noise: float = 0.05, factor: float = 0.5, seed: int = 0,
            dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """A small circle (label 1) inside a large one (label 0), as ``make_circles``.

    Examples
    --------
    >>> X, y = circles(10)
    >>> X.shape, int(y.sum())
    ((10, 2), 5)
    """
    rng = np.random.default_rng(seed)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    outer = np.column_stack([np.cos(t_out), np.sin(t_out)])
    inner = factor * np.column_stack([np.cos(t_in), np.sin(t_in)])
    X = np.vstack([outer, inner]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)]).astype(np.int64)
    return _finish(X, y, rng, dtype)


def _split(X: np.ndarray, y: np.ndarray, test_fraction: float,
           seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(len(X) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]


# What to tell a user who asks for digits without scikit-learn (it ships the images).
NEEDS_SKLEARN = ("the digits dataset comes with scikit-learn, which is not installed: "
                 "pip install 'chainrule[train]' (or pip install scikit-learn)")


def digits(test_fraction: float = 0.2, seed: int = 0, dtype: Any = None, *,
           images: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1,797 images), scaled to [0, 1], split with a seed.

    Parameters
    ----------
    images : bool
        Return samples as ``(N, 1, 8, 8)`` images (for a CNN) instead of 64 features.

    Returns
    -------
    X_train, y_train, X_test, y_test : numpy.ndarray

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = digits()  # doctest: +SKIP
    >>> X_train.shape[1]  # doctest: +SKIP
    64
    >>> digits(images=True)[0].shape  # doctest: +SKIP
    (1438, 1, 8, 8)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise cr.ChainruleError(NEEDS_SKLEARN) from None
    bunch = load_digits()
    dtype = np.dtype(cr.default_dtype() if dtype is None else dtype)
    X = (bunch.data / 16.0).astype(dtype)  # pixel values are 0..16
    if images:
        X = X.reshape(-1, 1, 8, 8)
    return _split(X, bunch.target.astype(np.int64), test_fraction, seed)


TOY_DATASETS = {"xor": xor, "spiral": spiral, "moons": moons, "circles": circles}
DATASETS = ("digits", "xor", "spiral", "moons", "circles", "mnist", "fashion-mnist")
IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist")


def load_dataset(name: str, *, seed: int = 0, n: int | None = None, data_dir: Any = None,
                 test_fraction: float = 0.2, dtype: Any = None, images: bool = False) -> Dataset:
    """Load a dataset by name as a ``Dataset`` (train/test split, name, class count).

    Parameters
    ----------
    name : str
        One of ``DATASETS``: ``digits``, ``xor``, ``spiral``, ``moons``, ``circles``,
        ``mnist``, ``fashion-mnist`` (the last two read IDX files from ``data_dir``).
    seed : int
        Seed of the data generation and of the train/test split.
    n : int, optional
        Number of points for the 2-D toy datasets.
    data_dir : path, optional
        Folder of the MNIST / Fashion-MNIST IDX files.
    images : bool
        Samples of an image set (``IMAGE_DATASETS``) as ``(N, 1, H, W)``, for a CNN.

    Examples
    --------
    >>> ds = load_dataset("moons", n=100)
    >>> ds.X_train.shape, ds.X_test.shape, ds.num_classes
    ((80, 2), (20, 2), 2)
    """
    if images and name not in IMAGE_DATASETS:
        raise cr.ChainruleError(f"{name} is not an image dataset; images=True needs one of "
                                f"{', '.join(IMAGE_DATASETS)}")
    if name in TOY_DATASETS:
        kwargs = {"seed": seed, "dtype": dtype}
        if n is not None:
            kwargs["n"] = n
        elif name == "spiral":
            kwargs["n"] = 600
        else:
            kwargs["n"] = 400
        X, y = TOY_DATASETS[name](**kwargs)
        parts = _split(X, y, test_fraction, seed + 1)
    elif name == "digits":
        parts = digits(test_fraction, seed, dtype, images=images)
    elif name in ("mnist", "fashion-mnist"):
        if data_dir is None:
            raise cr.ChainruleError(
                f"{name} is read from its IDX files (train-images-idx3-ubyte[.gz] and the "
                f"like): give data_dir, the folder that holds them")
        fashion = name == "fashion-mnist"
        train = load_mnist(data_dir, "train", fashion, flatten=not images, dtype=dtype)
        test = load_mnist(data_dir, "t10k", fashion, flatten=not images, dtype=dtype)
        if images:  # (n, rows, cols) -> (n, 1, rows, cols): one grey channel
            train, test = ((X[:, None], y) for X, y in (train, test))
        parts = (*train, *test)
    else:
        raise cr.ChainruleError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    num_classes = int(max(parts[1].max(), parts[3].max() if len(parts[3]) else 0)) + 1
    return Dataset(*parts, name=name, num_classes=num_classes)
