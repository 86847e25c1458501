"""Proxy access through the API: a caregiver reads what the grant opens with the patient's
id, nothing else, and nothing once the patient removes them; every read names the grant."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from portal.models import ProxyScope
from portal.services import proxies
from tests.api.conftest import Api, problem
from tests.conftest import Demo
from tests.web.audit_support import entries_for


def _carol_cares_for_dan(session: Session, people: Demo) -> int:
    """The demo's grant: Dan (an adult) lets Carol open his lab results and appointments, not
    his messages."""
    (held,) = proxies.held_records(session, people.actor("carol"))
    assert held.patient_id == people.user("dan").patient.id
    assert held.delegation.scopes == {ProxyScope.LAB_RESULTS, ProxyScope.APPOINTMENTS}
    return held.delegation.grant_id


def test_a_caregiver_reads_within_the_grant_and_every_read_names_it(
    api: Callable[[str], Api], people: Demo, session: Session
) -> None:
    grant_id = _carol_cares_for_dan(session, people)
    dan = people.user("dan").patient.id
    carol = api("carol")

    listed = carol.get("/me")
    results = carol.get(f"/patients/{dan}/lab-results")

    assert listed.status_code == 200
    (held,) = listed.json["proxyFor"]
    assert (held["patientId"], held["relationship"]) == (dan, "caregiver")
    assert held["scopes"] == ["appointments", "lab-results"]
    assert results.status_code == 200, results.get_data(as_text=True)[:300]
    assert results.json["items"]
    assert {r["patientId"] for r in results.json["items"]} == {dan}
    (entry,) = entries_for(session, results)
    assert (entry.actor_id, entry.patient_id) == (people.user("carol").id, dan)
    assert f'"proxy_grant":{grant_id}' in entry.detail
    # Dan's access log names her, as his proxy.
    log = api("dan").get("/me/access-log").json["items"]
    assert {"who": "Carol Jensen", "role": "Proxy", "proxy": True} in [
        {k: e[k] for k in ("who", "role", "proxy")} for e in log
    ]
    # Outside the grant's scopes, and another patient's record: as for anything not hers.
    problem(carol.get(f"/patients/{dan}/treatment-plans"), 404)
    problem(carol.get(f"/patients/{people.user('bob').patient.id}/lab-results"), 404)


def test_the_patient_sees_who_holds_access_and_removing_it_takes_effect_at_once(
    api: Callable[[str], Api], people: Demo, session: Session
) -> None:
    grant_id = _carol_cares_for_dan(session, people)
    dan = people.user("dan").patient.id
    carol, dans = api("carol"), api("dan")
    assert carol.get(f"/patients/{dan}/lab-results").status_code == 200

    mine = dans.get("/me/proxies")
    removed = dans.delete(f"/me/proxies/{grant_id}")

    assert [(p["id"], p["userId"]) for p in mine.json["items"]] == [
        (grant_id, people.user("carol").id)
    ]
    assert removed.status_code == 204
    problem(carol.get(f"/patients/{dan}/lab-results"), 404)
    assert carol.get("/me").json["proxyFor"] == []
    assert dans.get("/me/proxies").json["items"] == []
    # Nobody else removes it (a second time, or bob): not theirs.
    problem(api("bob").delete(f"/me/proxies/{grant_id}"), 404)
