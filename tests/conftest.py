"""Shared test fixtures: the ``blobs`` task for the CLI (tests/helpers/blobs.py)."""

import pytest

from tests.helpers.blobs import blobs_task


@pytest.fixture
def blobs(monkeypatch):
    def build(task, options, seed):
        if task != "blobs":
            raise ValueError(f"unknown task {task!r}")
        return blobs_task(seed, **options)

    from complement.experiments.runs import launch

    monkeypatch.setattr(launch, "build_task", build)
