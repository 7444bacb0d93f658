import pytest
import torch

from perception_mtl.apis.create_data import main as create_data
from perception_mtl.synthetic.driving.synthetic_nuscenes_writer import SyntheticNuScenesWriter


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Tests that need the generated synthetic nuScenes set (the ``synthetic_root`` fixture, directly or
    through another fixture) are ``slow``, so the fast tier (``-m 'not slow'``) never generates it. Tests
    marked ``gpu`` skip cleanly (with a reason) when no CUDA device is present."""
    for item in items:
        if "synthetic_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; none is available")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


TINY = dict(num_scenes=2, samples_per_scene=3, seed=7)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> str:
    """A tiny synthetic nuScenes (2 scenes x 3 key frames), generated once per session through the CLI
    (shared by the converter, devkit and dataset tests)."""
    root = str(tmp_path_factory.mktemp("synthetic_nuscenes"))
    create_data(
        [
            "synthetic",
            "--out-dir",
            root,
            "--scenes",
            str(TINY["num_scenes"]),
            "--samples-per-scene",
            str(TINY["samples_per_scene"]),
            "--seed",
            str(TINY["seed"]),
            "--workers",
            "2",
        ]
    )
    return root


@pytest.fixture(scope="session")
def synthetic_writer(synthetic_root) -> SyntheticNuScenesWriter:
    """A writer with the settings of ``synthetic_root`` (for its plans and token scheme; not run again)."""
    return SyntheticNuScenesWriter(synthetic_root, workers=1, progress=False, **TINY)


@pytest.fixture(scope="session")
def synthetic_plans(synthetic_writer):
    """The cities, ground rasters and scene plans behind ``synthetic_root`` (re-planned, not re-written)."""
    return synthetic_writer.plan()


@pytest.fixture(scope="session")
def nusc(synthetic_root):
    from nuscenes.nuscenes import NuScenes

    return NuScenes(version="v1.0-mini", dataroot=synthetic_root, verbose=False)
