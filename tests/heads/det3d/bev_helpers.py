"""Loads tests/models/bev/bev_builders.py (tests are not a package) as ``bev``."""

import importlib.util
import pathlib

_path = pathlib.Path(__file__).resolve().parents[2] / "models" / "bev" / "bev_builders.py"
_spec = importlib.util.spec_from_file_location("bev_builders", _path)
bev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bev)
