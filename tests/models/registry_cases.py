import torch

from perception_mtl.registry import DATASETS, MODELS
from perception_mtl.testing import RegistryCase, check_model_trains


def _toy_batch(n=2):
    dataset = DATASETS.build(dict(type="ToyBEVDataset", num_samples=n, grid_size=16))
    items = [dataset[i] for i in range(n)]
    return dict(
        inputs=dict(bev=[it["inputs"]["bev"] for it in items]), data_samples=[it["data_samples"] for it in items]
    )


def check_toy_segmentor(model):
    check_model_trains(model, _toy_batch())
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(_toy_batch(), training=False), mode="predict")
    assert len(preds) == 2 and preds[0].pred_bev_seg.shape == (2, 16, 16)


CASES = {
    "ToyBEVSegmentor": RegistryCase(MODELS, dict(type="ToyBEVSegmentor", base_channels=4), check_toy_segmentor),
}
