"""Reads the project's pickles (info files, object databases) without running code from them.

``pickle.load`` calls whatever global a file names, so an info file from elsewhere could run
arbitrary code. The info and ``*_dbinfos_*.pkl`` files only hold builtin containers, strings,
numbers and numpy arrays / scalars, so only the globals that rebuild those are allowed; any other
is refused with an error naming the file and the global, before anything is called.

``enable_safe_pickle_loading`` also puts this loader behind ``mmengine.load`` for ``.pkl`` /
``.pickle`` files, which is how mmdet3d's datasets (``Det3DDataset.load_data_list``) and its
``DataBaseSampler`` read them.
"""

from __future__ import annotations

import io
import pickle

import mmengine.fileio
from mmengine.fileio.handlers import PickleHandler

# module -> names. numpy 1.x pickles through numpy.core, numpy 2 through numpy._core; a file
# written with either must load under both. ``_codecs.encode`` rebuilds bytes in protocol 2
# (mmengine.dump's default), which numpy arrays use for their buffer.
ALLOWED_GLOBALS: dict[str, frozenset[str] | None] = {
    "builtins": frozenset({"set", "frozenset", "complex", "slice", "range", "bytearray"}),
    "collections": frozenset({"OrderedDict", "defaultdict"}),
    "_codecs": frozenset({"encode"}),
    "numpy": frozenset({"ndarray", "dtype"}),
    "numpy.core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy._core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy.core.numeric": frozenset({"_frombuffer"}),  # protocol 5 arrays
    "numpy._core.numeric": frozenset({"_frombuffer"}),
    "numpy.dtypes": None,  # the dtype classes (Float32DType, ...), numpy >= 1.25
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only ``ALLOWED_GLOBALS`` and names ``source`` when it refuses."""

    def __init__(self, file, source: str = "<pickle>") -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        # Protocol <= 2 writes Python 2 names (``__builtin__``), which Unpickler maps back itself.
        allowed = ALLOWED_GLOBALS.get("builtins" if module == "__builtin__" else module, frozenset())
        if (allowed is None and name.endswith("DType")) or (allowed is not None and name in allowed):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refused to load {self.source}: it references the global {module}.{name}, which is not "
            "allowed in an info or database pickle (only builtin containers and numpy arrays are); "
            "nothing from the file was run"
        )


def safe_pickle_load(file, source: str | None = None):
    """Loads a pickle from a path or binary file object with ``RestrictedUnpickler``."""
    if isinstance(file, (str, bytes)) or hasattr(file, "__fspath__"):
        with open(file, "rb") as f:
            return RestrictedUnpickler(f, source or str(file)).load()
    return RestrictedUnpickler(file, source or str(getattr(file, "name", "the pickle"))).load()


def safe_pickle_loads(data: bytes, source: str = "<bytes>"):
    """``safe_pickle_load`` for an in-memory pickle."""
    return RestrictedUnpickler(io.BytesIO(data), source).load()


class _SafePickleHandler(PickleHandler):
    """mmengine's pickle handler with ``safe_pickle_load`` for reading (writing is unchanged)."""

    def load_from_fileobj(self, file, **kwargs):
        return safe_pickle_load(file)

    def load_from_path(self, filepath, **kwargs):
        return safe_pickle_load(str(filepath))


def enable_safe_pickle_loading() -> None:
    """Makes ``mmengine.load`` read ``pkl`` / ``pickle`` files with ``RestrictedUnpickler`` (idempotent)."""
    mmengine.fileio.register_handler(["pkl", "pickle"])(_SafePickleHandler)
