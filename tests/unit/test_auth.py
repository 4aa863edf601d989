"""The station token: made once, 0600, refused when others can read it."""

from __future__ import annotations

import os
import stat

import pytest

from biostation.errors import ConfigError
from biostation.station.auth import ensure_token, read_token, token_matches


def test_token_is_made_once_with_private_permissions(tmp_path):
    path = tmp_path / "station" / "token"
    tok = ensure_token(path)
    assert len(tok) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_token(path) == tok


def test_a_token_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "token"
    ensure_token(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_token(path)


def test_empty_token_file_is_refused(tmp_path):
    path = tmp_path / "token"
    path.write_text("\n")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="no valid token"):
        ensure_token(path)


def test_token_comparison():
    assert token_matches("a" * 43, "a" * 43)
    assert not token_matches("a" * 43, "b" * 43)
    assert not token_matches("a" * 43, None)
    assert not token_matches("a" * 43, "")
