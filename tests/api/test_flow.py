"""The seed's main flow through the API alone, as apps would drive it: a provider publishes and
corrects a result, the patient reads it, writes (a retried send makes one message),
acknowledges the plan, books and cancels a visit; nobody reads what is not theirs; the admin
reads the flow's audit trail and the patient their access log."""

from __future__ import annotations

from datetime import timedelta

from portal.db import utcnow
from tests.api.conftest import problem
from tests.conftest import Demo


def test_the_main_flow_through_the_api_alone(api, people: Demo) -> None:  # type: ignore[no-untyped-def]
    chen, alice, okafor, admin = api("dr_chen"), api("alice"), api("dr_okafor"), api("admin")
    me = alice.get("/me").json
    pid = me["patient"]["id"]

    # A provider creates and publishes a result; the patient lists results newest first.
    created = chen.post(
        f"/patients/{pid}/lab-results",
        json={
            "testCode": "2345-7",
            "testName": "Glucose",
            "resultValue": "110",
            "units": "mg/dL",
            "referenceRange": "70-99",
            "status": "final",
        },
        headers={"Idempotency-Key": "flow-result-1"},
    )
    assert created.status_code == 201, created.json
    result_id = created.json["id"]
    listed = alice.get(f"/patients/{pid}/lab-results", query_string={"limit": 5}).json
    assert listed["items"][0]["id"] == result_id
    assert listed["items"][0]["flag"] == "high"  # the flag is words, not a colour
    times = [i["collectedAt"] for i in listed["items"]]
    assert times == sorted(times, reverse=True)

    # A correction: the new value is current, the earlier one stays readable.
    corrected = chen.post(
        f"/lab-results/{result_id}/versions",
        json={"resultValue": "95", "status": "corrected", "reason": "Transcription error"},
    )
    assert corrected.status_code == 201, corrected.json
    history = alice.get(f"/lab-results/{result_id}").json
    assert history["resultValue"] == "95"
    assert history["version"] == 2
    assert {v["resultValue"] for v in history["versions"]} >= {"95", "110"}

    # A message sent twice with one key is one message.
    thread = alice.get("/conversations").json["items"][0]["id"]
    before = len(
        alice.get(f"/conversations/{thread}/messages", query_string={"limit": 100}).json["items"]
    )
    for _ in range(2):
        sent = alice.post(
            f"/conversations/{thread}/messages",
            json={"body": "Is 95 fine now?"},
            headers={"Idempotency-Key": "flow-message-1"},
        )
        assert sent.status_code == 201
    messages = alice.get(f"/conversations/{thread}/messages", query_string={"limit": 100}).json
    assert len(messages["items"]) == before + 1

    # The patient acknowledges the active plan version.
    plans = alice.get(f"/patients/{pid}/treatment-plans", query_string={"status": "active"}).json
    plan_id = plans["items"][0]["id"]
    assert alice.post(f"/treatment-plans/{plan_id}/acknowledge").status_code == 200

    # Books a visit at an open slot of their provider, then cancels it.
    provider = next(
        p for p in alice.get("/providers").json["items"] if p["userId"] == people.user("dr_chen").id
    )
    start = (utcnow() + timedelta(days=3)).date()
    slots = alice.get(
        f"/providers/{provider['userId']}/slots",
        query_string={"from": start.isoformat(), "to": (start + timedelta(days=7)).isoformat()},
    ).json["items"]
    assert slots
    booked = alice.post(
        "/appointments",
        json={"providerId": provider["userId"], "startAt": slots[0]["startAt"], "reason": "Review"},
    )
    assert booked.status_code == 201, booked.json
    cancelled = alice.post(f"/appointments/{booked.json['id']}/cancel", json={"reason": "Better"})
    assert cancelled.status_code == 200, cancelled.json
    assert cancelled.json["status"] == "cancelled"

    # Another patient's result is a 404, exactly like a missing one.
    bob_pid = people.user("bob").patient.id
    bobs = api("bob").get(f"/patients/{bob_pid}/lab-results", query_string={"limit": 1}).json
    problem(alice.get(f"/lab-results/{bobs['items'][0]['id']}"), 404)
    problem(alice.get("/lab-results/2147483647"), 404)

    # A provider outside alice's care team gets 404 for every record of hers.
    for path in (
        f"/patients/{pid}",
        f"/patients/{pid}/lab-results",
        f"/lab-results/{result_id}",
        f"/patients/{pid}/treatment-plans",
        f"/conversations/{thread}/messages",
    ):
        problem(okafor.get(path), 404)

    # The admin reads the flow's audit trail; every entry of it came through the API.
    events = admin.get("/audit-events", query_string={"patientId": pid, "limit": 100}).json
    flow = [e for e in events["items"] if (e["metadata"] or {}).get("channel") == "api"]
    actions = {(e["action"], e["entityType"]) for e in flow}
    assert {
        ("publish", "lab_result"),
        ("correct", "lab_result"),
        ("view", "lab_result_list"),
        ("view", "lab_result"),
        ("send", "message"),
        ("acknowledge", "treatment_plan"),
        ("create", "appointment"),
        ("cancel", "appointment"),
    } <= actions
    # The patient reads who looked at or changed their records.
    log = alice.get("/me/access-log", query_string={"limit": 100}).json["items"]
    assert any(e["who"] == "Dr. Wei Chen" or e["role"] == "Provider" for e in log)
