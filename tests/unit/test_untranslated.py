"""The untranslated-text check (tests/untranslated.py) catches a catalog entry left empty:
the page then shows the English source, and the check names it (issue 27)."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from portal import create_app
from portal.i18n import TRANSLATIONS, compile_catalogs
from tests.support import app_config
from tests.untranslated import english_left


class _Texts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style", "title")
        self.texts += [v for k, v in attrs if k in ("aria-label", "title", "placeholder") and v]

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style", "title")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.texts.append(data)


def _sign_in_page(translations: Path, tmp_path: Path, language: str) -> list[str]:
    config = {**app_config(f"sqlite:///{tmp_path / 'empty.db'}")}
    config["BABEL_TRANSLATION_DIRECTORIES"] = str(translations)
    app = create_app(config)
    # Flask-Babel keeps catalogs per language in one cache for every app: read afresh, and
    # leave nothing of the emptied catalog behind for the other tests.
    with app.app_context():
        cache = app.extensions["babel"].instance.domain_instance.cache
    cache.clear()
    try:
        page = app.test_client().get("/login", headers={"Accept-Language": language})
    finally:
        cache.clear()
    parser = _Texts()
    parser.feed(page.get_data(as_text=True))
    return parser.texts


@pytest.mark.parametrize(("language", "locale"), [("es", "es"), ("zh-Hant", "zh_Hant")])
def test_an_emptied_catalog_entry_is_caught(tmp_path: Path, language: str, locale: str) -> None:
    assert english_left(_sign_in_page(TRANSLATIONS, tmp_path, language), language) == []

    emptied = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, emptied, ignore=shutil.ignore_patterns("*.mo"))
    po = emptied / locale / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8")
    start = text.index('msgid "Sign in"\nmsgstr "') + len('msgid "Sign in"\n')
    end = text.index("\n", start)
    po.write_text(text[:start] + 'msgstr ""' + text[end:], encoding="utf-8")
    compile_catalogs(emptied)

    texts = _sign_in_page(emptied, tmp_path, language)
    assert english_left(texts, language, emptied) == ["Sign in"]
