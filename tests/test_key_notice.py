"""A new key is printed only to a terminal; otherwise it goes to an owner-only file (a container's output
ends in its logs)."""

from __future__ import annotations

import io
import os
import stat

from telemetra.key_notice import KeyNotice, default_keys_file
from telemetra.settings import Settings


def test_a_terminal_sees_the_key_and_no_file_is_written(tmp_path) -> None:
    leader, follower = os.openpty()
    with open(follower, "w", closefd=True) as terminal, open(leader, "rb", buffering=0, closefd=True) as screen:
        KeyNotice(tmp_path / "k.keys", out=terminal).show("Admin key", "tlma_secret")
        assert b"Admin key: tlma_secret" in screen.read(1024)
    assert not (tmp_path / "k.keys").exists()


def test_output_that_is_not_a_terminal_gets_the_path_and_the_file_the_key(tmp_path) -> None:
    out = io.StringIO()
    path = tmp_path / "sub" / "k.keys"
    path.parent.mkdir()
    path.write_text("")
    path.chmod(0o644)  # an operator's looser file is narrowed
    notice = KeyNotice(path, out=out)
    notice.show("Admin key", "tlma_one")
    notice.show("Demo key", "tlmt_two")
    assert "tlma_one" not in out.getvalue() and f"written to {path}" in out.getvalue()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert lines[0].endswith("Admin key: tlma_one") and lines[1].endswith("Demo key: tlmt_two")


def test_the_keys_file_lies_beside_a_sqlite_database(tmp_path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/t.db", _env_file=None)
    assert default_keys_file(settings) == tmp_path / "t.db.keys"
    chosen = Settings(database_url="postgresql://x@h/db", keys_file=str(tmp_path / "k"), _env_file=None)
    assert default_keys_file(chosen) == tmp_path / "k"
