"""Accessibility checks beyond axe, run in the page by one `evaluate` each (issue 27).

Each probe returns a list of problems (empty: the page passes), written so that the failing
test names the element: `a.btn "Sign out"`. The checks and the rule each one guards:

- `reduced_motion`: with `prefers-reduced-motion: reduce`, nothing animates or transitions for
  longer than 10 ms and nothing scrolls smoothly (portal.css's reduced-motion block);
- `forced_colours`: with `forced-colors: active`, the trend chart is drawn in system colours
  (its lines, band and points), and every status (flag, badge, flash, held result, current
  page) says itself in words and keeps a shape of its own (a border or bar);
- `tab_walk` (per Tab press): the focused element shows an outline (not only a shadow, which
  forced colours remove) of 2 px or more, in a colour other than the canvas;
- `reflow_and_focus`: at 320 x 256 CSS px (1280 x 1024 at 400 %), nothing scrolls sideways, and
  each focusable element, once focused, is at least partly visible and not covered by another
  element, e.g. a sticky header (WCAG 2.4.11);
- `text_fits`: with text at 200 % and WCAG 1.4.12's spacing, no text is cut off by a box that
  clips, sticks out of its own box, or overlaps other text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Page

#: A short name for an element in a problem report (defined in each probe).
_DESCRIBE = """
const describe = (el) => {
  let name = el.tagName.toLowerCase();
  if (el.id) name += '#' + el.id;
  const cls = [...el.classList].filter(c => !c.startsWith('htmx')).slice(0, 2);
  if (cls.length) name += '.' + cls.join('.');
  const text = (el.getAttribute('aria-label') || el.textContent || '').trim().replace(/\\s+/g, ' ');
  return text ? `${name} "${text.slice(0, 40)}"` : name;
};
const shown = (el) => {
  if (el.closest('.visually-hidden:not(:focus), [hidden], template')) return false;
  const s = getComputedStyle(el);
  return s.display !== 'none' && s.visibility !== 'hidden' && el.getClientRects().length > 0;
};
"""

REDUCED_MOTION = (
    "() => {"
    + _DESCRIBE
    + """
  const seconds = (v) => v.split(',').map(t => t.trim().endsWith('ms')
    ? parseFloat(t) / 1000 : parseFloat(t));
  const problems = [];
  for (const el of [document.documentElement, ...document.body.querySelectorAll('*')]) {
    for (const pseudo of [null, '::before', '::after']) {
      const s = getComputedStyle(el, pseudo);
      const where = describe(el) + (pseudo || '');
      if (s.animationName !== 'none' && seconds(s.animationDuration).some(d => d > 0.01)) {
        problems.push(`${where} animates (${s.animationName} ${s.animationDuration})`);
      }
      if (s.transitionProperty !== 'none' && seconds(s.transitionDuration).some(d => d > 0.01)) {
        problems.push(`${where} has a transition (${s.transitionDuration})`);
      }
    }
    if (getComputedStyle(el).scrollBehavior === 'smooth') {
      problems.push(`${describe(el)} scrolls smoothly`);
    }
  }
  for (const a of document.getAnimations()) {
    const t = a.effect && a.effect.getComputedTiming();
    if (a.playState === 'running' && t && (t.iterations === Infinity || t.duration > 10)) {
      problems.push(`a running animation on ${describe(a.effect.target)}`);
    }
  }
  return problems;
}"""
)

#: The system colours forced colours paint with, resolved by a probe element.
_SYSTEM = """
const probe = document.createElement('span');
document.body.append(probe);
const system = {};
for (const c of ['Canvas', 'CanvasText', 'LinkText', 'VisitedText', 'ActiveText', 'ButtonFace',
                 'ButtonText', 'ButtonBorder', 'Field', 'FieldText', 'Highlight',
                 'HighlightText', 'SelectedItem', 'SelectedItemText', 'Mark', 'MarkText',
                 'GrayText', 'AccentColor', 'AccentColorText']) {
  probe.style.color = c;
  system[c] = getComputedStyle(probe).color;
}
probe.remove();
const systemColours = new Set(Object.values(system));
"""

FORCED_COLOURS = (
    "() => {"
    + _DESCRIBE
    + _SYSTEM
    + """
  const problems = [];
  // The chart: SVG paint is not forced by the browser, so the stylesheet must use system colours.
  const chart = ['line', 'band', 'axis', 'grid', 'point', 'tick', 'marker'];
  for (const el of document.querySelectorAll(chart.map(c => `svg .trend-${c}`).join())) {
    const s = getComputedStyle(el);
    for (const [what, paint] of [['stroke', s.stroke], ['fill', s.fill]]) {
      if (paint !== 'none' && !systemColours.has(paint)) {
        problems.push(`chart ${el.getAttribute('class')}: ${what} ${paint} is not a system colour`);
      }
    }
    // Text by its fill, a point by its fill or outline, lines and the band by their stroke.
    const paints = el.matches('text') ? [s.fill]
      : el.matches('.trend-point') ? [s.fill, s.stroke] : [s.stroke];
    const drawn = paints.find(p => p !== 'none' && p !== system.Canvas) || paints.join(' ');
    if (!paints.some(p => p !== 'none' && p !== system.Canvas)) {
      problems.push(`chart ${el.getAttribute('class')} is not drawn (${drawn})`);
    }
  }
  // A status says itself in words and keeps a shape: forced colours remove its background.
  const edge = (s, side) => parseFloat(s[`border${side}Width`]) >= 1
    && s[`border${side}Style`] !== 'none' && s[`border${side}Color`] !== system.Canvas
    && s[`border${side}Color`] !== 'rgba(0, 0, 0, 0)';
  const sides = ['Top', 'Right', 'Bottom', 'Left'];
  for (const el of document.querySelectorAll('.flag, .badge, .status, .flash, .placeholder')) {
    if (!shown(el)) continue;
    if (!el.textContent.trim()) problems.push(`${describe(el)} has no words`);
    const s = getComputedStyle(el);
    if (!sides.some(side => edge(s, side))) {
      problems.push(`${describe(el)} has no border in forced colours: only colour marks it`);
    }
  }
  // The current page in a menu: a bar (or weight) that its neighbours do not have.
  for (const el of document.querySelectorAll('nav a[aria-current], .tabs a[aria-current]')) {
    const other = [...el.closest('ul, nav').querySelectorAll('a:not([aria-current])')][0];
    if (!other) continue;
    const a = getComputedStyle(el), b = getComputedStyle(other);
    const bar = (s) => sides.filter(side => edge(s, side)).join();
    if (bar(a) === bar(b) && a.fontWeight === b.fontWeight
        && a.textDecorationLine === b.textDecorationLine) {
      problems.push(`${describe(el)}: the current page looks like the others in forced colours`);
    }
  }
  return problems;
}"""
)

#: Records each Tab stop as focus arrives (one round trip per key press, not two): what the
#: element is and how its focus shows.
RECORD_STOPS = (
    "() => {"
    + _DESCRIBE
    + _SYSTEM
    + """
  window.__portalStops = [];
  let previous = null;
  const keys = new WeakMap();  // one number per element: two links may read the same
  let count = 0;
  document.activeElement && document.activeElement.blur();
  if (window.__portalRecorder) {
    document.removeEventListener('focusin', window.__portalRecorder, true);
  }
  window.__portalRecorder = (event) => {
    const el = event.target;
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    const problems = [];
    const width = parseFloat(s.outlineWidth);
    if (s.outlineStyle === 'none' || s.outlineStyle === 'auto' || width < 2
        || s.outlineColor === system.Canvas || s.outlineColor === 'rgba(0, 0, 0, 0)') {
      problems.push(`${describe(el)}: no visible focus outline`
                    + ` (${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor})`);
    }
    let order = 'first';
    if (previous && previous.isConnected && previous !== el) {
      order = previous.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING
        ? 'after' : 'before';
    } else if (previous === el) {
      order = 'same';
    }
    previous = el;
    if (!keys.has(el)) keys.set(el, ++count);
    window.__portalStops.push({
      key: keys.get(el),
      multi: el.matches('input[type=date], input[type=time], input[type=datetime-local],'
                        + ' input[type=month], input[type=week]'),
      name: describe(el), skip: el.matches('.skip-link'), order, problems,
      rect: {top: r.top + scrollY, bottom: r.bottom + scrollY, left: r.left + scrollX,
             right: r.right + scrollX},
      in_viewport: r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth,
    });
  };
  document.addEventListener('focusin', window.__portalRecorder, true);
}"""
)

#: Whether the focused element is the last one the Tab key reaches on the page.
AT_LAST_STOP = (
    "(focusable) => {"
    + _DESCRIBE
    + """
  const all = [...document.querySelectorAll(focusable)].filter(shown);
  return all.length > 0 && document.activeElement === all[all.length - 1];
}"""
)

_FOCUSABLE = (
    "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]),"
    " select:not([disabled]), textarea:not([disabled]), summary,"
    " [tabindex]:not([tabindex='-1'])"
)

REFLOW_AND_FOCUS = (
    "(limit) => {"
    + _DESCRIBE
    + f"const focusable = {_FOCUSABLE!r};"
    + """
  const root = document.documentElement;
  const problems = [];
  const wider = root.scrollWidth - root.clientWidth;
  if (wider > 0) problems.push(`the page scrolls sideways by ${wider}px`);
  const all = [...document.querySelectorAll(focusable)].filter(shown).slice(0, limit);
  for (const el of all) {
    el.focus();  // scrolls it into view, as the Tab key does
    if (document.activeElement !== el) continue;
    const seen = [...el.getClientRects()].some(r => {
      const x1 = Math.max(r.left, 0), x2 = Math.min(r.right, innerWidth);
      const y1 = Math.max(r.top, 0), y2 = Math.min(r.bottom, innerHeight);
      if (x2 - x1 < 1 || y2 - y1 < 1) return false;
      const points = [[(x1 + x2) / 2, (y1 + y2) / 2], [x1 + 1, y1 + 1], [x2 - 1, y1 + 1],
                      [x1 + 1, y2 - 1], [x2 - 1, y2 - 1]];
      // What is on top there is the element, inside it, or behind it (an ancestor).
      return points.some(([x, y]) => {
        const hit = document.elementFromPoint(x, y);
        return hit && (el.contains(hit) || hit.contains(el));
      });
    });
    if (!seen) problems.push(`${describe(el)}: hidden when focused`);
  }
  document.activeElement && document.activeElement.blur();
  return problems;
}"""
)

#: WCAG 1.4.12's spacing, on top of text at 200 % (the root font size doubled).
TEXT_SPACING_CSS = """
html { font-size: 200% !important; }
*, *::before, *::after {
  line-height: 1.5 !important;
  letter-spacing: 0.12em !important;
  word-spacing: 0.16em !important;
}
p { margin-bottom: 2em !important; }
"""

APPLY_TEXT_SPACING = """(css) => {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(css);
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
}"""

TEXT_FITS = (
    "() => {"
    + _DESCRIBE
    + """
  const problems = [];
  const boxes = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('svg, script, style') || !shown(el)) continue;
    const s = getComputedStyle(el);
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const clips = s.overflowX === 'hidden' || s.overflowX === 'clip'
      || s.overflowY === 'hidden' || s.overflowY === 'clip';
    const overX = el.scrollWidth - el.clientWidth, overY = el.scrollHeight - el.clientHeight;
    if (clips && (overX > 1 || overY > 1)) {
      problems.push(`${describe(el)} cuts off its content (${overX}px x ${overY}px)`);
    }
    if (!text || s.display === 'inline' || s.display === 'contents') continue;
    if (!clips && s.overflowX === 'visible' && overX > 1) {
      problems.push(`${describe(el)}: its text sticks out of its box by ${overX}px`);
    }
    if (!clips && s.overflowY === 'visible' && overY > 1 && s.display !== 'table-cell') {
      problems.push(`${describe(el)}: its text is taller than its box by ${overY}px`);
    }
    boxes.push([el, el.getBoundingClientRect()]);
  }
  // Text boxes that are not nested never overlap.
  for (let i = 0; i < boxes.length; i++) {
    const [a, ra] = boxes[i];
    for (let j = i + 1; j < boxes.length; j++) {
      const [b, rb] = boxes[j];
      if (a.contains(b) || b.contains(a)) continue;
      const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
      const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (w > 2 && h > 2) problems.push(`${describe(a)} overlaps ${describe(b)}`);
    }
  }
  return problems;
}"""
)


@dataclass
class Stop:
    key: int
    name: str
    multi: bool
    skip: bool
    order: str
    problems: list[str]
    rect: dict[str, float]
    in_viewport: bool


def tab_walk(page: Page, limit: int) -> tuple[list[Stop], list[str]]:
    """Press Tab up to `limit` times from the top of the page: the stops, and what is wrong
    with the walk (focus not shown, a trap, an order that jumps back against the DOM or the
    eye, no skip link first)."""
    page.evaluate(RECORD_STOPS)
    for _ in range(limit):
        page.keyboard.press("Tab")
    recorded: list[dict[str, Any]] = page.evaluate("() => window.__portalStops")
    stops: list[Stop] = []
    problems: list[str] = []
    seen: set[int] = set()
    wrapped = False
    for stop in (Stop(**raw) for raw in recorded):
        if stops and stop.skip:
            wrapped = True  # round to the top again: the walk went through the whole page
            break
        problems += stop.problems
        if stop.order in ("before", "same") or stop.key in seen:
            problems.append(f"Tab went back from {stops[-1].name} to {stop.name}: a trap or a jump")
            break
        if not stop.in_viewport:
            problems.append(f"{stop.name} is focused off-screen")
        if stops and _visually_before(stop.rect, stops[-1].rect):
            problems.append(f"{stop.name} is focused after {stops[-1].name} but shown before it")
        seen.add(stop.key)
        stops.append(stop)
    if not stops or not stops[0].skip:
        first = stops[0].name if stops else "nothing"
        problems.append(f"the first Tab stop is {first}, not the skip link")
    # Each press moves focus on, except inside a date or time (its day, month, year, hour...),
    # and past the last stop (focus leaves the page, then comes round to the top).
    spare = limit - len(stops) - 6 * sum(stop.multi for stop in stops)
    if not wrapped and spare > 1 and not page.evaluate(AT_LAST_STOP, _FOCUSABLE):
        problems.append(f"Tab stopped moving at {stops[-1].name if stops else 'the top'}: a trap")
    return stops, problems


def _visually_before(rect: dict[str, float], previous: dict[str, float]) -> bool:
    """Against the reading order: back to the left on the same line, or back up, unless up to
    a column further right (the next card in a row of cards)."""
    same_line = rect["top"] < previous["bottom"] and rect["bottom"] > previous["top"]
    if same_line:
        return rect["right"] <= previous["left"]
    return rect["bottom"] <= previous["top"] and rect["left"] < previous["right"]
