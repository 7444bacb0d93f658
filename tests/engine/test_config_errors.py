"""Config mistakes are named (issue 27): a misspelt registry type lists close matches, and an
unknown --cfg-options key is warned about with the level where its path breaks."""

import pathlib
import warnings

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import perception_mtl  # noqa: F401  (installs the registry hints)
from perception_mtl.apis.train import load_config, warn_unknown_cfg_options
from perception_mtl.registry import HOOKS, MODELS

TINY_CONFIG = str(pathlib.Path(__file__).resolve().parent / "configs" / "kill_resume_tiny.py")


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope("perception_mtl")


def test_misspelt_type_lists_close_matches():
    with pytest.raises(
        KeyError, match=r"TwoModalityMultiTaskNett is not in the .*did you mean 'TwoModalityMultiTaskNet'"
    ):
        MODELS.build(dict(type="TwoModalityMultiTaskNett"))
    with pytest.raises(KeyError, match=r"did you mean 'NonFiniteGuardHook'"):
        HOOKS.build(dict(type="NonFiniteGaurdHook"))
    # Other scopes' names are offered with their prefix.
    with pytest.raises(KeyError, match=r"did you mean 'mmdet3d.CenterHead'"):
        MODELS.build(dict(type="mmdet3d.CenterHaed"))
    with pytest.raises(KeyError, match="no close match registered"):
        MODELS.build(dict(type="Qwxzv"))


def test_misspelt_nested_type_is_named_when_the_runner_builds(tmp_path):
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.work_dir = str(tmp_path)
    cfg.model.heads.map.type = "BEVSegHaed"
    with pytest.raises(KeyError, match=r"BEVSegHaed is not in .*did you mean 'BEVSegHead'"):
        Runner.from_cfg(cfg)


def test_unknown_cfg_option_key_is_warned_with_close_matches():
    cfg = Config.fromfile(TINY_CONFIG)
    options = {
        "train_cfg.max_epoch": 2,  # typo of max_epochs
        "optim_wrapper.optimizer.lr": 0.1,  # known
        "param_scheduler.1.T_max": 3,  # known, through a list index
        "modle.tasks": ("det",),  # typo at the top level
    }
    with pytest.warns(UserWarning) as record:
        unknown = warn_unknown_cfg_options(cfg, options, "tiny.py")
    assert unknown == ["train_cfg.max_epoch", "modle.tasks"]
    messages = [str(w.message) for w in record]
    assert any(
        "'train_cfg.max_epoch' is not in tiny.py (train_cfg has no 'max_epoch'); did you mean 'train_cfg.max_epochs'?"
        in m
        for m in messages
    )
    assert any(
        "'modle.tasks' is not in tiny.py (the top level has no 'modle'); did you mean 'model'?" in m for m in messages
    )


def test_known_cfg_options_are_quiet_and_applied():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = load_config(TINY_CONFIG, {"train_cfg.max_epochs": 1, "default_hooks.logger.interval": 5}, None, "none")
    assert cfg.train_cfg.max_epochs == 1 and cfg.default_hooks.logger.interval == 5
