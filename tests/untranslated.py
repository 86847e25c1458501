"""English left on a translated page (issue 27): the texts a page shows that are the English
source of a catalog entry, or of a lab test's name, that has a translation of its own.

Shared by the browser check over every page (tests/browser/test_a11y_modes.py) and the test
that empties one catalog entry and sees it caught (tests/unit/test_untranslated.py).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

from portal.i18n import TRANSLATIONS
from portal.lab_names import SHIPPED as LAB_NAMES
from portal.services.catalog import CATALOG

#: Words that are the same in the language, or names and codes (not English to translate).
ALLOWED = {
    "es": {"Email", "Normal", "Total", "No", "Error", "PDF", "CSV", "API"},
    "zh-Hant": {"Email", "PDF", "CSV", "API"},
}
#: Known and not fixed yet (issue 27, left for after the Python refactor lands): the admin's
#: display name is the model's English word (portal/models/users.py).
KNOWN = {"Administrator"}
LOCALES = {"es": "es", "zh-Hant": "zh_Hant"}
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%[sd]")


@lru_cache(maxsize=8)
def english_sources(
    language: str, translations: Path = TRANSLATIONS
) -> tuple[frozenset[str], tuple[re.Pattern[str], ...]]:
    """The English a page in `language` must not show: every msgid whose translation differs
    (an empty translation counts: gettext then shows the English), as exact texts and, for
    entries with placeholders, as patterns; and the English names of the catalog's tests."""
    with (translations / LOCALES[language] / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f)
    exact: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for english in ids:
            if english in strings and all(s == english for s in strings if s):
                continue  # the same word in both languages
            text = " ".join(english.replace("%%", "%").split())
            if _PLACEHOLDER.search(text):
                parts = _PLACEHOLDER.split(text)
                literal = [
                    re.escape(p) for i, p in enumerate(parts) if i % 2 == 0 and p is not None
                ]
                words = re.findall(r"[A-Za-z]{2,}", " ".join(p for p in parts[::2] if p))
                if len(words) >= 2:  # enough words around the placeholders to be sure
                    patterns.append(re.compile(".+?".join(literal) + r"\Z"))
            else:
                exact.add(text)
    names = json.loads((LAB_NAMES / f"{LOCALES[language]}.json").read_text(encoding="utf-8"))
    exact |= {t.name for t in CATALOG if names.get(t.loinc, t.name) != t.name}
    return frozenset(exact - ALLOWED[language] - KNOWN), tuple(patterns)


def english_left(texts: list[str], language: str, translations: Path = TRANSLATIONS) -> list[str]:
    """Which of the page's `texts` (each a text node or an accessible name) are English."""
    exact, patterns = english_sources(language, translations)
    found = []
    for raw in texts:
        text = " ".join(raw.split())
        if not text or not re.search("[A-Za-z]", text):
            continue
        if text in exact or any(p.match(text) for p in patterns):
            found.append(text)
    return sorted(set(found))


#: The page's texts for `english_left`: text nodes, and the names and labels in attributes.
PAGE_TEXTS = """() => {
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest('script, style, template, [translate=no]')) continue;
    texts.push(node.textContent);
  }
  for (const el of document.querySelectorAll('[aria-label], [title], [placeholder], [alt]')) {
    for (const a of ['aria-label', 'title', 'placeholder', 'alt']) {
      if (el.hasAttribute(a)) texts.push(el.getAttribute(a));
    }
  }
  texts.push(document.title);
  return texts;
}"""
