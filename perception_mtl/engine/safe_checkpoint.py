"""Lets torch's safe (``weights_only``) unpickler load MMEngine's own checkpoints.

torch >= 2.6 loads with ``weights_only=True`` by default, which refuses every global that is not
allow-listed, and MMEngine 0.10.7 cannot resume its own checkpoints. Two things in them trip it:

* the message hub's ``HistoryBuffer`` objects and the numpy arrays/scalars inside them: these
  are allow-listed here by class;
* ``HistoryBuffer.__getstate__`` also pickles its class-level table of statistics methods,
  which protocol 2 writes as ``getattr(HistoryBuffer, 'min')``. Allow-listing ``getattr`` would
  open the loader to arbitrary attribute access, so instead the default methods (which
  ``__setstate__`` re-registers anyway) are left out of the pickled state; only user-registered
  statistics methods are still written.

Safety is not turned off: ``weights_only=False`` would run arbitrary pickled code from any file,
and any class not listed here is still refused.
"""

import os.path as osp
import zipfile

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

_DEFAULT_STATISTICS = ("min", "max", "current", "mean")


def _numpy_globals() -> list:
    """The numpy reconstructors and dtype classes that pickled arrays and scalars reference."""
    # Ask numpy which callables it pickles with, so this holds for numpy 1.x and 2.x alike.
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    dtype_classes = {
        type(np.dtype(name))
        for name in (
            "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float16", "float32", "float64",
        )
    }  # fmt: skip
    return [reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]


MMENGINE_CHECKPOINT_GLOBALS: list = [HistoryBuffer, *_numpy_globals()]


def _history_buffer_state(self: HistoryBuffer) -> dict:
    """``HistoryBuffer.__getstate__`` without the built-in statistics methods (see module doc)."""
    state = {k: v for k, v in self.__dict__.items() if k != "statistics_methods"}
    custom = {
        name: method
        for name, method in self._statistics_methods.items()
        if not (name in _DEFAULT_STATISTICS and method is getattr(HistoryBuffer, name))
    }
    if custom:
        state["statistics_methods"] = custom
    return state


def load_from_local(filename: str, map_location=None):
    """MMEngine's local checkpoint loader, but every failure names the file.

    torch's own errors for a text file (``KeyError: 101``), a truncated zip ("failed finding
    central directory") or a refused global never say which file they were reading.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f"checkpoint not found: {filename}")
    try:
        return torch.load(filename, map_location=map_location)
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0]
        if osp.getsize(filename) == 0:
            why = "the file is empty"
        elif not zipfile.is_zipfile(filename):
            why = "not a torch checkpoint, or truncated (no zip central directory)"
        else:
            why = f"{type(err).__name__}: {first}"
        raise RuntimeError(f"cannot read checkpoint {filename}: {why}") from err


def enable_safe_mmengine_checkpoints() -> None:
    """Allow-lists MMEngine's checkpoint classes, keeps its pickles free of ``getattr`` and makes
    local checkpoint-loading errors name the file (idempotent)."""
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)
    HistoryBuffer.__getstate__ = _history_buffer_state
    CheckpointLoader.register_scheme(prefixes="", force=True)(load_from_local)
