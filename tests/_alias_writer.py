"""A process of the concurrent alias test (``test_aliases.py``), in a module of its own so that each
spawned process imports only ``tlreg.registry`` (the test module imports the advisor and torch)."""

from __future__ import annotations

from tlreg.registry import Registry

MOVES = 15


def move(url: str, target: str, barrier) -> None:
    """Wait for the other writer, then move ``@champion`` to ``target`` again and again."""
    reg = Registry(url)
    barrier.wait(timeout=120)
    for _ in range(MOVES):
        reg.set_alias("champion", target)
        reg.set_alias("champion", "timm:start")  # back, so that the next move is a move too
