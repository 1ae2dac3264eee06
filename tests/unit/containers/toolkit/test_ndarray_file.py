from __future__ import annotations

import struct

import numpy as np
import pytest

from containers.toolkit import ndarray_file
from tests.unit.containers.toolkit.mxnet_reader import mx_nd_load, read_ndarray_list


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


# ---------------------------------------------------------------- known answers from MXNet's published format


def _v2_dense(dims, type_flag, data):
    return (
        (0xF993FAC9).to_bytes(4, "little")
        + (0).to_bytes(4, "little", signed=True)
        + len(dims).to_bytes(4, "little", signed=True)
        + b"".join(d.to_bytes(8, "little", signed=True) for d in dims)
        + (1).to_bytes(4, "little", signed=True)  # cpu
        + (0).to_bytes(4, "little", signed=True)  # device 0
        + type_flag.to_bytes(4, "little", signed=True)
        + data
    )


def test_the_pca_artifact_layout_is_byte_exact_and_mx_nd_load_sees_s_v_mean(tmp_path):
    """The AWS PCA artifact as ``mx.nd.load`` prints it: a dict of s (k,), v (d, k), mean (1, d), in that order."""
    from containers.pca.model import save_model

    s, v, mean = np.array([1.0, 2.0]), np.array([[0.5, -0.5], [0.25, 0.75], [1.0, 0.0]]), np.array([3.0, 4.0, 5.0])
    save_model(tmp_path, mean, s, v)
    raw = (tmp_path / "model_algo-1").read_bytes()
    expected = (
        (0x112).to_bytes(8, "little")
        + (0).to_bytes(8, "little")
        + (3).to_bytes(8, "little")
        + _v2_dense([2], 0, s.astype("<f4").tobytes())
        + _v2_dense([3, 2], 0, v.astype("<f4").tobytes())
        + _v2_dense([1, 3], 0, mean.astype("<f4").tobytes())
        + (3).to_bytes(8, "little")
        + b"".join(len(n).to_bytes(8, "little") + n for n in (b"s", b"v", b"mean"))
    )
    assert raw == expected
    loaded = mx_nd_load(raw)
    assert list(loaded) == ["s", "v", "mean"]
    np.testing.assert_array_equal(loaded["v"], v.astype(np.float32))


def test_the_kmeans_artifact_is_an_unnamed_list_of_one_float32_array(tmp_path):
    from containers.kmeans.model import save_centers

    centers = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    save_centers(tmp_path, centers)
    arrays, names, headers = read_ndarray_list((tmp_path / "model_algo-1").read_bytes())
    assert names == [] and len(arrays) == 1
    assert headers == [{"ndim": 2, "dev_type": 1, "dev_id": 0, "type_flag": 0}]
    np.testing.assert_array_equal(arrays[0], centers.astype(np.float32))


@pytest.mark.parametrize(
    ("dtype", "flag"),
    [("<f4", 0), ("<f8", 1), ("<f2", 2), ("u1", 3), ("<i4", 4), ("i1", 5), ("<i8", 6)],
)
def test_every_mshadow_type_flag(dtype, flag):
    array = np.arange(6).astype(dtype).reshape(2, 3)
    raw = ndarray_file.dumps([array])
    _, _, headers = read_ndarray_list(raw)
    assert headers[0]["type_flag"] == flag
    np.testing.assert_array_equal(mx_nd_load(raw)[0], array)


def test_a_scalar_is_written_with_shape_1_because_mxnet_reads_ndim_0_as_none():
    [value] = mx_nd_load(ndarray_file.dumps([np.float32(2.5)]))
    assert value.shape == (1,) and value[0] == 2.5


def test_the_reader_takes_none_arrays_and_mxnets_older_and_numpy_layouts():
    f4 = np.array([1.5, -2.0], dtype="<f4").tobytes()
    none_v2 = struct.pack("<Iii", 0xF993FAC9, 0, 0)
    v1 = struct.pack("<Iiq", 0xF993FAC8, 1, 2) + struct.pack("<iii", 1, 0, 0) + f4
    legacy = struct.pack("<IIi", 1, 2, 1) + struct.pack("<ii", 0, 0) + f4  # ndim, uint32 dims, ctx, type flag
    v3_scalar = struct.pack("<Iii", 0xF993FACA, 0, 0) + struct.pack("<iii", 1, 0, 1) + struct.pack("<d", 7.0)
    raw = struct.pack("<QQQ", 0x112, 0, 4) + none_v2 + v1 + legacy + v3_scalar + struct.pack("<Q", 0)
    none, first, second, scalar = ndarray_file.loads(raw)[0]
    assert none.size == 0
    np.testing.assert_array_equal(first, [1.5, -2.0])
    np.testing.assert_array_equal(second, [1.5, -2.0])
    assert scalar.shape == () and float(scalar) == 7.0
