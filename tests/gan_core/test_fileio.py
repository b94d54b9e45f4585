"""Atomic writes: complete files or none, with the permissions a plain open() gives."""

from __future__ import annotations

import os
import stat

import pytest

from albumgan.gan_core.fileio import atomic_write, write_text


def test_written_files_are_readable_like_plain_files(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = tmp_path / "sub" / "atomic.txt"
    write_text(atomic, "y")
    assert atomic.read_text() == "y"
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "status.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_write(target, "w", encoding="utf-8") as handle:
        handle.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["status.json"]
