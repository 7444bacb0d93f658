"""Info and object-database pickles are read without running code from them."""

import os
import pickle

import mmengine
import numpy as np
import pytest

import perception_mtl  # noqa: F401  (puts the restricted loader behind mmengine.load)
from perception_mtl.engine.safe_pickle import safe_pickle_load


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_infos.pkl"
    with open(path, "wb") as f:
        pickle.dump({"metainfo": {}, "data_list": [_RunsCode(marker)]}, f)
    loaders = (
        lambda: safe_pickle_load(str(path)),
        lambda: mmengine.load(str(path)),  # how mmdet3d's Det3DDataset reads ann files
        lambda: mmengine.load(open(path, "rb"), file_format="pkl"),  # how DataBaseSampler reads dbinfos
    )
    for load in loaders:
        with pytest.raises(pickle.UnpicklingError, match=r"global (posix|os|nt)\.system"):
            load()
    with pytest.raises(pickle.UnpicklingError, match="evil_infos.pkl"):
        safe_pickle_load(str(path))
    assert not marker.exists()


def test_info_and_database_contents_still_load(tmp_path):
    data = {
        "metainfo": {"categories": {"car": 0}, "version": "v1.0-mini"},
        "data_list": [{"token": "t", "ego2global": [[1.0] * 4] * 4, "n": np.int64(3), "s": {1, 2}}],
        "car": [{"box3d_lidar": np.arange(7, dtype=np.float32), "score": np.float64(0.5)}],
    }
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        path = str(tmp_path / f"p{protocol}.pkl")
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=protocol)
        loaded = mmengine.load(path)
        assert loaded["data_list"][0]["n"] == 3 and loaded["data_list"][0]["s"] == {1, 2}
        assert np.array_equal(loaded["car"][0]["box3d_lidar"], np.arange(7, dtype=np.float32))
