from perception_mtl.registry import DATASETS
from perception_mtl.testing import RegistryCase


def check_toy_dataset(dataset):
    item = dataset[0]
    assert set(item) == {"inputs", "data_samples"}
    assert item["inputs"]["bev"].shape == (2, 16, 16)


CASES = {
    "ToyBEVDataset": RegistryCase(DATASETS, dict(type="ToyBEVDataset", num_samples=3, grid_size=16), check_toy_dataset),
}
