"""io: bit-exact round trips, no pickle execution, atomic saves, corrupted files."""
import os
import pickle

import numpy as np
import pytest

import chainrule as cr
import chainrule.io as crio


def sample_state():
    rng = np.random.default_rng(0)
    return {
        "model": {"0.weight": rng.standard_normal((3, 4)).astype(np.float32),
                  "0.bias": np.array([np.nan, np.inf, -0.0, 1e-45], dtype=np.float32)},
        "step": np.array(7, dtype=np.int64),
        "t": cr.tensor(np.arange(3.0)),
        "epoch": 3, "lr": 0.1, "name": "run", "hidden": [128, 64], "nothing": None,
        "rng": np.random.default_rng(1).bit_generator.state,
    }


def test_round_trip_is_bitwise_and_keeps_structure(tmp_path):
    path = tmp_path / "state.ckpt"  # no .npz suffix: the file must be written exactly here
    state = sample_state()
    cr.save(state, path)
    assert sorted(os.listdir(tmp_path)) == ["state.ckpt"]
    back = cr.load(path)
    for key in ("0.weight", "0.bias"):
        assert back["model"][key].dtype == state["model"][key].dtype
        assert back["model"][key].tobytes() == state["model"][key].tobytes()
    assert back["step"].dtype == np.int64 and int(back["step"]) == 7
    np.testing.assert_array_equal(back["t"], [0.0, 1.0, 2.0])
    assert (back["epoch"], back["lr"], back["name"], back["hidden"], back["nothing"]) == (
        3, 0.1, "run", [128, 64], None)
    assert back["rng"] == state["rng"]  # 128-bit integers survive


class Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("wrap", ["pickle", "npy"])
def test_malicious_pickle_is_not_executed(tmp_path, wrap):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    if wrap == "pickle":
        path.write_bytes(pickle.dumps({"w": Boom(str(marker))}))
    else:  # an .npz holding an object array (pickled inside)
        np.savez(path, w=np.array([Boom(str(marker))], dtype=object))
        assert not marker.exists()
    with pytest.raises(cr.ChainruleError, match="evil.npz"):
        cr.load(path)
    assert not marker.exists()


def test_object_arrays_are_refused_on_save(tmp_path):
    with pytest.raises(cr.ChainruleError, match="object array"):
        cr.save({"w": np.array([1, "a"], dtype=object)}, tmp_path / "x.npz")


def test_failed_save_leaves_old_checkpoint_loadable(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    cr.save({"w": np.arange(4.0)}, path)

    def half_write(fileobj, arrays):
        fileobj.write(b"PK\x03\x04 partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(crio, "_write_npz", half_write)
    with pytest.raises(OSError, match="disk full"):
        cr.save({"w": np.zeros(1000)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(cr.load(path)["w"], np.arange(4.0))
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # the temporary file was removed


def test_truncated_and_garbage_files_raise_chainrule_error(tmp_path):
    path = tmp_path / "ckpt.npz"
    cr.save(sample_state(), path)
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        path.write_bytes(data[:cut])
        with pytest.raises(cr.ChainruleError, match="ckpt.npz"):
            cr.load(path)
    path.write_bytes(b"hello world")
    with pytest.raises(cr.ChainruleError, match="not an .npz archive"):
        cr.load(path)
