"""Where tlreg keeps things, read from the environment each time it is asked.

Every path and switch goes through a function here so that a test (or a long-lived process)
that changes the environment sees the change: nothing is frozen into a constant at import.

- ``TLREG_HOME``: the folder for the registry database (default: the user data dir).
- ``TLREG_DB``: any SQLAlchemy URL for the registry (default: SQLite under ``TLREG_HOME``).
- ``TLREG_CACHE``: the feature cache (default: ``TLREG_HOME/cache`` when ``TLREG_HOME`` is set,
  else the user cache dir). Models shipped as split zips are unpacked under its ``bundled/``.
- ``TLREG_DEBUG``: show tracebacks instead of one-line errors.
- ``TLREG_FAST_READ``: ``0`` makes the listing commands read a SQLite registry through SQLAlchemy
  like every other command, instead of the ORM-free reader (:mod:`tlreg.registry.sqlite_read`).
- ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``: never reach the Hugging Face Hub; use the local
  cache only (huggingface_hub honours both).
- ``HF_ENDPOINT``: the Hub's address (a mirror), as huggingface_hub reads it.
"""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path

import platformdirs

APP = "tlreg"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
#: how long a SQLite connection waits for another process's lock before it gives up (the engine's
#: and the CLI's ORM-free reader's)
BUSY_TIMEOUT_S = 60


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def home() -> Path:
    """The folder that holds the default registry database."""
    value = os.environ.get("TLREG_HOME")
    return Path(value).expanduser() if value else Path(platformdirs.user_data_dir(APP))


def db_url() -> str:
    """The registry's SQLAlchemy URL; SQLite under :func:`home` unless ``TLREG_DB`` says otherwise."""
    return os.environ.get("TLREG_DB") or f"sqlite:///{home() / 'registry.db'}"


def cache_dir() -> Path:
    """The feature cache's folder."""
    value = os.environ.get("TLREG_CACHE")
    if value:
        return Path(value).expanduser()
    if os.environ.get("TLREG_HOME"):
        return home() / "cache"
    return Path(platformdirs.user_cache_dir(APP))


def bundled_dir() -> Path:
    """Where models that ship as a zip split across packages are unpacked, once (under the cache)."""
    return cache_dir() / "bundled"


def debug() -> bool:
    """Tracebacks instead of one-line errors (``TLREG_DEBUG``: 1, true, yes or on)."""
    return _flag("TLREG_DEBUG")


def fast_read() -> bool:
    """Whether the listing commands may read a SQLite registry without the ORM (``TLREG_FAST_READ``,
    on unless 0, false, no or off): the same output, a third of a second less start-up."""
    return os.environ.get("TLREG_FAST_READ", "").strip().lower() not in _FALSE


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline_variable() -> str | None:
    """The variable that asks for no Hub traffic (``HF_HUB_OFFLINE``, else ``TRANSFORMERS_OFFLINE``,
    both as huggingface_hub reads them), or None."""
    return next((name for name in OFFLINE_VARIABLES if _flag(name)), None)


def hf_offline() -> bool:
    """True when the user asked for no Hub traffic (either of :data:`OFFLINE_VARIABLES`)."""
    return offline_variable() is not None


def hf_endpoint() -> str:
    """The Hugging Face Hub's address (``HF_ENDPOINT``, for a mirror), as huggingface_hub reads it."""
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved as huggingface_hub resolves it (read now, not at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(hf_home).expanduser() / "hub"


def user() -> str:
    """Who is acting, for the audit trail; never fails (containers often have no passwd entry)."""
    try:
        return os.environ.get("TLREG_USER") or getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def host() -> str:
    return socket.gethostname()
