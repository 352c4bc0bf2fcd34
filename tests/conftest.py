"""Shared fixtures: every test gets its own tlreg home and Hugging Face cache, and no network."""

from __future__ import annotations

import socket

import pytest


LOOPBACK = ("127.0.0.1", "::1", "localhost")


class NetworkBlockedError(RuntimeError):
    """Raised by the socket guard: a test tried to leave the machine."""


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open a non-local socket: tests never reach the network."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if self.family == socket.AF_UNIX or host in LOOPBACK:
            return real_connect(self, address)
        raise NetworkBlockedError(f"test tried to reach the network: {address!r}")

    real_create = socket.create_connection

    def guarded_create(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        if address[0] in LOOPBACK:
            return real_create(address, *args, **kwargs)
        raise NetworkBlockedError(f"test tried to reach the network: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "create_connection", guarded_create)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """A fresh TLREG_HOME and Hugging Face cache per test, offline, whatever the developer's environment."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("TLREG_HOME", str(home / "tlreg"))
    monkeypatch.delenv("TLREG_DB", raising=False)
    monkeypatch.delenv("TLREG_CACHE", raising=False)
    monkeypatch.delenv("TLREG_DEBUG", raising=False)
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    return home
