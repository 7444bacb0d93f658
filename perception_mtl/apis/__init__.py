from .test import build_test_parser, test
from .train import build_train_parser, load_config, train

__all__ = ["build_test_parser", "build_train_parser", "load_config", "test", "train"]
