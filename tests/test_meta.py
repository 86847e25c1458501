"""Tests about the app as a whole, found by walking it rather than listing routes by hand:
every view declares its audit, every state change needs a CSRF token, every page has a title,
and nothing shown to a signed-in user may be cached."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Blueprint, Flask
from jinja2 import nodes
from sqlalchemy import func, select
from werkzeug.routing import IntegerConverter, Rule

from portal import create_app
from portal.audit import audit_exempt
from portal.audit.declare import audit_spec_for
from portal.models import AuditEvent
from tests.support import app_config

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
#: Who may use each area; a request as anyone else stops at the role gate.
ROLE_FOR_AREA = {"patient": "alice", "staff": "dr_chen", "admin": "admin", "api": "dr_chen"}


def undeclared_endpoints(app: Flask) -> list[str]:
    """Endpoints whose view says neither `@audited(...)` nor `@audit_exempt`."""
    missing = []
    for endpoint, view in app.view_functions.items():
        if endpoint == "static":
            continue
        if audit_spec_for(app, endpoint) is None and not getattr(view, "audit_exempt", False):
            missing.append(endpoint)
    return sorted(missing)


def _rules(app: Flask) -> list[Rule]:
    return [r for r in app.url_map.iter_rules() if r.endpoint != "static"]


def _url(rule: Rule) -> str:
    """A concrete URL for `rule`: ids that exist in the demo data or not, it does not matter."""
    values = {name: 1 if isinstance(conv, IntegerConverter) else "x" for name, conv in
              rule._converters.items()}  # fmt: skip
    return rule.build(values)[1]  # type: ignore[index]


# --- Audit declarations ------------------------------------------------------------------------


def test_every_view_declares_whether_it_is_audited(app: Flask) -> None:
    assert undeclared_endpoints(app) == []


def test_the_declaration_check_notices_a_new_undeclared_route(database_url: str) -> None:
    # Arrange: a fresh app, with one declared and two undeclared routes added.
    fresh = create_app(app_config(database_url))
    extra = Blueprint("extra", __name__)

    @extra.get("/extra/records/<int:record_id>")
    def undeclared_record(record_id: int) -> str:
        return str(record_id)

    @extra.get("/extra/about")
    @audit_exempt
    def declared_about() -> str:
        return "about"

    fresh.register_blueprint(extra)
    fresh.add_url_rule("/undeclared", "undeclared", lambda: "x")
    # Act
    missing = undeclared_endpoints(fresh)
    # Assert
    assert missing == ["extra.undeclared_record", "undeclared"]


def test_every_area_blueprint_is_covered_by_the_walk(app: Flask) -> None:
    areas = {endpoint.split(".")[0] for endpoint in app.view_functions if "." in endpoint}
    assert {"auth", "patient", "staff", "admin"} <= areas


# --- CSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "dr_chen", "admin"])
def test_every_state_changing_route_refuses_a_post_without_csrf_token(
    app: Flask, as_user, session, who: str
) -> None:
    # Arrange
    client = as_user(who)
    before = session.scalar(select(func.count(AuditEvent.id)))
    refused: dict[str, int] = {}
    # Act
    for rule in _rules(app):
        for method in sorted((rule.methods or set()) & STATE_CHANGING):
            response = client.open(_url(rule), method=method, data={"body": "x", "email": "x@y.z"})
            refused[f"{method} {rule.rule}"] = response.status_code
    # Assert: every one is a 400, and nothing was written (every change writes an audit entry).
    # Under /api/ a form post may also meet 415: the API takes only JSON, which another site's
    # page cannot send without the browser asking this server first (CORS, never granted).
    assert refused, "no state-changing routes found"
    allowed = {400}
    assert {
        k: v
        for k, v in refused.items()
        if v not in (allowed | {415} if k.split(" ")[1].startswith("/api/") else allowed)
    } == {}
    assert session.scalar(select(func.count(AuditEvent.id))) == before
    assert client.get("/").headers["Location"] != "/login"  # not even signed out


# --- Templates ----------------------------------------------------------------------------------


def _page_templates() -> list[Path]:
    return sorted(
        p
        for p in TEMPLATES.rglob("*.html")
        if not p.name.startswith("_") and "_macros" not in p.parts and p.name != "base.html"
    )


def test_the_base_template_puts_the_title_block_in_the_title_element() -> None:
    source = (TEMPLATES / "base.html").read_text()
    assert "<title>{% block title %}" in source


@pytest.mark.parametrize("path", _page_templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_every_page_template_fills_the_title_block(app: Flask, path: Path) -> None:
    tree = app.jinja_env.parse(path.read_text())
    extends = [n.template.value for n in tree.find_all(nodes.Extends)]  # type: ignore[attr-defined]
    assert extends == ["base.html"], f"{path.name} does not extend base.html"
    titles = [b for b in tree.find_all(nodes.Block) if b.name == "title"]
    assert titles, f"{path.name} has no title block"
    text = "".join(
        n.data
        for n in titles[0].find_all(nodes.TemplateData)  # type: ignore[attr-defined]
    ).strip()
    has_expression = any(True for _ in titles[0].find_all(nodes.Output)) and any(
        True for _ in titles[0].find_all((nodes.Name, nodes.Getattr, nodes.Const))
    )
    assert text or has_expression, f"{path.name} has an empty title"


# --- Caching -----------------------------------------------------------------------------------


def _audited_get_rules(app: Flask) -> list[Rule]:
    return [
        r
        for r in _rules(app)
        if "GET" in (r.methods or set()) and audit_spec_for(app, r.endpoint) is not None
    ]


def test_every_view_that_shows_phi_is_never_cached(
    app: Flask, client, as_user, monkeypatch
) -> None:
    # Arrange: a view that fails answers 500 here instead of raising; that page counts too.
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    rules = _audited_get_rules(app)
    assert rules
    cacheable: dict[str, str] = {}
    for area, who in ROLE_FOR_AREA.items():
        area_rules = [r for r in rules if r.endpoint.startswith(area + ".")]
        if not area_rules:
            continue
        client.post("/logout")  # no token: refused, but the cookie jar is cleared below
        client.delete_cookie("portal_session")
        as_user(who)
        # Act
        for rule in area_rules:
            for headers in ({}, {"HX-Request": "true"}):
                response = client.get(_url(rule), headers=headers)
                if "no-store" not in response.headers.get("Cache-Control", ""):
                    cacheable[f"{rule.rule} {headers}"] = response.headers.get("Cache-Control", "")
    # Assert
    assert cacheable == {}


# --- Scoping ------------------------------------------------------------------------------------

PORTAL = Path(__file__).resolve().parent.parent / "portal"


def test_only_the_access_module_marks_a_statement_scoped() -> None:
    # `portal_scoped` lets a statement past the fail-closed guard: set anywhere else, it would
    # be a scope nobody reviews. Everyone else goes through access.scope*/get_or_404/unscoped.
    marked = sorted(
        str(path.relative_to(PORTAL.parent))
        for path in PORTAL.rglob("*.py")
        if "portal_scoped" in path.read_text(encoding="utf-8")
    )
    assert marked == ["portal/access.py"]


def _uses(pattern: str) -> list[str]:
    """Modules of `portal/` whose code (not comments or docstrings' prose) matches `pattern`."""
    found = []
    for path in PORTAL.rglob("*.py"):
        code = "\n".join(
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("#")
        )
        if re.search(pattern, code):
            found.append(str(path.relative_to(PORTAL.parent)))
    return sorted(found)


def test_only_the_transaction_owner_commits_or_rolls_back() -> None:
    # A change, its audit entry and its notifications commit together, in one place. (db.py's
    # is the driver connection's own, when a new PostgreSQL connection sets its time zone.)
    assert _uses(r"\.(commit|rollback)\(\)") == ["portal/db.py", "portal/transactions.py"]


def test_only_the_identity_module_reads_flask_logins_current_user() -> None:
    # Every door (a page, the API, the socket) gets its actor from portal.web.identity, which
    # knows how the caller signed in; templates get `viewer` and `actor` from it.
    assert _uses(r"\bcurrent_user\b") == ["portal/web/identity.py"]
    templates = sorted(
        p.name for p in TEMPLATES.rglob("*.html") if "current_user" in p.read_text("utf-8")
    )
    assert templates == []


def test_only_the_services_raise_the_one_error_type() -> None:
    # One error type: every service error class derives from ServiceError (pages show it on the
    # form with 422; the API will answer problem+json 422).
    from portal.services import errors

    bases = []
    for path in (PORTAL / "services").rglob("*.py"):
        for match in re.finditer(r"^class (\w+Error)\((\w+)\):", path.read_text("utf-8"), re.M):
            bases.append((path.stem, match[1], match[2]))
    assert bases
    allowed = {"ServiceError", *(name for _m, name, _b in bases)}
    assert [b for b in bases if b[2] not in allowed and b[1] != "ServiceError"] == []
    assert errors.ServiceError.__mro__[1] is ValueError


# --- Licence ------------------------------------------------------------------------------------


def test_the_license_file_is_the_apache_2_text_pyproject_names() -> None:
    import tomllib

    root = TEMPLATES.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["license"]
    text = (root / "LICENSE").read_text()
    assert declared == {"text": "Apache-2.0"}
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert text.rstrip().endswith("limitations under the License.")


DOOR_BY_PATH = r"""\bpath\b[^\n]*["'](/api|/ws|/fhir)"""


def test_only_the_doors_module_tells_the_door_from_the_path() -> None:
    # Which door a request came through (a page, the API, the socket, FHIR) is decided once, in
    # portal/web/doors.py; everything else asks `doors.current()` or the actor's `door`.
    assert set(_uses(DOOR_BY_PATH)) <= {"portal/web/doors.py"}


@pytest.mark.parametrize(
    "line",
    [
        'api = req.path.startswith("/api/")',
        'if request.path.startswith("/api/") or request.path == "/ws":',
        "return 'api' if request.path.startswith('/api/') else 'page'",
        'if request.path.startswith("/fhir/"):',
    ],
)
def test_the_door_check_notices_a_path_test(line: str) -> None:
    assert re.search(DOOR_BY_PATH, line)


def test_templates_ask_booleans_not_stored_status_strings() -> None:
    # "Is this plan a draft?" is answered once, in Python (`plan.is_draft`), not by each
    # template comparing the stored value: a renamed status would silently change a page.
    compared = sorted(
        str(p.relative_to(TEMPLATES))
        for p in TEMPLATES.rglob("*.html")
        if re.search(r"""\.value\s*[!=]=\s*['"]""", p.read_text("utf-8"))
    )
    assert compared == []


def test_the_procfiles_ws_process_serves_only_the_socket() -> None:
    # `wsgi:ws_app` is the portal for /ws alone (portal.realtime.only); `web:` keeps the rest.
    lines = dict(
        line.split(":", 1)
        for line in (Path(__file__).resolve().parents[1] / "Procfile").read_text().splitlines()
        if line
    )
    assert lines["ws"].rstrip().endswith(" wsgi:ws_app")
    assert lines["web"].rstrip().endswith(" wsgi:app")
