"""An id in a URL that no row can have answers 404, never a 500, on every route that takes one."""

from __future__ import annotations

import pytest
from flask import Flask
from werkzeug.routing import IntegerConverter

from tests.conftest import DEMO_EMAILS, IsolatedClient, login


@pytest.mark.parametrize(
    "raw", ["99999999999999999999", "9223372036854775808", "2147483648", "0", "%D9%A3", "%C2%B2"]
)
def test_an_id_no_row_can_have_is_a_404_on_every_route(app: Flask, connection, raw: str) -> None:
    # Arrange: every rule with an integer argument, as the role its area is for
    who = {"patient": "alice", "staff": "dr_chen", "admin": "admin", "auth": "alice"}
    app.test_client_class = IsolatedClient
    rules = [
        r
        for r in app.url_map.iter_rules()
        if r.endpoint.split(".")[0] in who
        and any(isinstance(c, IntegerConverter) for c in r._converters.values())
    ]
    assert len(rules) > 10
    for area, name in who.items():
        client = app.test_client()
        login(client, DEMO_EMAILS[name])
        for rule in (r for r in rules if r.endpoint.startswith(area + ".")):
            path = rule.rule
            for arg in rule.arguments:
                path = path.replace(f"<int:{arg}>", raw)
            # Act
            response = client.get(path) if "GET" in (rule.methods or ()) else client.post(path)
            # Assert
            assert response.status_code in (404, 405), (path, response.status_code)
