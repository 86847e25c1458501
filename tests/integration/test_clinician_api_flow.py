"""The clinician's side of the seed's flow through the API alone (issue 25), against the served
app: a preliminary result, finalised; the patient's socket hears of it (ids only); a result
held by its clinician for a recorded reason, then released; a report attached and downloaded
by the patient; a thread started with only the ids the API handed out."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import requests
from flask import Flask
from simple_websocket import Client

from portal.db import utcnow
from portal.demo import MINIMAL_PDF
from tests.support import bearer, open_socket, signed_in

ALICE, CHEN = "alice@example.org", "dr.chen@example.org"


def _event(ws: Client, timeout: float = 10.0) -> dict[str, Any] | None:
    raw = ws.receive(timeout=timeout)
    return None if raw is None else json.loads(raw)


def test_the_clinicians_side_of_the_seed_flow_through_the_api_alone(
    served: tuple[Flask, str],
) -> None:
    _app, base = served
    api = f"{base}/api/v1"
    chen, alice_api = bearer(base, CHEN), bearer(base, ALICE)

    def call(
        method: str, path: str, who: dict[str, str], key: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = {**who, **({"Idempotency-Key": key} if key else {})}
        return requests.request(method, api + path, headers=headers, timeout=30, **kwargs)

    # The provider finds the patient from what the API shows: the roster gives both ids.
    (patient,) = [p for p in call("GET", "/patients", chen, params={"q": "Alice"}).json()["items"]]
    pid, alice_user = patient["id"], patient["userId"]
    assert alice_user == call("GET", "/me", alice_api).json()["id"]

    alice = signed_in(base, ALICE)
    ws = open_socket(base, alice)
    try:
        # A preliminary result: the patient neither sees it nor hears of it.
        made = call(
            "POST",
            f"/patients/{pid}/lab-results",
            chen,
            json={
                "testCode": "2345-7",
                "testName": "Glucose",
                "resultValue": "104",
                "status": "preliminary",
            },
        )
        assert made.status_code == 201, made.text[:300]
        result_id = made.json()["id"]
        assert call("GET", f"/lab-results/{result_id}", alice_api).status_code == 404
        assert _event(ws, timeout=1.0) is None

        # Finalised: released at once (the default), and the patient's socket says so.
        final = call(
            "POST",
            f"/lab-results/{result_id}/versions",
            chen,
            key="flow-finalise-1",
            json={"resultValue": "98", "status": "final"},
        )
        assert final.status_code == 201, final.text[:300]
        assert final.json()["status"] == "final"
        assert final.json()["versions"][0]["releasedAt"] is not None
        event = _event(ws)
        assert event is not None
        assert (event["type"], event["id"], event["patientId"]) == (
            "lab_result.published",
            result_id,
            pid,
        )
        assert "Glucose" not in json.dumps(event)
        seen = call("GET", f"/lab-results/{result_id}", alice_api).json()
        assert (seen["resultValue"], seen["status"]) == ("98", "final")
        # Finalising again is refused: the result is published, a change is a correction.
        again = call(
            "POST",
            f"/lab-results/{result_id}/versions",
            chen,
            json={"resultValue": "97", "status": "final"},
        )
        assert again.status_code == 422
        assert "status" in again.json()["errors"]

        # A result held by its clinician: nothing reaches the patient until the release.
        until = (utcnow() + timedelta(days=5)).replace(microsecond=0)
        held = call(
            "POST",
            f"/patients/{pid}/lab-results",
            chen,
            json={
                "testCode": "2345-7",
                "testName": "Glucose",
                "resultValue": "310",
                "status": "final",
                "hold": {"reason": "To be explained at Friday's visit", "until": until.isoformat()},
            },
        )
        assert held.status_code == 201, held.text[:300]
        held_id = held.json()["id"]
        detail = call("GET", f"/lab-results/{held_id}", chen).json()
        assert detail["hold"]["heldBy"] == call("GET", "/me", chen).json()["id"]
        assert detail["hold"]["active"] is True
        assert detail["versions"][0]["releasedAt"] is None
        assert detail["versions"][0]["releaseDueAt"] == until.isoformat().replace("+00:00", "Z")
        assert call("GET", f"/lab-results/{held_id}", alice_api).status_code == 404
        assert _event(ws, timeout=1.0) is None

        # A report attached to it while held stays with it.
        pdf = base64.b64encode(MINIMAL_PDF).decode()
        attached = call(
            "POST",
            f"/lab-results/{held_id}/attachments",
            chen,
            json={"filename": "glucose-report.pdf", "content": pdf},
        )
        assert attached.status_code == 201, attached.text[:300]
        file_id = attached.json()["id"]
        assert call("GET", f"/attachments/{file_id}", alice_api).status_code == 404

        released = call("POST", f"/lab-results/{held_id}/release", chen)
        assert released.status_code == 200, released.text[:300]
        assert released.json()["versions"][0]["reviewedBy"] == detail["hold"]["heldBy"]
        event = _event(ws)
        assert event is not None
        assert (event["type"], event["id"]) == ("lab_result.published", held_id)
        assert call("POST", f"/lab-results/{held_id}/release", chen).status_code == 422
    finally:
        ws.close()

    # The patient reads the result, finds its report and downloads the same bytes.
    mine = call("GET", f"/lab-results/{held_id}", alice_api).json()
    (listed,) = mine["versions"][0]["attachments"]
    assert listed["id"] == file_id
    download = call("GET", f"/attachments/{file_id}", alice_api)
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.content == MINIMAL_PDF
    assert "attachment;" in download.headers["Content-Disposition"]

    # A thread started with only what the API returned: patientId and no `to` (or userId).
    started = call(
        "POST",
        "/conversations",
        chen,
        json={"subject": "Your glucose", "body": "Let us talk on Friday.", "patientId": pid},
    )
    assert started.status_code == 201, started.text[:300]
    assert alice_user in started.json()["participants"]
    named = call(
        "POST",
        "/conversations",
        chen,
        json={"subject": "Diet", "body": "A leaflet follows.", "patientId": pid, "to": alice_user},
    )
    assert named.status_code == 201, named.text[:300]
    threads = {c["id"] for c in call("GET", "/conversations", alice_api).json()["items"]}
    assert {started.json()["id"], named.json()["id"]} <= threads

    # A reply carries a file through the API, and the patient downloads it too.
    reply = call(
        "POST",
        f"/conversations/{started.json()['id']}/messages",
        chen,
        json={"body": "The leaflet.", "attachments": [{"filename": "diet.pdf", "content": pdf}]},
    )
    assert reply.status_code == 201, reply.text[:300]
    (sent,) = reply.json()["attachments"]
    assert call("GET", f"/attachments/{sent['id']}", alice_api).content == MINIMAL_PDF

    # Every download is in the audit trail, as an API read.
    admin = bearer(base, "admin@example.org")
    entries = call(
        "GET",
        "/audit-events",
        admin,
        params={"patientId": pid, "action": "download", "limit": 100},
    ).json()["items"]
    assert {e["entityId"] for e in entries if e["entityType"] == "attachment"} >= {
        str(file_id),
        str(sent["id"]),
    }
