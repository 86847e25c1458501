"""Events across processes, in the production layout of `Procfile`: the pages and the API
served by gunicorn's sync workers (`web`, two of them), the sockets by a threaded worker
(`ws`), one database. A change made through `web` reaches a socket held by `ws`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_websocket import Client, ConnectionClosed, ConnectionError

from tests.support import (
    bearer,
    csrf_of,
    open_socket,
    patient_id_of,
    procfile_layout,
    publish,
    signed_in,
)

ALICE, CHEN = "alice@example.org", "dr.chen@example.org"


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with procfile_layout(tmp_path_factory.mktemp("processes"), "processes") as found:
        yield found.web, found.ws


def next_event(ws: Client, timeout: float = 10.0) -> dict[str, Any] | None:
    raw = ws.receive(timeout=timeout)
    return None if raw is None else json.loads(raw)


def test_changes_through_the_other_processes_reach_the_socket(layout: tuple[str, str]) -> None:
    web, ws_base = layout
    alice, chen = signed_in(web, ALICE), signed_in(web, CHEN)
    alice_socket = open_socket(ws_base, alice, pages=web)
    chen_socket = open_socket(ws_base, chen, pages=web)
    try:
        # The API, through `web`: dr.chen publishes; Alice's socket on `ws` hears of it
        result_id = publish(web, bearer(web, CHEN), patient_id_of(web, ALICE), resultValue="101")
        event = next_event(alice_socket)
        assert event is not None
        assert (event["type"], event["id"]) == ("lab_result.published", result_id)
        # A page form, through `web`: Alice writes; dr.chen's socket on `ws` hears of it
        page = alice.get(web + "/my/messages", timeout=30).text
        thread = re.findall(r'href="/my/messages/(\d+)"', page)[0]
        token = csrf_of(alice, f"{web}/my/messages/{thread}")
        sent = alice.post(
            f"{web}/my/messages/{thread}/reply",
            data={"csrf_token": token, "body": "Thank you, doctor."},
            allow_redirects=False,
            timeout=30,
        )
        assert sent.status_code == 303, sent.status_code
        event = next_event(chen_socket)
        assert event is not None
        assert (event["type"], event["id"]) == ("message.created", int(thread))
    finally:
        alice_socket.close()
        chen_socket.close()


def test_a_client_back_from_away_gets_exactly_the_three_it_missed(
    layout: tuple[str, str],
) -> None:
    web, ws_base = layout
    alice = signed_in(web, ALICE)
    chen, patient_id = bearer(web, CHEN), patient_id_of(web, ALICE)
    ws = open_socket(ws_base, alice, pages=web)
    publish(web, chen, patient_id, resultValue="102")
    event = next_event(ws)
    assert event is not None
    ws.close()
    missed = [publish(web, chen, patient_id, resultValue=str(103 + n)) for n in range(3)]
    ws = open_socket(ws_base, alice, after=event["eventId"])
    try:
        got = [next_event(ws) for _ in range(3)]
        assert [e["id"] for e in got if e is not None] == missed
        assert next_event(ws, timeout=1.0) is None
    finally:
        ws.close()


def test_signing_out_everywhere_else_closes_the_socket(layout: tuple[str, str]) -> None:
    web, ws_base = layout
    phone, laptop = signed_in(web, ALICE), signed_in(web, ALICE)
    ws = open_socket(ws_base, phone, pages=web)
    token = csrf_of(laptop, web + "/account")
    r = laptop.post(
        web + "/account/devices/sign-out-others",
        data={"csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 303, r.status_code
    with pytest.raises(ConnectionClosed) as closed:
        _receive_for(ws, seconds=10)
    assert closed.value.reason == 4401


def _receive_for(ws: Client, seconds: float) -> None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        ws.receive(timeout=0.5)


def test_a_foreign_origin_is_refused(layout: tuple[str, str]) -> None:
    web, ws_base = layout
    alice = signed_in(web, ALICE)
    with pytest.raises(ConnectionError) as refused:
        open_socket(ws_base, alice, pages=web, origin="https://evil.example")
    assert refused.value.status_code == 403


def test_the_ws_process_serves_only_the_socket(layout: tuple[str, str]) -> None:
    # The threaded `ws:` process would otherwise serve the pages and the API too, a thousand
    # at once, past the sign-in limit's and the database's sizing (issue 21, point 6).
    web, ws_base = layout
    for method, path in (
        ("GET", "/login"),
        ("POST", "/login"),
        ("POST", "/api/v1/auth/token"),
        ("GET", "/api/v1/me"),
        ("GET", "/ws/"),
        ("GET", "/health"),
    ):
        answer = requests.request(method, ws_base + path, timeout=10, allow_redirects=False)
        assert answer.status_code == 404, (method, path)
        assert answer.text == "Not found: this process serves only /ws.\n"
    # ... while /ws itself is the app's (which wants a signed-in socket, not a plain GET)
    plain = requests.get(ws_base + "/ws", timeout=10, allow_redirects=False)
    assert plain.text != "Not found: this process serves only /ws.\n"
    assert requests.get(web + "/login", timeout=10).status_code == 200
