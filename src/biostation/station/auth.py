"""API token: made on first start, kept 0600 in the data directory, compared in constant time.

The token file is created with ``O_EXCL`` and mode 0600 (the data directory 0700), so no other
local user can read it and two stations starting at once cannot write different tokens.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from ..errors import ConfigError


def ensure_data_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def ensure_token(token_path: Path) -> str:
    """Read the station token, creating it (0600) on first use."""
    ensure_data_dir(token_path.parent)
    try:
        fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(token_path)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def read_token(token_path: Path) -> str:
    mode = stat.S_IMODE(token_path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{token_path} is readable by others (mode {mode:o}); run chmod 600 on it")
    token = token_path.read_text().strip()
    if len(token) < 16:
        raise ConfigError(f"{token_path} holds no valid token; delete it to make a new one")
    return token


def token_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
