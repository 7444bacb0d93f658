"""Registries are MMEngine children in scope perception_mtl, and configs build without imports."""

import pathlib
import subprocess
import sys

import mmengine.registry as mm_root

from perception_mtl import registry

MODEL_CONFIG = (
    pathlib.Path(__file__).resolve().parents[1] / "configs" / "_base_" / "models" / "two_modality_multitask_net.py"
)


def test_every_registry_is_a_child_of_mmengines_root():
    names = [n for n in dir(mm_root) if n.isupper() and isinstance(getattr(mm_root, n), mm_root.Registry)]
    assert len(names) >= 20
    for name in names:
        ours = getattr(registry, name)
        assert ours.scope == "perception_mtl", name
        assert ours.parent is getattr(mm_root, name), name
        assert ours.name in registry.ALL_REGISTRIES


def test_every_location_imports():
    for reg in registry.ALL_REGISTRIES.values():
        reg.import_from_location()


def test_config_builds_in_a_fresh_process_without_manual_imports():
    # Only mmengine is imported: the default scope must pull in perception_mtl's modules (and the
    # model config's mmdet3d / mmdet parts through their scopes).
    code = (
        "from mmengine.config import Config\n"
        "from mmengine.registry import MODELS, DATASETS, METRICS, init_default_scope\n"
        "init_default_scope('perception_mtl')\n"
        f"m = MODELS.build(Config.fromfile({str(MODEL_CONFIG)!r}).model)\n"
        "d = DATASETS.build(dict(type='TwoModalityBEVDataset', num_samples=2))\n"
        "e = METRICS.build(dict(type='BEVSegIoUMetric'))\n"
        "print(type(m).__module__, type(d).__module__, type(e).__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "perception_mtl.models" in out and "perception_mtl.synthetic" in out and "perception_mtl.evaluation" in out


def test_mmengine_and_mmdet3d_modules_resolve_from_our_scope():
    from mmengine.registry import init_default_scope

    init_default_scope("perception_mtl")
    hook = registry.HOOKS.build(dict(type="IterTimerHook"))  # falls back to MMEngine's root
    assert type(hook).__name__ == "IterTimerHook"
    second = registry.MODELS.build(
        dict(type="mmdet3d.SECOND", in_channels=8, out_channels=[8, 16], layer_nums=[1, 1], layer_strides=[1, 2])
    )
    assert type(second).__module__.startswith("mmdet3d.")
