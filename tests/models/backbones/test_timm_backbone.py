"""TimmBackbone: ResNet and Swin families, NCHW outputs, local checkpoints only, frozen stages."""

import pytest
import torch

from perception_mtl.models.backbones import TimmBackbone


def test_swin_outputs_are_channels_first():
    backbone = TimmBackbone("swin_tiny_patch4_window7_224", out_indices=(1, 2, 3), img_size=(64, 96))
    feats = backbone(torch.randn(1, 3, 64, 96))
    assert backbone.out_channels == [192, 384, 768] and backbone.strides == [8, 16, 32]
    assert [tuple(f.shape) for f in feats] == [(1, 192, 8, 12), (1, 384, 4, 6), (1, 768, 2, 3)]


def test_local_checkpoint_round_trip_and_errors(tmp_path):
    source = TimmBackbone("resnet18", out_indices=(2, 3, 4)).eval()
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in source.model.state_dict().items()}}, path)
    loaded = TimmBackbone("resnet18", out_indices=(2, 3, 4), checkpoint=str(path), checkpoint_prefix="backbone.")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(source(x), loaded.eval()(x)))
    with pytest.raises(ValueError, match="no key of checkpoint"):
        TimmBackbone("resnet18", checkpoint=str(path))  # wrong prefix: nothing matches
    with pytest.raises(FileNotFoundError):
        TimmBackbone("resnet18", checkpoint=str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="no downloads"):
        TimmBackbone("resnet18", pretrained=True)


def test_frozen_stages_stay_frozen_in_train_mode():
    backbone = TimmBackbone("resnet18", out_indices=(2, 3, 4), frozen_stages=0).train()
    frozen = [n for n, p in backbone.named_parameters() if not p.requires_grad]
    assert any(n.startswith("model.layer2") for n in frozen) and not any("layer3" in n for n in frozen)
    assert not backbone.model.bn1.training and backbone.model.layer3.training
