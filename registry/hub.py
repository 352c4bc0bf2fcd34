"""The Hugging Face Hub, reached only when it can be, and failing fast and clearly when not.

huggingface_hub retries a failed download for about 20 seconds; tlreg instead probes the
endpoint once per process (a TCP connect with a short timeout) and, when it cannot be reached
or ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, works from the local cache only.
Every failure becomes one of tlreg's errors naming the repository, the cache path and what to do.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

from . import config
from .errors import BadInputError, OfflineError, UnknownModelError
from .refs import SHA_RE

PROBE_TIMEOUT_S = 3.0


def endpoint() -> str:
    return config.hf_endpoint()


@cache
def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def online() -> bool:
    """Whether tlreg may talk to the Hub now: not offline by the environment, and the endpoint answers."""
    return not config.hf_offline() and _reachable(endpoint())


def offline_reason() -> str:
    variable = config.offline_variable()
    if variable:
        return f"{variable} is set"
    return f"{endpoint()} cannot be reached"


def _unset() -> str:
    variable = config.offline_variable()
    return f" (unset {variable})" if variable else ""


def _offline_error(repo: str, what: str) -> OfflineError:
    return OfflineError(
        f"{repo}: {what} is not in the local Hugging Face cache ({config.hf_cache_dir()}) and "
        f"{offline_reason()}.",
        hint=f"Connect and run the command again{_unset()}, or copy the model into that cache.",
    )


def _translate(exc: Exception, repo: str, revision: str | None, what: str) -> Exception:
    # huggingface_hub loads here and in the calls below, not at import: `tlreg registry list` reads the
    # Hub's cache folders only, and its start-up must not pay for the client (0.2 s on 2 cores)
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
        RevisionResolutionError,
    )

    if isinstance(exc, RepositoryNotFoundError | GatedRepoError):
        return UnknownModelError(f"hf:{repo}", what="on the Hugging Face Hub (or it is private or gated)")
    if isinstance(exc, RevisionNotFoundError):
        return BadInputError(
            f"hf:{repo}: no revision {revision!r} on the Hub.",
            hint="Use a branch, tag or 40-hex commit sha that exists.",
        )
    if isinstance(exc, LocalEntryNotFoundError | OfflineModeIsEnabled | RevisionResolutionError):
        return _offline_error(repo, what)
    if isinstance(exc, EntryNotFoundError):
        return BadInputError(f"hf:{repo}@{revision}: has no {what}.")
    return exc


def resolve_revision(repo: str, revision: str | None = None) -> str:
    """The commit sha that ``revision`` (default ``main``) points to, online or from the cache."""
    revision = revision or "main"
    local = not online()
    if local and SHA_RE.match(revision):
        snap = config.hf_cache_dir() / f"models--{repo.replace('/', '--')}" / "snapshots" / revision
        if snap.is_dir():
            return revision
    from huggingface_hub import HfApi

    try:
        resolved = HfApi().resolve_revision(
            repo, revision=revision, local_files_only=local, cache_dir=config.hf_cache_dir()
        )
    except Exception as exc:  # translated below; anything unknown is re-raised as is
        raise _translate(exc, repo, revision, f"revision {revision!r}") from exc
    return str(getattr(resolved, "resolved", resolved))


def download(repo: str, filenames: Sequence[str], *, revision: str) -> Path:
    """The first of ``filenames`` that the repository has at ``revision``, as a local path."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    local = not online()
    last: Exception | None = None
    for name in filenames:
        try:
            return Path(
                hf_hub_download(
                    repo, name, revision=revision, local_files_only=local, cache_dir=config.hf_cache_dir()
                )
            )
        except (EntryNotFoundError, LocalEntryNotFoundError) as exc:
            last = exc
        except Exception as exc:
            raise _translate(exc, repo, revision, name) from exc
    assert last is not None
    raise _translate(last, repo, revision, " or ".join(filenames)) from last


def snapshot(repo: str, *, revision: str, allow_patterns: Sequence[str] | None = None) -> Path:
    """A local folder with the repository's files at ``revision`` (downloaded when online)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                repo,
                revision=revision,
                allow_patterns=list(allow_patterns or []) or None,
                local_files_only=not online(),
                cache_dir=config.hf_cache_dir(),
            )
        )
    except Exception as exc:
        raise _translate(exc, repo, revision, f"a snapshot at {revision}") from exc
