from __future__ import annotations

import struct

import numpy as np
import pytest

from containers.toolkit import ndarray_file


def test_single_array_layout_is_byte_exact():
    array = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=np.float32)
    expected = (
        struct.pack("<QQQ", 0x112, 0, 1)
        + struct.pack("<Ii", 0xF993FAC9, 0)  # V2 magic, dense storage
        + struct.pack("<Iqq", 2, 3, 2)  # ndim, shape
        + struct.pack("<iii", 1, 0, 0)  # cpu(0), float32
        + array.tobytes()
        + struct.pack("<Q", 0)  # no names
    )
    assert ndarray_file.dumps([array]) == expected


def test_named_arrays_round_trip(tmp_path):
    arrays = {
        "mean": np.arange(3, dtype=np.float32).reshape(1, 3),
        "s": np.array([1.5, 2.5], dtype=np.float32),
        "v": np.arange(6, dtype=np.float32).reshape(3, 2),
    }
    path = tmp_path / "model_algo-1"
    ndarray_file.save(path, arrays)
    loaded = ndarray_file.load(path)
    assert isinstance(loaded, dict)
    assert list(loaded) == ["mean", "s", "v"]
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == np.float32
    assert path.read_bytes().endswith(struct.pack("<Q", 1) + b"v")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"PK\x03\x04" + b"\0" * 30, "not an MXNet NDArray file"),
        (struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Ii", 0xF993FAC9, 0), "file ends"),
    ],
)
def test_bad_files_raise(payload, message):
    with pytest.raises(ndarray_file.NDArrayFileError, match=message):
        ndarray_file.loads(payload)


def test_unnamed_list_round_trip_keeps_dtypes(tmp_path):
    arrays = [np.arange(4, dtype=np.float64).reshape(2, 2), np.array([1, 2, 3], dtype=np.int32)]
    path = tmp_path / "arrays"
    ndarray_file.save(path, arrays)
    loaded = ndarray_file.load(path)
    assert isinstance(loaded, list)
    for got, want in zip(loaded, arrays, strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype


def test_names_must_match_arrays():
    with pytest.raises(ndarray_file.NDArrayFileError, match="2 names for 1 arrays"):
        ndarray_file.dumps([np.zeros(1, dtype=np.float32)], ["a", "b"])


def test_unsupported_dtype_is_refused():
    with pytest.raises(ndarray_file.NDArrayFileError, match="no MXNet type flag"):
        ndarray_file.dumps([np.zeros(2, dtype=np.complex64)])
