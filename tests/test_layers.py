"""The layers of portal/, bottom up, and the few imports that reach up (docs/architecture.md).

0 the record: models, db, the actor's types, extensions, config, zones, the locale core
1 the rules: access (policy), audit (the writer, the chain), transactions
2 the services (domain verbs and read models)
3 the web: doors, identity, the read hook, forms, templating, the language choice
4 the doors' blueprints: patient, staff, admin, auth, api, realtime, errors, health, cli, demo
"""

from __future__ import annotations

import ast
from pathlib import Path

PORTAL = Path(__file__).resolve().parent.parent / "portal"

LAYERS = {
    **dict.fromkeys(("models", "db", "actor", "extensions", "config", "zones", "i18n"), 0),
    **dict.fromkeys(("access", "audit", "transactions"), 1),
    "services": 2,
    "web": 3,
}

#: The imports from a lower layer to a higher one that are allowed, each for a reason.
REACHING_UP = {
    # The one error type of the services, which the transaction owner turns into refusals.
    ("portal.transactions", "portal.services.errors"),
    # The access log and the admin report are paged with the one list type.
    ("portal.audit.report", "portal.services"),
    # Every page's footer carries the time-zone form of the account pages.
    ("portal.web.templating", "portal.auth.forms"),
}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 4) if len(parts) > 1 else 4


def _imports() -> set[tuple[str, str]]:
    found = set()
    for path in PORTAL.rglob("*.py"):
        module = ".".join(path.relative_to(PORTAL.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
                if node.module == "portal":
                    names = [f"portal.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found |= {(module, name) for name in names if name.startswith("portal.")}
    return found


def test_only_the_named_imports_reach_up_a_layer() -> None:
    upward = {(a, b) for a, b in _imports() if _layer(b) > _layer(a)}
    assert upward == REACHING_UP
    assert len(REACHING_UP) <= 3


def test_the_layer_check_notices_a_service_importing_a_door() -> None:
    assert _layer("portal.web.doors") > _layer("portal.services.labs")
    assert _layer("portal.api.errors") > _layer("portal.web.doors")
