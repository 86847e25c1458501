"""Event ids follow commit order, or a socket that has sent event 101 would never send an
event 100 committed after it: on PostgreSQL a transaction staging events holds the audit
chain's lock until it commits, so a second one waits before drawing its ids."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import create_app, demo
from portal.access import unscoped
from portal.cli import upgrade_database
from portal.extensions import db
from portal.models import EventType, Notification, User
from portal.services import notifications
from tests.support import app_config, backend, new_database


def _stage(session: Session, user_id: int) -> int:
    notifications.stage(
        session, [user_id], type=EventType.MESSAGE_CREATED, entity_id=1, patient_id=None, text="-"
    )
    session.flush()
    newest = unscoped(select(func.max(Notification.id)), "test: the id just drawn")
    return int(session.scalar(newest) or 0)


@pytest.mark.skipif(backend() != "postgresql", reason="SQLite's writers are serial already")
def test_a_second_writer_of_events_waits_for_the_first_to_commit(tmp_path) -> None:
    app = create_app(app_config(new_database(tmp_path, "event_order")))
    upgrade_database(app)
    with app.app_context():
        demo.seed(db.session)
        engine = db.engine
    with Session(engine) as s:
        user_id = s.scalar(select(User.id).where(User.email == "dr.chen@example.org"))
    assert user_id is not None
    second: dict[str, int] = {}
    done = threading.Event()

    def write_second() -> None:
        with Session(engine) as s:
            second["id"] = _stage(s, user_id)
            s.commit()
        done.set()

    with Session(engine) as first:
        first_id = _stage(first, user_id)
        thread = threading.Thread(target=write_second)
        thread.start()
        assert not done.wait(1.0), "the second writer committed while the first was open"
        first.commit()
    thread.join(timeout=30)
    assert done.is_set()
    assert second["id"] > first_id
    engine.dispose()
