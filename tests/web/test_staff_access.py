"""Access to the staff and admin areas, derived from the URL map so new routes are covered.

dr.okafor is a provider but not on alice's care team: every staff route that names one of
alice's records answers 404, exactly as for a record that does not exist. Other roles never
get into an area that is not theirs (403, or 404 when the record is checked first).
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.services import attachments
from tests.conftest import Demo, post

#: Form data that gets every POST past its own validation to the access check.
FORM = {
    "status": "completed",
    "body": "Hello",
    "reason": "A reason",
    "result_value": "5",
    "test_code": "718-7",
    "test_name": "Hemoglobin",
    "summary": "A plan",
    "subject": "A subject",
    "provider_id": "1",
}


def _rules(app: Flask, prefix: str) -> list[tuple[str, str, list[str]]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(prefix):
            methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
            found.append((rule.endpoint, rule.rule, methods))
    return found


def _url(rule: str, values: dict[str, object]) -> str:
    path = rule
    for name, value in values.items():
        path = path.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
    assert "<" not in path, f"no test value for an argument of {rule}: add it to alice_records"
    return path


def test_provider_outside_the_care_team_gets_404_from_every_staff_route_naming_alices_records(
    app: Flask, as_user, people: Demo, alice_records: dict[str, object]
) -> None:
    # Arrange
    client: FlaskClient = as_user("dr_okafor")
    okafor = people.user("dr_okafor")
    values = {
        **alice_records,
        "token": attachments.link_token(int(alice_records["attachment_id"]), okafor.id),  # type: ignore[call-overload]
    }
    checked = []
    # Act
    for endpoint, rule, methods in _rules(app, "staff."):
        if "<" not in rule:
            continue
        path = _url(rule, values)
        for method in methods:
            response = client.get(path) if method == "GET" else post(client, path, FORM)
            # Assert
            assert response.status_code == 404, f"{method} {path} ({endpoint})"
            checked.append(endpoint)
    assert {"staff.chart", "staff.result", "staff.attachment", "staff.remove_rule"} <= set(checked)


def test_provider_on_the_care_team_opens_alices_records_by_the_same_routes(
    app: Flask, as_user, people: Demo, alice_records: dict[str, object]
) -> None:
    client = as_user("dr_chen")
    values = {
        **alice_records,
        "token": attachments.link_token(
            int(alice_records["attachment_id"]),  # type: ignore[call-overload]
            people.user("dr_chen").id,
        ),
    }
    for endpoint, rule, methods in _rules(app, "staff."):
        if "GET" in methods and "<" in rule:
            path = _url(rule, values)
            # A notification opens by leading on to the record it is about.
            expected = 303 if endpoint == "staff.open_notification" else 200
            assert client.get(path).status_code == expected, path


@pytest.mark.parametrize(
    ("who", "area"),
    [
        ("alice", "staff."),
        ("alice", "admin."),
        ("admin", "staff."),
        ("dr_chen", "admin."),
    ],
)
def test_a_role_never_gets_into_an_area_that_is_not_its_own(
    app: Flask, as_user, people: Demo, alice_records: dict[str, object], who: str, area: str
) -> None:
    client = as_user(who)
    values = {**alice_records, "token": "not-a-token"}
    for endpoint, rule, methods in _rules(app, area):
        path = _url(rule, values)
        for method in methods:
            response = client.get(path) if method == "GET" else post(client, path, FORM)
            assert response.status_code in (403, 404), f"{who}: {method} {path} ({endpoint})"
