"""Tests for vaecore.data.safe_pickle: numpy arrays and plain data load, code never runs."""
import os
import pickle

import numpy as np
import pytest

from vaecore.data.errors import CorruptDataError
from vaecore.data.safe_pickle import loads


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_arrays_and_plain_data_round_trip(protocol):
    data = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [1, 2, 3],
            b"name": b"batch", b"scale": 0.5}
    out = loads(pickle.dumps(data, protocol=protocol), "memory")
    np.testing.assert_array_equal(out[b"data"], data[b"data"])
    assert out[b"data"].dtype == np.uint8
    assert {k: v for k, v in out.items() if k != b"data"} == {
        k: v for k, v in data.items() if k != b"data"}


class _Touch:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


@pytest.mark.parametrize("protocol", [2, 5])
def test_code_in_a_pickle_is_refused_before_it_runs(tmp_path, protocol):
    marker = tmp_path / "code-ran"
    with pytest.raises(CorruptDataError, match=r"^planted.bin: .*global (posix|os)\.mkdir, "
                                               r"which is refused"):
        loads(pickle.dumps([1, _Touch(marker)], protocol=protocol), "planted.bin")
    assert not marker.exists()


@pytest.mark.parametrize("blob", [b"cbuiltins\neval\n(S'1+1'\ntR.", b"not a pickle", b""])
def test_other_globals_and_garbage_are_corrupt_data(blob):
    with pytest.raises(CorruptDataError, match=r"^f: not unpickled"):
        loads(blob, "f")
