"""Fixtures of the harness tests: the tiny pixel task served to the CLI in place of the built-in tasks."""

from __future__ import annotations

import pytest

from complement.experiments.runs import launch
from tests.helpers.pixels import pixel_task

PIXEL_VARIANTS = {
    "pixels": {},  # a 6x6 grey image task
    "pixels_tuple": {"model": "tuple"},  # its model returns a tuple
    "embeddings": {"pixels": False},  # image-kind inputs that are no pixels
    "words": {"kind": "text"},  # a text task
}


@pytest.fixture
def pixels(monkeypatch):
    """``launch.build_task`` builds the pixel task's variants by name (:data:`PIXEL_VARIANTS`)."""

    def build(task, options, seed):
        if task not in PIXEL_VARIANTS:
            raise ValueError(f"unknown task {task!r}")
        made = pixel_task(seed, **PIXEL_VARIANTS[task], **options)
        made.name = task
        return made

    monkeypatch.setattr(launch, "build_task", build)
