"""Close matches for a misspelt registry ``type`` (issue 27).

MMEngine answers ``type='TwoModalityMultiTaskNett'`` with "... is not in the perception_mtl::model
registry. Please check whether the value of ... is correct" and nothing more. After
:func:`enable_registry_hints` (called when ``perception_mtl`` is imported), that error also lists
the closest registered names (``difflib``) from the registry, its parents and their children
(scope-prefixed, e.g. ``mmdet3d.CenterHead``).
"""

from __future__ import annotations

import difflib

from mmengine.registry import Registry

_MARK = "; did you mean "


def registered_names(registry: Registry) -> list[str]:
    """Every name a ``type`` may use from ``registry``: its own and its ancestors' names, and the
    scope-prefixed names of the ancestors' children."""
    names: set[str] = set()
    root = registry
    while root is not None:
        root.import_from_location()
        names.update(root.module_dict)
        parent = root.parent
        if parent is None:
            break
        root = parent
    stack = [root]
    while stack:  # every registry in the tree, prefixed by its scope
        reg = stack.pop()
        if reg.scope != registry.scope:  # the registry's own scope needs no prefix
            names.update(f"{reg.scope}.{n}" for n in reg.module_dict)
        stack.extend(reg.children.values())
    return sorted(names)


def close_matches(name: str, registry: Registry, n: int = 3) -> list[str]:
    names = registered_names(registry)
    short = name.rsplit(".", 1)[-1]
    found = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
    found += [m for m in difflib.get_close_matches(short, names, n=n, cutoff=0.6) if m not in found]
    return found[:n]


def enable_registry_hints() -> None:
    """Wraps ``Registry.build`` so an unknown ``type`` lists close matches (idempotent)."""
    if getattr(Registry.build, "_with_hints", False):
        return
    original = Registry.build

    def build(self, cfg, *args, **kwargs):
        try:
            return original(self, cfg, *args, **kwargs)
        except KeyError as err:
            message = err.args[0] if err.args else ""
            obj_type = cfg.get("type") if hasattr(cfg, "get") else None
            if not isinstance(obj_type, str) or not isinstance(message, str) or _MARK in message:
                raise
            if f"{obj_type} is not in the" not in message:
                raise
            matches = close_matches(obj_type, self)
            hint = _MARK + " or ".join(repr(m) for m in matches) + "?" if matches else "; no close match registered"
            raise KeyError(f"{message.split('. Please check')[0]} (type={obj_type!r}){hint}") from err

    build._with_hints = True
    Registry.build = build
