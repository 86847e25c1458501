"""A patient's access log: who on staff viewed or changed their records, in plain words."""

from __future__ import annotations

from dataclasses import fields

import pytest
from flask import render_template
from werkzeug.exceptions import Forbidden

from portal.audit.report import AccessLogEntry, access_log_for_patient
from tests.web.audit_support import a_result_of


def test_a_providers_view_of_my_result_appears_in_my_access_log(as_user, session, people) -> None:
    # Arrange: dr.chen opens one of alice's results.
    result = a_result_of(session, people, "alice")
    assert as_user("dr_chen").get(f"/staff/results/{result.id}").status_code == 200
    # Act
    log = access_log_for_patient(session, people.actor("alice"))
    # Assert
    newest = log.rows[0]
    chen = people.user("dr_chen").provider
    assert (newest.who, newest.role, newest.action, newest.record) == (
        chen.display_name,
        "Provider",
        "Viewed",
        "a lab result",
    )


def test_my_own_visits_and_other_patients_records_are_not_listed(as_user, session, people) -> None:
    # Arrange: alice reads her own results; dr.chen opens bob's chart.
    client = as_user("alice")
    client.get("/my/lab-results")
    client.delete_cookie("portal_session")
    bob = people.user("bob").patient
    as_user("dr_chen").get(f"/staff/patients/{bob.id}")
    # Act
    entries = access_log_for_patient(session, people.actor("alice"), limit=100).rows
    # Assert
    assert all(e.role != "You" for e in entries)
    assert all(e.record != "your lab results" for e in entries)
    bobs = access_log_for_patient(session, people.actor("bob"), limit=5).rows
    assert bobs
    assert bobs[0].record == "your profile"


def test_the_access_log_shows_no_internal_ids_or_addresses(session, people) -> None:
    entries = access_log_for_patient(session, people.actor("alice"), limit=100).rows
    assert {f.name for f in fields(AccessLogEntry)} == {
        "occurred_at",
        "who",
        "role",
        "action",
        "record",
        "proxy",
    }
    for entry in entries:
        assert not any(ch.isdigit() for ch in entry.who + entry.action + entry.record)


@pytest.mark.parametrize("who", ["dr_chen", "admin"])
def test_only_patients_have_an_access_log(session, people, who: str) -> None:
    with pytest.raises(Forbidden):
        access_log_for_patient(session, people.actor(who))


def test_the_access_log_pages_by_cursor(as_user, session, people) -> None:
    result = a_result_of(session, people, "alice")
    client = as_user("dr_chen")
    for _ in range(3):
        client.get(f"/staff/results/{result.id}")
    alice = people.actor("alice")

    first = access_log_for_patient(session, alice, limit=2)
    second = access_log_for_patient(session, alice, limit=2, cursor=first.next_cursor)

    assert first.next_cursor is not None
    assert len(first.rows) == 2
    assert second.rows
    assert first.rows[-1].occurred_at >= second.rows[0].occurred_at


def test_the_partial_renders_a_labelled_table(app, as_user, session, people) -> None:
    result = a_result_of(session, people, "alice")
    as_user("dr_chen").get(f"/staff/results/{result.id}")
    log = access_log_for_patient(session, people.actor("alice"))

    with app.test_request_context("/my/profile"):
        html = render_template("patient/_access_log.html", access_log=log)

    assert '<caption class="visually-hidden">Who viewed or changed my records' in html
    assert 'scope="col">Who</th>' in html
    assert people.user("dr_chen").provider.display_name in html
    assert "Viewed a lab result" in html


def test_the_profile_page_includes_the_access_log(as_user, session, people) -> None:
    result = a_result_of(session, people, "alice")
    client = as_user("dr_chen")
    client.get(f"/staff/results/{result.id}")
    client.delete_cookie("portal_session")

    html = as_user("alice").get("/my/profile").get_data(as_text=True)

    assert "Who viewed or changed my records" in html
    assert people.user("dr_chen").provider.display_name in html


def test_the_access_log_says_nothing_about_records_i_cannot_see(as_user, session, people) -> None:
    # Arrange: dr.chen drafts a plan and enters a provider-only result for alice, and opens both
    from portal.models import ResultStatus, Visibility
    from portal.services import labs, plans

    chen = people.actor("dr_chen")
    alice = people.actor("alice")
    before = len(access_log_for_patient(session, alice, limit=100).rows)
    draft = plans.create_draft(session, chen, alice.patient_id, plans.PlanInput("Draft only"))
    hidden = labs.create_result(
        session,
        chen,
        alice.patient_id,
        test_code="2345-7",
        test_name="Glucose",
        data=labs.ResultInput(
            "5.1", "mmol/L", None, ResultStatus.FINAL, visibility=Visibility.PROVIDER_ONLY
        ),
    )
    session.commit()
    client = as_user("dr_chen")
    assert client.get(f"/staff/plans/{draft.id}").status_code == 200
    assert client.get(f"/staff/results/{hidden.id}").status_code == 200
    # Act
    log = access_log_for_patient(session, alice, limit=100)
    # Assert: not a line about either, not even "a treatment plan" was created
    assert len(log.rows) == before
    # ... until the plan is hers to see: then its history is hers too
    plans.activate(session, chen, draft.id)
    session.commit()
    records = [e.record for e in access_log_for_patient(session, alice, limit=100).rows]
    assert records.count("a treatment plan") >= 3  # created, viewed, activated
    assert "a lab result" not in records[:3]


def test_the_profile_page_pages_through_the_whole_access_log(as_user, session, people) -> None:
    # Arrange: more staff actions on alice's record than one page holds
    import html
    import re

    from portal import audit
    from portal.models import AuditAction, Entity

    alice = people.actor("alice")
    for n in range(25):
        audit.record(
            session,
            people.actor("dr_chen"),
            AuditAction.VIEW,
            Entity.PATIENT_PROFILE,
            n,
            patient_id=alice.patient_id,
        )
    session.commit()
    everything = access_log_for_patient(session, alice, limit=100)
    assert everything.next_cursor is None  # the whole log fits in 100 here
    client = as_user("alice")
    # Act: follow "Older" from the profile page to the end
    seen, url = 0, "/my/profile"
    for _ in range(10):
        page = client.get(url).get_data(as_text=True)
        seen += len(re.findall(r'<tr>\s*<th scope="row"><time', page))
        older = re.search(r'<a href="([^"]+)" rel="next">Older</a>', page)
        if older is None:
            break
        url = html.unescape(older.group(1))
    # Assert: every entry, in pages of the one Page type
    assert seen == len(everything.rows) > 20
