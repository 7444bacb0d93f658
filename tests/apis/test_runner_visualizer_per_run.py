"""Two Runners built in one process (a notebook, a test session) each log into their own work_dir.

mmengine keeps one Visualizer per name for the whole process; a fixed name in the shared runtime
config sent the second run's scalars.json into the first run's directory (seen in CI).
"""

import pathlib

from mmengine.config import Config
from mmengine.runner import Runner

from perception_mtl.testing import config_path

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _local_save_dir(runner: Runner) -> pathlib.Path:
    backend = runner.visualizer.get_backend("LocalVisBackend")
    return pathlib.Path(backend._save_dir)


def test_each_runner_writes_scalars_under_its_own_work_dir(tmp_path):
    runners = []
    for name in ("grad_balance_two_task_ew", "ugcl_calib_demo"):
        cfg = Config.fromfile(str(config_path(f"{name}.py")))
        cfg.work_dir = str(tmp_path / name)
        runners.append(Runner.from_cfg(cfg))
    for runner, name in zip(runners, ("grad_balance_two_task_ew", "ugcl_calib_demo")):
        assert _local_save_dir(runner).is_relative_to(tmp_path / name), _local_save_dir(runner)
        runner.visualizer.add_scalars({"probe": 1.0}, step=0)
        assert (_local_save_dir(runner) / "scalars.json").is_file()
    assert runners[0].visualizer is not runners[1].visualizer
