"""MMEngine's CheckpointHook with crash-safe writes and start-up validation of its options.

A crash (or ``kill -9``) while ``torch.save`` streams a checkpoint used to leave a truncated file
under the final name, and ``last_checkpoint`` pointing at it. Here every local checkpoint is
written to a temporary file in the same folder, fsynced, then ``os.replace``d onto its name, so
the name only ever holds a complete checkpoint. ``last_checkpoint`` is replaced the same way.

MMEngine's hook also accepts any unknown keyword (``**kwargs``) and forwards it to
``runner.save_checkpoint`` at the first save, so a typo such as ``intervall=1`` only crashed after
a whole epoch; here it is refused when the hook is built, before training starts.
"""

from __future__ import annotations

import difflib
import inspect
import os
import os.path as osp
from contextlib import contextmanager

import mmengine.runner.runner as mmengine_runner_module
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.runner.checkpoint import save_checkpoint as mmengine_save_checkpoint

from perception_mtl.registry import HOOKS


def atomic_write(path: str, write) -> None:
    """Calls ``write(file)`` on a temporary file next to ``path``, fsyncs it, then renames it onto
    ``path`` (atomic on POSIX). On any error the temporary file is removed and ``path`` is untouched."""
    folder = osp.dirname(osp.abspath(path))
    tmp = osp.join(folder, f".{osp.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_save_checkpoint(checkpoint: dict, filename: str, file_client_args=None, backend_args=None) -> None:
    """``mmengine.runner.checkpoint.save_checkpoint`` that writes local files atomically."""
    if "://" in filename or file_client_args is not None or backend_args is not None:
        return mmengine_save_checkpoint(checkpoint, filename, file_client_args, backend_args)
    atomic_write(filename, lambda f: torch.save(checkpoint, f))


@contextmanager
def _runner_saves_atomically():
    """Points the function ``Runner.save_checkpoint`` writes with at ``atomic_save_checkpoint``."""
    original = mmengine_runner_module.save_checkpoint
    mmengine_runner_module.save_checkpoint = atomic_save_checkpoint
    try:
        yield
    finally:
        mmengine_runner_module.save_checkpoint = original


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose checkpoints and ``last_checkpoint`` are written
    atomically, and which rejects unknown arguments at construction (see module doc)."""

    def __init__(self, *args, **kwargs) -> None:
        known = set(inspect.signature(CheckpointHook.__init__).parameters) - {"self", "kwargs"}
        # The extra keywords MMEngine forwards to Runner.save_checkpoint, minus those the hook
        # already passes itself (anything else crashes at the first save).
        forwarded = set(inspect.signature(mmengine_runner_module.Runner.save_checkpoint).parameters) - {
            "self", "out_dir", "filename", "file_client_args", "save_optimizer", "save_param_scheduler",
            "meta", "by_epoch", "backend_args",
        }  # fmt: skip
        unknown = sorted(set(kwargs) - known - forwarded)
        if unknown:
            hints = {k: difflib.get_close_matches(k, sorted(known), n=1) for k in unknown}
            said = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items())
            raise TypeError(f"default_hooks.checkpoint: unknown option {said}; valid options: {sorted(known)}")
        super().__init__(*args, **kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta):
        with _runner_saves_atomically():
            super()._save_checkpoint_with_step(runner, step, meta)
        if is_main_process() and getattr(self, "last_ckpt", None):
            # MMEngine wrote it with a plain open('w'); make it whole again atomically.
            last = str(self.last_ckpt)
            atomic_write(osp.join(runner.work_dir, "last_checkpoint"), lambda f: f.write(last.encode()))
