"""Registry case of the visualisation hook (tests/test_registered_modules.py)."""

import os
import tempfile
from types import SimpleNamespace

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger

from perception_mtl.registry import HOOKS
from perception_mtl.testing import RegistryCase
from perception_mtl.testing.camera_calibration import tiny_cvgl_root


def check_visualization_hook(hook):
    from perception_mtl.datasets import CVGLStereoDataset

    dataset = CVGLStereoDataset(tiny_cvgl_root(), split="test")
    batch = pseudo_collate([dataset[0], dataset[1]])
    for sample in batch["data_samples"]:
        sample.pred_calib = sample.gt_calib + 0.05
    with tempfile.TemporaryDirectory() as work_dir:
        runner = SimpleNamespace(
            cfg=Config(dict()), work_dir=work_dir, epoch=3, logger=MMLogger.get_current_instance(), experiment_name="x"
        )
        hook.before_val_epoch(runner)
        hook.after_val_iter(runner, 0, batch, batch["data_samples"])
        assert not os.path.exists(os.path.join(work_dir, "vis"))
        hook.after_val_epoch(runner, {})
        assert sorted(os.listdir(os.path.join(work_dir, "vis", "epoch_3"))) == ["0000_stereo.png"]
    assert torch.is_tensor(batch["inputs"][0])


CASES = {
    "VisualizationHook": RegistryCase(HOOKS, dict(type="VisualizationHook", max_samples=1), check_visualization_hook),
}
