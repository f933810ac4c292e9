"""Atomic writes honour the umask, as a plain ``open()`` does (security review, finding 8): a shared
embedding cache, checkpoint or status file must not come out ``0o600`` because of ``mkstemp``."""

from __future__ import annotations

import os
import stat
import tempfile

import numpy as np
import pytest
import torch

from complement._atomic import atomic_path, write_bytes, write_json, write_text

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def umask():
    """Set the process umask for the test; the old one comes back after."""
    old = os.umask(0o022)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o027, 0o640)])
def test_a_new_file_gets_0o666_less_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    for i, write in enumerate(
        (lambda p: write_bytes(p, b"x"), lambda p: write_text(p, "x"), lambda p: write_json(p, {}))
    ):
        target = tmp_path / f"file{i}"
        write(target)
        assert mode(target) == expected
        plain = tmp_path / f"plain{i}"
        plain.write_text("x")  # what open() gives: the rule the atomic writer follows
        assert mode(plain) == expected


def test_the_temporary_file_has_the_final_mode_while_written(tmp_path, umask):
    umask(0o022)
    with atomic_path(tmp_path / "report.md") as temporary:
        assert mode(temporary) == 0o644  # never a 0o600 file, even mid-write
        temporary.write_text("x")
    assert mode(tmp_path / "report.md") == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_a_writer_that_replaces_the_temporary_still_gets_the_umask_mode(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "figure.png"
    with atomic_path(target) as temporary:
        fd, other = tempfile.mkstemp(dir=tmp_path)  # 0o600, like a library writing via its own temp file
        os.write(fd, b"png")
        os.close(fd)
        os.replace(other, temporary)
    assert mode(target) == 0o644 and target.read_bytes() == b"png"


def test_a_file_written_over_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "status.json"
    write_json(target, {"state": "running"})
    os.chmod(target, 0o640)  # the owner narrowed it: a rewrite must not widen it (nor does open("w"))
    write_json(target, {"state": "done"})
    assert mode(target) == 0o640
    os.chmod(target, 0o444)  # read-only: the atomic rewrite still works and stays read-only
    write_json(target, {"state": "again"})
    assert mode(target) == 0o444 and "again" in target.read_text()


def test_a_symbolic_link_is_replaced_by_a_file_of_the_umask_mode(tmp_path, umask):
    umask(0o077)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("theirs")
    os.chmod(elsewhere, 0o666)
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    write_text(link, "mine")
    assert not link.is_symlink() and mode(link) == 0o600  # the link's target's bits are not copied
    assert elsewhere.read_text() == "theirs"


def test_a_failed_write_leaves_no_file(tmp_path, umask):
    umask(0o022)
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x") as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o077, 0o600)])
def test_the_embedding_cache_follows_the_umask(tmp_path, umask, mask, expected):
    from complement.experiments.tasks.embeddings import cached_embeddings

    umask(mask)
    _, path = cached_embeddings(
        ["one", "two"],
        model_path="unused",
        max_length=8,
        part="t",
        encoder=lambda texts: torch.zeros(len(texts), 3),
        directory=tmp_path,
    )
    assert mode(path) == expected
    assert np.load(path, allow_pickle=False)["embeddings"].shape == (2, 3)


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o077, 0o600)])
def test_checkpoints_and_their_checksums_follow_the_umask(tmp_path, umask, mask, expected):
    from complement.training.checkpointing import AtomicCheckpointIO, checksum_path

    umask(mask)
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(2)}}, path)
    assert mode(path) == expected and mode(checksum_path(path)) == expected
