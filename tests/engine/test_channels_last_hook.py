"""ChannelsLastHook: converts conv weights in place, trains to the same weights, and its benchmark row."""

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from perception_mtl.engine.hooks.channels_last_hook import ChannelsLastHook, convert_conv_weights_to_channels_last


class _ConvNet(BaseModel):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        # A 1x1 weight is already channels-last contiguous. No bias before the BN: its gradient is
        # rounding noise, which Adam would scale up into layout-dependent steps.
        self.point = nn.Conv2d(8, 8, 1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 2)

    def forward(self, inputs, data_samples=None, mode="tensor"):
        out = self.fc(self.bn(self.point(self.conv(inputs).relu())).mean((2, 3)))
        if mode == "loss":
            return {"loss": out.square().mean()}
        return out


class _Images(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        return dict(inputs=torch.randn(3, 12, 12, generator=torch.Generator().manual_seed(index)))


def test_convert_keeps_parameter_objects_and_values():
    model = _ConvNet()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = list(model.parameters())
    assert convert_conv_weights_to_channels_last(model) == 1
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not model.conv.weight.is_contiguous()
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert convert_conv_weights_to_channels_last(model) == 0


def _train(tmp_path, hooks):
    torch.manual_seed(0)
    # The Runner's default_scope is 'mmengine' unless given, and it becomes the current scope: our
    # hook was found only when both runs of a test started in the same second (an mmengine
    # DefaultScope instance named by the timestamp was then reused).
    runner = Runner(
        model=_ConvNet(),
        default_scope="perception_mtl",
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=_Images(),
            batch_size=4,
            sampler=dict(type="DefaultSampler", shuffle=False),
            collate_fn=dict(type="default_collate"),
        ),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9)),  # Adam would magnify rounding
        train_cfg=dict(by_epoch=True, max_epochs=2),
        custom_hooks=hooks,
        default_hooks=dict(checkpoint=None, logger=None),
        env_cfg=dict(dist_cfg=dict(backend="gloo")),
        randomness=dict(seed=0),
    )
    runner.train()
    return runner.model


def test_hook_converts_before_training_and_changes_no_result(tmp_path):
    plain = _train(tmp_path / "plain", [])
    converted = _train(tmp_path / "cl", [dict(type="ChannelsLastHook")])
    assert converted.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not plain.conv.weight.is_contiguous(memory_format=torch.channels_last)
    for (name, a), b in zip(plain.named_parameters(), converted.parameters()):
        assert torch.allclose(a, b, atol=1e-5), name
    assert ChannelsLastHook.priority == "VERY_HIGH"


@pytest.mark.slow
def test_benchmark_row_on_the_ugcl_demo_config():
    from benchmarks.channels_last import time_config
    from perception_mtl.testing.camera_calibration import tiny_cvgl_root

    data = tiny_cvgl_root()
    options = {
        "train_dataloader.dataset.data_root": data,
        "train_dataloader.batch_size": 3,
        "model.backbone.model_name": "test_resnet",
        "model.fusion_channels": 16,
        "model.head.hidden_channels": [16],
    }
    row = time_config("configs/ugcl/ugcl_calib_demo.py", batches=1, repeats=1, options=options)
    assert row["config"] == "ugcl_calib_demo.py" and row["conv_weights"] > 0
    assert row["step_vs_default"] > 0 and row["loss_rel_diff"] < 1e-4
    # bfloat16 keeps ~3 significant digits: close to the float32 loss, but not equal to it.
    assert row["bf16_step_vs_default"] > 0 and 0 < row["bf16_loss_rel_diff"] < 0.05
