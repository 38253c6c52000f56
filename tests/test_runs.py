"""Run-folder files: written atomically, and readable like any other new file."""

from __future__ import annotations

import os
import stat

import pytest

from tunelab.runs import atomic_write, write_json


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_get_the_usual_mode_not_a_private_one(tmp_path, umask):
    old = os.umask(umask)
    try:
        (tmp_path / "plain.txt").write_text("x")  # what any program here would create
        write_json(tmp_path / "a.json", {"a": 1})
        with atomic_write(tmp_path / "b.bin", "wb") as fh:
            fh.write(b"x")
    finally:
        os.umask(old)
    expected = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert expected == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == expected


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write('{"v": 2')
        raise RuntimeError("killed halfway")
    assert target.read_text() == '{\n  "v": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
