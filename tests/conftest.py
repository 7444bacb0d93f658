import pytest
import torch


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip cleanly (with a reason) when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; none is available")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
