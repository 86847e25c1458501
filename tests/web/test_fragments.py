"""Every page of each area answers an htmx request too: the page, or the block it names."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.conftest import Demo
from tests.web.patient_records import records_of

AREAS = [("patient.", "alice"), ("staff.", "dr_chen"), ("admin.", "admin")]


def _get_urls(app: Flask, prefix: str, records: dict[str, object]) -> list[str]:
    urls = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if not rule.endpoint.startswith(prefix) or "GET" not in rule.methods:
                continue
            if rule.rule.endswith((".csv", ".json")):
                continue  # a download, not a page
            args = {name: records[name] for name in rule.arguments if name in records}
            if set(args) != set(rule.arguments):
                continue  # e.g. a signed token: covered by the area's own tests
            urls.append(url_for(rule.endpoint, **args))
    return urls


@pytest.mark.parametrize(("prefix", "who"), AREAS, ids=[p for p, _ in AREAS])
def test_every_page_answers_a_full_and_an_htmx_request(
    app: Flask,
    session,
    as_user,
    people: Demo,
    alice_records,
    prefix: str,
    who: str,
) -> None:
    client = as_user(who)
    records = dict(alice_records)
    if who == "alice":  # records alice herself may see (alice_records has a draft plan)
        mine = records_of(session, people, "alice")
        records.update(plan_id=mine.plan_id, result_id=mine.result_id)
    urls = _get_urls(app, prefix, records)
    assert len(urls) >= 4
    full: dict[str, str] = {}
    partial = {"HX-Request": "true"}
    boosted = {"HX-Request": "true", "HX-Boosted": "true"}
    for url in urls:
        for headers in (full, partial, boosted):
            response = client.get(url, headers=headers)
            assert response.status_code in (200, 302, 303), (url, headers, response.status_code)
            if response.status_code != 200:
                continue
            whole = "<html" in response.get_data(as_text=True)
            # A navigation (plain or boosted) gets the whole page: htmx swaps its <body> and
            # title. Only a partial request may get a block alone.
            assert whole or headers is partial, (url, headers, "a bare fragment for a navigation")
