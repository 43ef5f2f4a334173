"""io: bit-exact round trips, no pickle execution, atomic saves, corrupted files."""
import json
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


# -- safetensors -------------------------------------------------------------------------------
def test_safetensors_round_trip_keeps_structure_and_values(tmp_path):
    pytest.importorskip("safetensors")
    path = tmp_path / "state.safetensors"
    state = sample_state()
    cr.save(state, path)
    assert sorted(os.listdir(tmp_path)) == ["state.safetensors"]
    with open(path, "rb") as f:
        assert f.read(10)[8:9] == b"{"          # really the safetensors format, not an npz
    back = cr.load(path)
    for key in ("0.weight", "0.bias"):
        assert back["model"][key].tobytes() == state["model"][key].tobytes()
    assert (back["epoch"], back["name"], back["hidden"], back["nothing"]) == (3, "run", [128, 64],
                                                                                None)
    assert back["rng"] == state["rng"]
    assert back["step"].shape == () and int(back["step"]) == 7


@pytest.mark.parametrize("view", ["T", "reversed", "strided"])
def test_safetensors_writes_views_correctly(tmp_path, view):
    # safetensors 0.8.0 writes a non-contiguous array's underlying buffer without an error
    st = pytest.importorskip("safetensors.numpy")
    a = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    v = {"T": a.T, "reversed": a[::-1], "strided": a[:, ::2]}[view]
    path = tmp_path / "v.safetensors"
    cr.save({"v": v}, path)
    np.testing.assert_array_equal(cr.load(path)["v"], v)
    np.testing.assert_array_equal(st.load_file(str(path))["v"], v)


def test_safetensors_refuses_strings_and_reads_files_from_other_writers(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    with pytest.raises(cr.ChainruleError, match="safetensors format cannot hold"):
        cr.save({"names": np.array(["a", "b"])}, tmp_path / "s.safetensors")
    path = tmp_path / "plain.safetensors"
    st.save_file({"b": np.ones(2, np.float64), "a": np.zeros((2, 2), np.int32)}, str(path))
    back = cr.load(path)
    assert sorted(back) == ["a", "b"] and back["a"].dtype == np.int32
    path.write_bytes(path.read_bytes()[:-3])            # truncated
    with pytest.raises(cr.ChainruleError, match="plain.safetensors"):
        cr.load(path)


def test_save_into_a_missing_folder_names_the_folder(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(cr.ChainruleError, match=f"folder {missing} does not exist"):
        cr.save({"w": np.ones(1)}, missing / "ckpt.npz")
    with pytest.raises(cr.ChainruleError, match="is a folder"):
        cr.save({"w": np.ones(1)}, tmp_path)


# -- checkpoints written by chainrule 0.1 --------------------------------------------------------
def _write_format_1(path, state):
    """What chainrule 0.1's cr.save wrote: arrays by dotted path, metadata with format 1."""
    arrays, paths, values = {}, {}, []
    crio._flatten(state, (), arrays, paths, values)
    meta = json.dumps({"format": 1, "arrays": paths, "values": values})
    arrays["__chainrule__"] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)
    np.savez(path, **arrays)


def test_checkpoints_from_0_1_load_with_linear_weights_transposed(tmp_path):
    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Linear(3, 3), cr.nn.ReLU(), cr.nn.Linear(3, 2))
    opt = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = cr.tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    model(x).sum().backward()
    opt.step()
    # the same state as 0.1 stored it: every Linear weight (in, out), momentum alike
    new_state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 2}
    old_state = {"model": {k: (v.T.copy() if k.endswith("weight") else v)
                           for k, v in new_state["model"].items()},
                 "optimizer": opt.state_dict(), "epoch": 2}
    for index, buffers in old_state["optimizer"]["state"].items():
        for name, value in buffers.items():
            if value.ndim == 2:
                buffers[name] = value.T.copy()
    path = tmp_path / "old.npz"
    _write_format_1(path, old_state)
    back = cr.load(path)
    for key, value in new_state["model"].items():
        np.testing.assert_array_equal(back["model"][key], value)
        assert back["model"][key].flags.c_contiguous
    for index, buffers in new_state["optimizer"]["state"].items():
        for name, value in buffers.items():
            np.testing.assert_array_equal(back["optimizer"]["state"][index][name], value)
    fresh = cr.nn.Sequential(cr.nn.Linear(3, 3), cr.nn.ReLU(), cr.nn.Linear(3, 2))
    fresh.load_state_dict(back["model"])
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())
    # a state saved today is not transposed again, and says which format it is
    cr.save(new_state, tmp_path / "new.npz")
    np.testing.assert_array_equal(cr.load(tmp_path / "new.npz")["model"]["0.weight"],
                                  new_state["model"]["0.weight"])
    with np.load(tmp_path / "new.npz") as archive:
        assert json.loads(archive["__chainrule__"].tobytes())["format"] == 2


def test_a_file_from_a_newer_format_is_refused(tmp_path):
    path = tmp_path / "future.npz"
    meta = json.dumps({"format": 99, "arrays": {}, "values": []})
    np.savez(path, __chainrule__=np.frombuffer(meta.encode(), dtype=np.uint8))
    with pytest.raises(cr.ChainruleError, match="newer chainrule"):
        cr.load(path)
