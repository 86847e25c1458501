"""The marker for tables that hold a patient's protected health information."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Mapped


class PatientOwned:
    """Rows that belong to one patient. Reads of these go through `portal.access.scope`."""

    __abstract__ = True
    patient_id: Mapped[int]


class ImmutableRowError(RuntimeError):
    """Something tried to change a row that is written once (a version, an audit entry)."""


def write_once(
    cls: type, *, settable: frozenset[str] = frozenset(), mutable: frozenset[str] = frozenset()
) -> None:
    """Refuse ORM updates of `cls` rows, except first writes of the `settable` columns and any
    write of the `mutable` ones (bookkeeping about the row, never what it says)."""

    def check(_mapper: Any, _conn: Any, target: Any) -> None:
        state = inspect(target)
        for attr in state.attrs:
            history = attr.load_history()
            if not history.has_changes() or attr.key in mutable:
                continue
            first_write = attr.key in settable and not any(v is not None for v in history.deleted)
            if not first_write:
                raise ImmutableRowError(f"{cls.__name__}.{attr.key} cannot be changed")

    def refuse_delete(_mapper: Any, _conn: Any, _target: Any) -> None:
        raise ImmutableRowError(f"{cls.__name__} rows cannot be deleted")

    event.listen(cls, "before_update", check)
    event.listen(cls, "before_delete", refuse_delete)
