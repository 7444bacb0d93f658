"""Every module registered in scope perception_mtl builds from a small config and runs on CPU.

Cases live beside each area's tests in ``tests/<area>/registry_cases.py`` (``CASES`` dicts of
``perception_mtl.testing.RegistryCase``). ``test_every_registered_module_has_a_case`` fails until
a newly registered module has one. Model checks also run backward and require a gradient on every
parameter.
"""

import importlib.util
import pathlib

import pytest
from mmengine.registry import init_default_scope

from perception_mtl.registry import ALL_REGISTRIES

TESTS = pathlib.Path(__file__).resolve().parent


def _load_cases() -> dict:
    cases = {}
    for path in sorted(TESTS.rglob("registry_cases*.py")):
        spec = importlib.util.spec_from_file_location(
            "registry_cases." + ".".join(path.relative_to(TESTS).with_suffix("").parts), path
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        duplicated = set(cases) & set(module.CASES)
        assert not duplicated, f"{path}: cases defined twice: {duplicated}"
        cases.update(module.CASES)
    return cases


CASES = _load_cases()


def _registered_names() -> set[str]:
    names = set()
    for reg in ALL_REGISTRIES.values():
        reg.import_from_location()
        names.update(reg.module_dict)
    return names


def test_every_registered_module_has_a_case():
    missing = _registered_names() - set(CASES)
    assert not missing, f"add a RegistryCase in tests/<area>/registry_cases.py for: {sorted(missing)}"
    assert not set(CASES) - _registered_names(), "cases for modules that are not registered"


@pytest.mark.parametrize("name", sorted(CASES))
def test_registered_module_builds_and_runs(name):
    init_default_scope("perception_mtl")
    case = CASES[name]
    module = case.build()
    assert type(module).__name__ == name
    case.check(module)
