"""data: IDX reading (raw and gzipped, bad files), MNIST layout, loader, built-in datasets."""
import gzip
import struct

import numpy as np
import pytest

import chainrule as cr


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data: bytes, gz: bool):
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_reads_raw_and_gzipped_idx(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write(tmp_path / f"t10k-images-idx3-ubyte{suffix}", idx_bytes(images), gz)
    write(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz)
    X, y = cr.data.load_mnist(tmp_path, "t10k", dtype=np.float64)
    assert X.shape == (5, 12) and X.dtype == np.float64
    np.testing.assert_array_equal(X, images.reshape(5, 12) / 255.0)
    np.testing.assert_array_equal(y, [3, 1, 4, 1, 5])
    assert y.dtype == np.int64


def test_read_idx_big_endian_types(tmp_path):
    values = np.array([[1, -2], [300, 40000]], dtype=np.int32)
    (tmp_path / "a").write_bytes(idx_bytes(values, 0x0C))
    np.testing.assert_array_equal(cr.data.read_idx(tmp_path / "a"), values)
    floats = np.array([1.5, -2.25])
    (tmp_path / "b").write_bytes(idx_bytes(floats, 0x0E))
    np.testing.assert_array_equal(cr.data.read_idx(tmp_path / "b"), floats)


def test_bad_idx_files_raise_clear_errors(tmp_path):
    good = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))
    (tmp_path / "magic").write_bytes(b"\x08\x03" + good[2:])
    with pytest.raises(cr.ChainruleError, match="bad magic number"):
        cr.data.read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(good[:-1])
    with pytest.raises(cr.ChainruleError, match="holds 5 data bytes.*needs 6"):
        cr.data.read_idx(tmp_path / "short")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(cr.ChainruleError, match="bad magic"):
        cr.data.read_idx(tmp_path / "empty")
    with pytest.raises(cr.ChainruleError, match="not found"):
        cr.data.load_mnist(tmp_path, "train")


def test_loader_batches_cover_each_epoch_once_and_differ_between_epochs():
    X = np.arange(10)[:, None] * np.ones((1, 2))
    y = np.arange(10)
    loader = cr.data.DataLoader(X, y, batch_size=4, seed=0)
    assert len(loader) == 3
    epochs = []
    for _ in range(2):
        batches = list(loader)
        assert [len(yb) for _, yb in batches] == [4, 4, 2]
        for xb, yb in batches:
            np.testing.assert_array_equal(xb[:, 0], yb)
        seen = np.concatenate([yb for _, yb in batches])
        assert sorted(seen.tolist()) == list(range(10))
        epochs.append(seen)
    assert not np.array_equal(epochs[0], epochs[1])
    assert len(cr.data.DataLoader(X, y, batch_size=4, drop_last=True)) == 2


def test_loader_resumes_mid_epoch_with_the_same_batches():
    X, y = np.arange(20), np.arange(20)
    ref = cr.data.DataLoader(X, y, batch_size=3, seed=5)
    expected = [yb.tolist() for _ in range(2) for _, yb in ref]

    loader = cr.data.DataLoader(X, y, batch_size=3, seed=5)
    got = []
    for i, (_, yb) in enumerate(loader):
        got.append(yb.tolist())
        if i == 2:
            state = loader.state_dict()
            break
    resumed = cr.data.DataLoader(X, y, batch_size=3, seed=123)
    resumed.load_state_dict(state)
    got += [yb.tolist() for _ in range(2) for _, yb in resumed][: len(expected) - len(got)]
    assert got == expected


@pytest.mark.parametrize("name", ["xor", "spiral", "moons", "circles"])
def test_toy_datasets_are_seeded(name):
    a = cr.data.load_dataset(name, seed=1)
    b = cr.data.load_dataset(name, seed=1)
    c = cr.data.load_dataset(name, seed=2)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, c.X_train)
    assert a.num_features == 2 and a.num_classes == (3 if name == "spiral" else 2)
    assert len(a.X_train) + len(a.X_test) == (600 if name == "spiral" else 400)


def test_digits_scaled_and_split():
    pytest.importorskip("sklearn")
    X_train, y_train, X_test, y_test = cr.data.digits(seed=0)
    assert X_train.shape[1] == 64 and len(X_train) + len(X_test) == 1797
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    assert set(y_test.tolist()) == set(range(10))


def test_unknown_dataset():
    with pytest.raises(cr.ChainruleError, match="unknown dataset 'nope'"):
        cr.data.load_dataset("nope")
