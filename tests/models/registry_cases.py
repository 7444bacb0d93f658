import torch

from perception_mtl.registry import DATASETS, MODELS
from perception_mtl.testing import RegistryCase, check_model_trains
from perception_mtl.testing.two_modality import two_modality_net_cfg


def check_two_modality_multitask_net(model):
    from mmengine.dataset import pseudo_collate

    dataset = DATASETS.build(dict(type="TwoModalityBEVDataset", num_samples=2, grid_size=16))
    batch = pseudo_collate([dataset[0], dataset[1]])
    losses = check_model_trains(model, batch)
    assert set(losses) == {"det.loss_heatmap", "det.loss_offset", "map.loss_bce"}
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(batch, training=False), mode="predict")
    assert preds[0].pred_bev_seg.shape == (2, 16, 16) and preds[0].pred_centers.shape[1] == 2


CASES = {
    "TwoModalityMultiTaskNet": RegistryCase(
        MODELS, two_modality_net_cfg(branch_channels=4, shared_channels=8), check_two_modality_multitask_net
    ),
}


def _dense_scenes_batch(n=2, img_size=32):
    from mmengine.dataset import pseudo_collate

    dataset = DATASETS.build(dict(type="SyntheticDenseScenes", num_samples=n, img_size=img_size))
    return pseudo_collate([dataset[i] for i in range(n)])


def check_multitask_dense_predictor(model):
    from perception_mtl.testing.moe import check_moe_model_trains

    batch = _dense_scenes_batch()
    losses = check_moe_model_trains(model, batch)
    assert set(losses) == {"seg.loss_ce", "depth.loss_log_l1", "edge.loss_bce", "moe.loss_balance"}
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(batch, training=False), mode="predict")
    assert preds[0].pred_sem_seg.shape == preds[0].pred_depth.shape == preds[0].pred_edge.shape == (32, 32)


CASES["MultiTaskDensePredictor"] = RegistryCase(
    MODELS,
    dict(
        type="MultiTaskDensePredictor",
        data_preprocessor=dict(type="ImgDataPreprocessor", mean=[127.5] * 3, std=[127.5] * 3),
        backbone=dict(
            type="ViTMoE",
            img_size=32,
            patch_size=8,
            embed_dim=16,
            depth=2,
            num_heads=2,
            moe_cfg=dict(num_experts=4, top_k=2),
            out_indices=(0, 1),
            feature_scales=(2.0, 1.0),
        ),
        heads=dict(
            seg=dict(type="DenseSemSegHead", num_classes=5, channels=8, num_convs=1),
            depth=dict(type="DenseDepthHead", channels=8, num_convs=1),
            edge=dict(type="DenseEdgeHead", channels=8, num_convs=1),
        ),
    ),
    check_multitask_dense_predictor,
)
