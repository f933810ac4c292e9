"""Fault injection for subprocess tests: a ``sitecustomize`` that SIGKILLs the process at a chosen moment.

The child runs the real entry point (the ``complement`` CLI, a Lightning script, ...);
``COMPLEMENT_FAULT=kind:n`` picks the moment:

- ``step:n``            after the batch that completes optimizer step n, before its checkpoint
- ``pause:n``           after that batch, touch ``$COMPLEMENT_FAULT_MARKER`` and wait there (up
                        to 120 s) for the test to signal the process: a known moment for SIGTERM
- ``checkpoint:n``      right after the n-th checkpoint file is written
- ``torn_checkpoint:n`` during the n-th checkpoint write: the temporary file is written, not yet renamed
- ``predict:1``         during a run's test-set prediction (after training)
- ``report:1``          during a comparison's report, after its first figure

Nothing here touches the code under test except to kill or pause it: the same code then resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

SITECUSTOMIZE = r"""
import os, signal

_spec = os.environ.get("COMPLEMENT_FAULT")
if _spec:
    _kind, _n = _spec.split(":")
    _n = int(_n)
    _count = [0]

    def _die():
        os.kill(os.getpid(), signal.SIGKILL)

    def _count_and_maybe_die():
        _count[0] += 1
        if _count[0] == _n:
            _die()

    if _kind in ("step", "pause"):
        import lightning.pytorch as pl

        def _pause():
            import pathlib, time

            pathlib.Path(os.environ["COMPLEMENT_FAULT_MARKER"]).touch()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                time.sleep(0.05)

        class _KillAtStep(pl.Callback):
            def on_train_batch_end(self, trainer, *args):
                if trainer.global_step == _n:
                    _die() if _kind == "step" else _pause()

        _original_init = pl.Trainer.__init__

        def _init(self, *args, callbacks=None, **kwargs):
            callbacks = [_KillAtStep(), *(callbacks or [])]
            _original_init(self, *args, callbacks=callbacks, **kwargs)

        pl.Trainer.__init__ = _init
    elif _kind in ("checkpoint", "torn_checkpoint"):
        import complement._atomic as _atomic

        _replace = _atomic.os.replace

        class _Os:
            def __getattr__(self, name):
                return getattr(os, name)

            @staticmethod
            def replace(source, target):
                is_checkpoint = str(target).endswith(".ckpt")
                if is_checkpoint and _kind == "torn_checkpoint":
                    _count_and_maybe_die()
                _replace(source, target)
                if is_checkpoint and _kind == "checkpoint":
                    _count_and_maybe_die()

        _atomic.os = _Os()
    elif _kind == "predict":
        import complement.experiments.runs.fit as _fit

        def _predict(*args, **kwargs):
            _die()

        _fit.predict = _predict
    elif _kind == "report":
        import complement.experiments.report.figures as _figures

        _plot = _figures.plot_reliability

        def _reliability(*args, **kwargs):
            _plot(*args, **kwargs)
            _die()

        _figures.plot_reliability = _reliability
"""


def environment(tmp_path: Path, fault: str | None) -> dict[str, str]:
    """The child's environment: the fault hook on its path (and no GPU, one thread, as CI)."""
    hook = tmp_path / "fault_hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}
    env.pop("COMPLEMENT_FAULT", None)
    if fault:
        env["COMPLEMENT_FAULT"] = fault
    return env


def run(args: list[str], tmp_path: Path, fault: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=environment(tmp_path, fault), capture_output=True, text=True, timeout=timeout)


def killed(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == -signal.SIGKILL


def complement(*args: str) -> list[str]:
    return [sys.executable, "-m", "complement.experiments.cli", *args]
