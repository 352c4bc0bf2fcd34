"""Aliases: ``@champion`` names one registry entry, at one revision, at a time, with its history kept.

The ``alias`` table holds where each name points now; the registry's event log holds every move
(``alias`` events: old and new target) and removal (``unalias``), who and when. Both are written
in one write transaction, which also serialises concurrent moves (SQLite ``BEGIN IMMEDIATE``, a
PostgreSQL advisory lock): two processes moving one alias at once both land in the history, in
commit order, each recording the target the other left, and the later one is where it points.

MLflow's aliases keep no history; here :func:`aliases_at` replays the log to say where every alias
pointed at any moment, which is how ``tlreg runs show`` says what ``@champion`` meant when a run
started. Every command that takes a ref takes ``@name``: :meth:`Registry._find` resolves it here.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from . import config
from .errors import BadInputError, DanglingAliasError, UnknownAliasError
from .models import Alias, Event, ModelEntry

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ACTIONS = ("alias", "unalias")

EventWriter = Callable[[Session, str, str, dict[str, Any]], None]


class AliasRevisionWarning(UserWarning):
    """An alias was set on one revision of an entry whose revision has moved since."""


def is_alias(text: str) -> bool:
    return text.startswith("@")


def alias_name(text: str) -> str:
    """``champion`` from ``@champion`` or ``champion``; refuses names that could be mistaken for refs."""
    name = text.removeprefix("@")
    if not NAME_RE.match(name):
        raise BadInputError(
            f"Invalid alias name {text!r}.",
            hint="An alias is a letter or digit, then up to 63 letters, digits, '_', '.' or '-' "
            "(e.g. champion, prod-2026).",
        )
    return name


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass
class AliasMove:
    """One line of an alias's history: where it pointed before and after, who moved it, when."""

    name: str
    at: datetime
    user: str
    host: str
    action: str  # "set" (first time), "move", "remove"
    ref: str | None
    revision: str | None
    old_ref: str | None
    old_revision: str | None
    event_id: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "at": _aware(self.at).isoformat(),
            "user": self.user,
            "host": self.host,
            "action": self.action,
            "ref": self.ref,
            "revision": self.revision,
            "old_ref": self.old_ref,
            "old_revision": self.old_revision,
            "event_id": self.event_id,
        }


def removal(session: Session, ref: str) -> str | None:
    """ "by bob at 2026-12-01 10:00 UTC" for a ref whose last event is its removal; else None."""
    last = session.exec(select(Event).where(Event.ref == ref).order_by(col(Event.id).desc())).first()
    if last is None or last.action != "remove":
        return None
    return f"by {last.user} at {_aware(last.at):%Y-%m-%d %H:%M} UTC"


def lookup(session: Session, text: str) -> Alias:
    name = alias_name(text)
    alias = session.get(Alias, name)
    if alias is None:
        raise UnknownAliasError(name, known=session.exec(select(Alias.name)).all())
    return alias


def resolve(session: Session, text: str) -> ModelEntry:
    """The entry ``@name`` points at; a removed entry or a moved revision is said, not hidden."""
    alias = lookup(session, text)
    entry = session.exec(select(ModelEntry).where(ModelEntry.ref == alias.ref)).first()
    if entry is None:
        gone = removal(session, alias.ref) or "it is no longer registered"
        raise DanglingAliasError(
            f"Alias '@{alias.name}' points at {alias.ref}, which was removed from the registry ({gone}).",
            hint=f"Move it (tlreg registry alias set {alias.name} REF) or remove it "
            f"(tlreg registry alias remove {alias.name}).",
        )
    if alias.revision and entry.revision and entry.revision != alias.revision:
        warnings.warn(
            f"@{alias.name} was set on {alias.ref} at revision {alias.revision[:12]}; the entry has moved to "
            f"{entry.revision[:12]} since (set the alias again to confirm the new revision).",
            AliasRevisionWarning,
            stacklevel=4,
        )
    return entry


def _target(alias: Alias | None) -> dict[str, Any] | None:
    return None if alias is None else {"ref": alias.ref, "revision": alias.revision}


def set_alias(session: Session, text: str, entry: ModelEntry, event: EventWriter) -> tuple[Alias, str]:
    """Point ``@name`` at ``entry`` (at its revision now); ``set``, ``moved`` or ``unchanged``."""
    name = alias_name(text)
    alias = session.get(Alias, name)
    if alias is not None and (alias.ref, alias.revision) == (entry.ref, entry.revision):
        return alias, "unchanged"
    old = _target(alias)
    if alias is None:
        alias = Alias(name=name, ref=entry.ref, revision=entry.revision, set_by=config.user())
        status = "set"
    else:
        alias.ref, alias.revision = entry.ref, entry.revision
        alias.set_at, alias.set_by = datetime.now(UTC), config.user()
        status = "moved"
    session.add(alias)
    event(session, "alias", entry.ref, {"alias": name, "old": old, "new": _target(alias)})
    session.flush()
    return alias, status


def remove_alias(session: Session, text: str, event: EventWriter) -> Alias:
    alias = lookup(session, text)
    session.delete(alias)
    event(session, "unalias", alias.ref, {"alias": alias.name, "old": _target(alias), "new": None})
    return alias


def _events(session: Session, name: str | None = None) -> list[Event]:
    query = select(Event).where(col(Event.action).in_(ACTIONS)).order_by(col(Event.id))
    return [e for e in session.exec(query).all() if name is None or e.detail.get("alias") == name]


def history(session: Session, text: str | None = None) -> list[AliasMove]:
    """Every move of ``@name`` (of every alias when None), oldest first. A name that never existed
    is an error with close matches; a removed alias still has its history."""
    name = alias_name(text) if text else None
    events = _events(session, name)
    if name and not events:
        known = {e.detail.get("alias") for e in _events(session)}
        raise UnknownAliasError(name, known=[k for k in known if k])
    moves = []
    for e in events:
        old, new = e.detail.get("old") or {}, e.detail.get("new") or {}
        action = "remove" if e.action == "unalias" else ("move" if old else "set")
        moves.append(
            AliasMove(
                name=e.detail["alias"],
                at=e.at,
                user=e.user,
                host=e.host,
                action=action,
                ref=new.get("ref"),
                revision=new.get("revision"),
                old_ref=old.get("ref"),
                old_revision=old.get("revision"),
                event_id=e.id or 0,
            )
        )
    return moves


def aliases_at(session: Session, when: datetime) -> dict[str, dict[str, Any]]:
    """Where every alias pointed at ``when``: ``{name: {ref, revision, since, by}}``, replayed from
    the event log (the alias table only knows the present)."""
    when = _aware(when)
    state: dict[str, dict[str, Any]] = {}
    for move in history(session):
        if _aware(move.at) > when:
            continue
        if move.action == "remove":
            state.pop(move.name, None)
        else:
            state[move.name] = {
                "ref": move.ref,
                "revision": move.revision,
                "since": _aware(move.at),
                "by": move.user,
            }
    return dict(sorted(state.items()))
