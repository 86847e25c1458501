"""Lab test names in the reader's language, by LOINC code (issue 27).

The names a result is stored with are the clinic's English (or whatever the lab sent); pages
show the reader's language when a name for the test's code is known: first the clinic's own
file (`LAB_NAMES_DIR`, default `<instance>/lab-names/`, a `<locale>.json` per language: the
clinic can add its tests or change a name), then the portal's (`portal/lab_names/<locale>.json`,
the tests of `services.catalog`). A code without a name in either shows as stored. The files
map a code to its name: `{"2345-7": "Glucosa"}`. Data, the API and exports keep the stored name.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flask import Flask, current_app, has_app_context

from portal.i18n import reader
from portal.services.catalog import CATALOG

SHIPPED = Path(__file__).parent


@lru_cache(maxsize=32)
def _names(directory: str, locale: str) -> dict[str, str]:
    path = Path(directory) / f"{locale}.json"
    if not path.exists():
        return {}
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return {str(code): str(name) for code, name in loaded.items() if name}


def test_name(code: str | None, stored: str) -> str:
    """The name of test `code` in the reader's language, else `stored`. Without a code (a
    held result shows only its name), a name of the portal's catalog stands for its code."""
    locale = reader().name
    if locale == "en":
        return stored
    code = code or _CODES.get(stored)
    if not code:
        return stored
    own = current_app.config.get("LAB_NAMES_DIR") if has_app_context() else None
    for directory in (own, SHIPPED):
        if directory:
            name = _names(str(directory), locale).get(code)
            if name:
                return name
    return stored


_CODES = {t.name: t.loinc for t in CATALOG}


def init_app(app: Flask) -> None:
    app.config.setdefault("LAB_NAMES_DIR", str(Path(app.instance_path) / "lab-names"))
    # `{{ result | test_name }}` for a record with `test_code` and `test_name`;
    # `{{ code | test_name_of(name) }}` for a code and its stored name.
    app.jinja_env.filters["test_name"] = lambda record: test_name(
        getattr(record, "test_code", None), getattr(record, "test_name", "")
    )
    app.jinja_env.filters["test_name_of"] = test_name
