"""Writers at the same instant queue for the database instead of failing.

On the SQLite default a deferred transaction that read and then writes fails with "database is
locked" when another writer committed in between; every change now takes the write lock up
front (`unit_of_work`). Each test releases its requests together from a barrier.
"""

from __future__ import annotations

import re

import requests
from flask import Flask
from sqlalchemy import func, select

from portal.access import unscoped
from portal.extensions import db
from portal.models import AuditAction, AuditEvent, Conversation, Message, SignInThrottle
from portal.services import throttle
from tests.support import PASSWORD, all_at_once, patient_id_of
from tests.support import csrf_of as _csrf
from tests.support import signed_in as _signed_in


def test_a_burst_of_failed_sign_ins_neither_fails_nor_blocks_the_right_ones(
    served: tuple[Flask, str],
) -> None:
    app, base = served
    attackers = [requests.Session() for _ in range(8)]
    tokens = [_csrf(a, base + "/login") for a in attackers]
    people = {email: requests.Session() for email in ("alice@example.org", "bob@example.org")}
    person_tokens = {e: _csrf(s, base + "/login") for e, s in people.items()}

    def attempt(s: requests.Session, email: str, password: str, token: str):  # type: ignore[no-untyped-def]
        return lambda: s.post(
            base + "/login",
            data={"email": email, "password": password, "csrf_token": token},
            allow_redirects=False,
            timeout=60,
        )

    calls = [
        attempt(a, "carol@example.org", "not her password at all", t)
        for a, t in zip(attackers, tokens, strict=True)
    ] + [attempt(s, e, PASSWORD, person_tokens[e]) for e, s in people.items()]
    with app.app_context():
        before = db.session.scalar(
            select(func.count()).where(AuditEvent.action == AuditAction.SIGN_IN_FAILED)
        )
        db.session.rollback()

    statuses = [r.status_code for r in all_at_once(calls)]

    # Each wrong one is refused (422) or, once the address is paused, told to wait (429).
    assert set(statuses[:8]) <= {422, 429}
    counted = statuses[:8].count(422)
    assert counted >= 5
    assert statuses[8:] == [303, 303]
    with app.app_context():
        after = db.session.scalar(
            select(func.count()).where(AuditEvent.action == AuditAction.SIGN_IN_FAILED)
        )
        assert after - (before or 0) == 8  # every failure counted and recorded
        carol = db.session.get(SignInThrottle, throttle.account_key("carol@example.org"))
        assert carol is not None
        assert carol.failures == counted
        assert carol.blocked_until is not None


def test_two_patients_replying_at_the_same_instant_both_succeed(
    served: tuple[Flask, str],
) -> None:
    _app, base = served
    alice = _signed_in(base, "alice@example.org")
    bob = _signed_in(base, "bob@example.org")
    threads = {}
    for name, s in (("alice", alice), ("bob", bob)):
        page = s.get(base + "/my/messages", timeout=30).text
        threads[name] = re.findall(r'href="/my/messages/(\d+)"', page)[0]

    def reply(s: requests.Session, conversation: str):  # type: ignore[no-untyped-def]
        url = f"{base}/my/messages/{conversation}"
        token = _csrf(s, url)
        return lambda: s.post(
            url + "/reply",
            data={"body": "Thank you, see you then.", "csrf_token": token},
            allow_redirects=False,
            timeout=60,
        )

    pair = [reply(alice, threads["alice"]), reply(bob, threads["bob"])]
    # 50 rounds of the two released together (issue 12): not one 500 in any of them.
    statuses = [r.status_code for _round in range(50) for r in all_at_once(pair)]
    assert statuses == [303] * 100


def test_a_double_click_on_send_makes_one_message_and_answers_both_clicks(
    served: tuple[Flask, str],
) -> None:
    app, base = served
    alice = _signed_in(base, "alice@example.org")
    page = alice.get(base + "/my/messages", timeout=30).text
    conversation = re.findall(r'href="/my/messages/(\d+)"', page)[0]
    url = f"{base}/my/messages/{conversation}"
    token = _csrf(alice, url)
    form = {"body": "Sent once, clicked twice.", "csrf_token": token, "idempotency_key": "k" * 32}
    with app.app_context():
        before = db.session.scalar(unscoped(select(func.count()).select_from(Message), "test")) or 0
        db.session.rollback()

    click = lambda: alice.post(url + "/reply", data=form, allow_redirects=False, timeout=60)  # noqa: E731
    statuses = [r.status_code for r in all_at_once([click, click])]

    assert set(statuses) <= {303, 409}
    assert 303 in statuses
    with app.app_context():
        after = db.session.scalar(unscoped(select(func.count()).select_from(Message), "test")) or 0
        assert after == before + 1


def test_a_double_click_on_write_to_patient_opens_one_thread(
    served: tuple[Flask, str],
) -> None:
    # Arrange: one rendering of dr.chen's "Write to patient" form, posted twice at once
    app, base = served
    chen = _signed_in(base, "dr.chen@example.org")
    bob = patient_id_of(base, "bob@example.org")
    url = f"{base}/staff/patients/{bob}/messages/new"
    page = chen.get(url, timeout=30).text
    key = re.search(r'name="idempotency_key" type="hidden" value="(\w+)"', page)
    assert key
    form = {"subject": "Clicked twice", "body": "One thread.", "idempotency_key": key.group(1)}
    form["csrf_token"] = _csrf(chen, url)
    click = lambda: chen.post(url, data=form, allow_redirects=False, timeout=60)  # noqa: E731
    # Act
    answers = all_at_once([click, click])
    # Assert: both clicks answered with the one thread (on PostgreSQL the loser's is undone)
    assert [r.status_code for r in answers] == [303, 303]
    assert answers[0].headers["Location"] == answers[1].headers["Location"]
    with app.app_context():
        stmt = select(func.count()).where(Conversation.subject == "Clicked twice")
        assert db.session.scalar(unscoped(stmt, "test")) == 1
        db.session.rollback()
