"""The enrollment workflow's sessions in the station's encrypted store.

:class:`StoreSessions` is the :class:`~.enrollment.SessionRepo` of the daemon over
:class:`biostation.store.EnrollmentStore`: the session's state document is one sealed field
(``session/state``: it holds the demographics), its images and templates are sealed fields, the
step reached is kept in clear (the resume point), and confirming stores the finished transaction
and its ISO records and queues the transaction for the outbox in one transaction. The store's
audit trail records every change; :func:`audit_to_store` sends the workflow's operator actions to
the same trail.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import StoreStateError
from ...store import EnrollmentStore, SessionState

__all__ = ["StoreSessions", "audit_to_store"]

_STATE = "session/state"


class StoreSessions:
    """A :class:`~.enrollment.SessionRepo` over an :class:`EnrollmentStore`."""

    def __init__(self, store: EnrollmentStore, actor: str = "desk"):
        self.store = store
        self.actor = actor

    def _who(self, state: dict[str, Any]) -> str:
        return str(state.get("operator") or self.actor)

    def create_session(self, session_id: str, state: dict[str, Any]) -> None:
        self.store.open_session(self._who(state), {}, session_id=session_id, step=state["step"])
        self._put_state(session_id, state)

    def _put_state(self, session_id: str, state: dict[str, Any]) -> None:
        data = json.dumps(state, ensure_ascii=False, sort_keys=True).encode("utf-8")
        self.store.put_blob(session_id, _STATE, data, self._who(state), meta={"format": "json"})

    def save_state(self, session_id: str, state: dict[str, Any]) -> None:
        info = self.store.session(session_id)
        if state.get("demographics") and self.store.demographics(session_id) != state["demographics"]:
            self.store.set_demographics(session_id, self._who(state), state["demographics"])
        self._put_state(session_id, state)
        if info.step != state["step"]:
            self.store.set_step(session_id, self._who(state), state["step"])

    def load_state(self, session_id: str) -> dict[str, Any] | None:
        try:
            info = self.store.session(session_id)
        except StoreStateError:
            return None
        if _STATE in info.fields:
            try:
                return json.loads(self.store.blob(session_id, _STATE).decode("utf-8"))
            except StoreStateError:
                pass
        # closed, and its fields purged (cancelled, or delivered to the central system)
        step = {SessionState.CANCELLED: "cancelled"}.get(info.state, "confirmed")
        return {"session_id": session_id, "step": step, "operator": info.operator, "created_at": info.created_at,
                "updated_at": info.updated_at, "demographics": None, "fingers": {}, "slaps": {}, "exceptions": {},
                "sequence": None, "portrait": None, "duplicates": None, "decision": None,
                "store_state": info.state.value}

    def put_blob(self, session_id: str, name: str, data: bytes) -> None:
        self.store.put_blob(session_id, name, data, self.actor, meta={"size": len(data)})

    def get_blob(self, session_id: str, name: str) -> bytes:
        return self.store.blob(session_id, name)

    def session_ids(self) -> list[str]:
        """The enrollment sessions (chip verifications, ``verify-...``, share the store)."""
        return [s.session_id for s in self.store.sessions() if not s.session_id.startswith("verify-")]

    def finish(self, session_id: str, state: dict[str, Any], transaction: bytes, records: dict[str, bytes]) -> None:
        self._put_state(session_id, state)  # the final state first: a crash before finish stays in review
        self.store.finish(session_id, self._who(state), transaction, records=records,
                          txn_id=state["transaction_id"], content_type="application/vnd.ansi-nist-itl")

    def cancel(self, session_id: str, state: dict[str, Any], reason: str) -> None:
        self.store.cancel(session_id, self._who(state), reason)


def audit_to_store(store: EnrollmentStore) -> Callable[[str, str, dict[str, Any]], None]:
    """The workflow's audit callback: one line of the store's hash-chained trail per action."""

    def audit(action: str, session_id: str, detail: dict[str, Any]) -> None:
        detail = dict(detail)
        actor = str(detail.pop("operator", "desk"))
        store.audit(actor, action, session_id, **detail)

    return audit


def desk_gallery(data_dir: Path) -> Any:
    """The station's gallery of persons (``<data_dir>/gallery-persons``, one person per confirmed
    session). A station that kept fingers in ``<data_dir>/gallery`` (one reference per finger,
    ``<session id>:<position>``) has them moved over once, grouped by session, and that folder
    renamed ``gallery.migrated``; a migration cut short is finished at the next start."""
    from ...errors import TemplateError
    from ...identify.local import journal_records
    from ...identify.persons import PersonGallery
    from ...templates import TemplateFormat, decode

    persons = PersonGallery(data_dir / "gallery-persons")
    old = data_dir / "gallery"
    if (old / "journal.bin").is_file():
        fingers: dict[str, Any] = {}
        for op, rid, payload, _ in journal_records((old / "journal.bin").read_bytes()):
            if op == b"D":
                fingers.pop(rid, None)
                continue
            try:
                fingers[rid] = decode(payload, TemplateFormat.NATIVE).views[0]
            except (TemplateError, IndexError):
                break  # a corrupt tail, as the finger gallery itself would stop there
        by_session: dict[str, dict[int, Any]] = {}
        for rid, t in fingers.items():
            sid, _, pos = rid.rpartition(":")
            if sid and pos.isdigit() and 1 <= int(pos) <= 10:
                by_session.setdefault(sid, {})[int(pos)] = t
        for sid, views in by_session.items():
            if sid not in persons:
                persons.insert(sid, views)
        old.rename(data_dir / "gallery.migrated")
    return persons


def open_desk(settings: Any) -> tuple[Any, EnrollmentStore, Any]:
    """The enrollment desk of a station: its :class:`~.enrollment.Enrollments` over the store
    of ``settings`` and the station's gallery of persons (:func:`desk_gallery`), the store, and
    the outbox sender (None without a central URL; not started)."""
    from ...store.outbox import OutboxSender
    from .enrollment import Enrollments

    store = EnrollmentStore.open(settings)
    desk = Enrollments(StoreSessions(store), desk_gallery(settings.data_dir),
                       audit=audit_to_store(store), station=store.station_id,
                       capture_timeout_s=settings.capture_timeout_s)
    return desk, store, OutboxSender.from_settings(store, settings)
