/* Patient portal behaviour. Loaded with `defer` after htmx.
 *
 * The Content-Security-Policy allows no inline script, so everything the pages do in the
 * browser lives here. Every page works without this file: it only makes things faster,
 * announces changes to screen readers, and keeps keyboard focus where a person expects it.
 *
 * htmx's own settings come from <meta name="htmx-config"> in the base template, not from here.
 */
(function () {
  "use strict";

  var htmx = window.htmx;

  // ---------------------------------------------------------------------------------------------
  // Live region: one polite region (#live-region, in the base template) for every announcement.

  var announceTimer = null;

  /** Say `text` once through #live-region; clearing first makes a repeated text speak again. */
  function announce(text) {
    var region = document.getElementById("live-region");
    if (!region || !text) {
      return;
    }
    region.textContent = "";
    window.clearTimeout(announceTimer);
    // A short pause lets screen readers notice the change, also in a region a swap just inserted.
    announceTimer = window.setTimeout(function () {
      var current = document.getElementById("live-region");
      if (current) {
        current.textContent = text;
      }
    }, 100);
  }

  /** One of the sentences the base template wrote on #live-region in the page's language. */
  function said(name) {
    var region = document.getElementById("live-region");
    return region ? region.getAttribute("data-said-" + name) : "";
  }

  // ---------------------------------------------------------------------------------------------
  // CSRF: every state-changing htmx request carries the token from <meta name="csrf-token">.

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  function isSameOrigin(path) {
    try {
      return new URL(path, window.location.href).origin === window.location.origin;
    } catch (e) {
      return false;
    }
  }

  document.addEventListener("htmx:configRequest", function (evt) {
    var detail = evt.detail;
    if (!detail || String(detail.verb).toLowerCase() === "get" || !isSameOrigin(detail.path)) {
      return;
    }
    // Read on every request: the token may have changed since the page was loaded.
    var token = csrfToken();
    if (token) {
      detail.headers["X-CSRFToken"] = token;
    }
  });

  // htmx 2 keeps <head> and <body>'s attributes across boosted navigations (it swaps the body's
  // content and the title only). Copy over what this file reads from them, from each full page
  // the server sends: the CSRF token (it changes when the session does, e.g. at sign-in).
  function syncFromFullPage(html) {
    if (typeof html !== "string" || !/<head[\s>]/i.test(html)) {
      return;
    }
    var head = html.match(/<head[\s>][\s\S]*?<\/head>/i);
    var body = html.match(/<body(\s[^>]*)?>/i);
    // DOMParser builds an inert document: nothing in it loads or runs.
    var doc = new DOMParser().parseFromString(
      "<!doctype html><html>" + (head ? head[0] : "") + (body ? body[0] + "</body>" : "") + "</html>",
      "text/html"
    );
    var newMeta = doc.querySelector('meta[name="csrf-token"]');
    var oldMeta = document.querySelector('meta[name="csrf-token"]');
    if (newMeta && oldMeta) {
      oldMeta.setAttribute("content", newMeta.getAttribute("content") || "");
    } else if (newMeta) {
      document.head.appendChild(newMeta.cloneNode(false));
    }
  }

  // What had focus before each request's swap, to tell whether the swap took it away.
  var focusBefore = new WeakMap();

  document.addEventListener("htmx:beforeSwap", function (evt) {
    var detail = evt.detail || {};
    if (!detail.xhr) {
      return;
    }
    focusBefore.set(detail.xhr, document.activeElement);
    if (detail.boosted && detail.shouldSwap) {
      syncFromFullPage(detail.xhr.responseText);
    }
  });
  document.addEventListener("htmx:historyCacheMissLoad", function (evt) {
    if (evt.detail && evt.detail.xhr) {
      syncFromFullPage(evt.detail.xhr.responseText);
    }
  });

  // ---------------------------------------------------------------------------------------------
  // Focus and announcements after swaps.

  function focusElement(el) {
    if (!el) {
      return false;
    }
    if (!el.matches("a[href], button, input, select, textarea, summary, [tabindex]")) {
      el.setAttribute("tabindex", "-1");
    }
    el.focus();
    return document.activeElement === el;
  }

  function focusMainHeading() {
    var main = document.querySelector("main");
    return focusElement(main && (main.querySelector("h1") || main));
  }

  /** The first element matching `selector` in any of `roots`, the roots themselves included. */
  function firstIn(roots, selector) {
    for (var i = 0; i < roots.length; i++) {
      var root = roots[i];
      if (!root || !root.isConnected) {
        continue;
      }
      if (root.matches && root.matches(selector)) {
        return root;
      }
      var found = root.querySelector(selector);
      if (found) {
        return found;
      }
    }
    return null;
  }

  // Requests a person started by clicking or submitting. Others (typing in a search box,
  // changing a filter, polling, real-time refreshes) must not move focus away from where it is.
  var USER_EVENTS = { click: true, submit: true };

  // One request can swap several elements (the target plus out-of-band ones), and htmx fires
  // htmx:afterSwap on each: collect them, then handle the request once.
  var pending = null;

  document.addEventListener("htmx:afterSwap", function (evt) {
    var detail = evt.detail || {};
    if (!detail.xhr) {
      return; // history restores are handled on htmx:historyRestore
    }
    if (!pending || pending.xhr !== detail.xhr) {
      pending = { xhr: detail.xhr, detail: detail, main: [], all: [] };
      // htmx updates the title right after these events, so read it a moment later.
      window.setTimeout(afterRequestSwapped.bind(null, pending), 0);
    }
    var target = detail.target;
    // The swap target itself, or what replaced it (outerHTML leaves the old target detached).
    if (evt.target === target || !target || !target.isConnected) {
      pending.main.push(evt.target);
    }
    pending.all.push(evt.target);
  });

  function afterRequestSwapped(swapped) {
    if (pending === swapped) {
      pending = null;
    }
    var detail = swapped.detail;
    var config = detail.requestConfig || {};
    var trigger = config.triggeringEvent;
    var byPerson = Boolean(detail.boosted || (trigger && trigger.isTrusted && USER_EVENTS[trigger.type]));
    // The swap removed the focused element and htmx found no element with its id to refocus:
    // without help, keyboard users would be thrown back to the top of the page.
    var before = focusBefore.get(swapped.xhr);
    var focusLost = Boolean(before && before !== document.body && !before.isConnected &&
      (!document.activeElement || document.activeElement === document.body));

    if (byPerson || focusLost) {
      var done = focusElement(firstIn(swapped.all, '[aria-invalid="true"]')) ||
        focusElement(firstIn(swapped.all, "[data-focus]"));
      if (!done && detail.boosted) {
        done = focusMainHeading();
      }
      if (!done) {
        focusElement(firstIn(swapped.main, 'h1, h2, [tabindex="-1"]'));
      }
    }

    var message = firstIn(swapped.all, "[data-announce]");
    var text = message ? message.getAttribute("data-announce") : "";
    if (detail.boosted) {
      // A new page: say where we are, then what happened (e.g. a flash after a redirect).
      text = text ? document.title + ". " + text : document.title;
    } else if (!text && byPerson) {
      // A region a person asked to update (a filter, a pager): say what it shows now, its
      // heading, where focus went; without this a screen reader hears nothing of the change.
      var heading = firstIn(swapped.main, "h1, h2, h3");
      text = heading ? heading.textContent.replace(/\s+/g, " ").trim() : "";
    }
    announce(text);
  }

  document.addEventListener("htmx:historyRestore", function () {
    focusMainHeading();
    announce(document.title);
  });

  // The calm pages for "the database is away" (503) and "the storage is full" (507) are whole
  // pages: a boosted link or form shows them as it would without JavaScript, instead of
  // leaving the old page in place with only "something went wrong" said.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (event.detail.boosted && (status === 503 || status === 507)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:responseError", function () {
    announce(said("error"));
  });
  document.addEventListener("htmx:sendError", function () {
    announce(said("offline"));
  });

  // ---------------------------------------------------------------------------------------------
  // Live events (docs/events.md). The socket says *that* something changed, as ids only; the parts
  // of the page that show it fetch themselves again through their usual, scoped and audited
  // routes: the nav badge (which also brings the one sentence to announce), and any element
  // listening with hx-trigger="portal:<type> from:body" or "portal:<type>-<id> from:body".
  // Without JavaScript, or without a socket, pages are exactly as before.

  var live = { lastId: 0, attempt: 0, stopped: false };
  var SESSION_ENDED = 4401; // the server's close code: signed out, so don't come back

  function liveMeta() {
    return document.querySelector('meta[name="portal-events"]');
  }

  function liveUrl(meta) {
    var url = new URL(meta.getAttribute("content"), window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (live.lastId) {
      url.searchParams.set("after", String(live.lastId));
    } else {
      live.lastId = parseInt(url.searchParams.get("after") || "0", 10) || 0;
    }
    return url.toString();
  }

  function connectLive() {
    var meta = liveMeta();
    if (!meta || live.stopped || !("WebSocket" in window) || !htmx) {
      return;
    }
    var socket = new WebSocket(liveUrl(meta));
    socket.onopen = function () {
      live.attempt = 0;
    };
    socket.onmessage = function (message) {
      var event;
      try {
        event = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      if (event.type === "reload") {
        reloadWhenSafe();
      } else if (event.eventId > live.lastId) {
        // Ids only grow: anything not above the last one was already shown.
        live.lastId = event.eventId;
        showEvent(event, meta);
      }
    };
    socket.onclose = function (evt) {
      if (evt.code === SESSION_ENDED) {
        live.stopped = true; // the next page the person opens asks them to sign in
        return;
      }
      // Exponential back-off with full jitter: after a restart, pages come back spread out.
      var ceiling = Math.min(30000, 500 * Math.pow(2, live.attempt));
      live.attempt += 1;
      window.setTimeout(connectLive, Math.random() * ceiling);
    };
  }

  function showEvent(event, meta) {
    var badge = document.getElementById("nav-badge");
    var src = meta.getAttribute("data-badge");
    if (badge && src) {
      // Replaces only the badge inside the link, so focus stays wherever the person has it.
      htmx.ajax("GET", src.replace(/0$/, String(event.eventId)), { target: badge, swap: "outerHTML" });
    }
    htmx.trigger(document.body, "portal:" + event.type, event);
    htmx.trigger(document.body, "portal:" + event.type + "-" + event.id, event);
  }

  /** Away too long for a replay: reload, unless that would lose something being typed. */
  function reloadWhenSafe() {
    var fields = document.querySelectorAll("textarea, input, select");
    for (var i = 0; i < fields.length; i++) {
      var el = fields[i];
      var changed = el.type === "checkbox" || el.type === "radio" ? el.checked !== el.defaultChecked
        : el.tagName !== "SELECT" && el.type !== "hidden" && el.value !== el.defaultValue;
      if (changed) {
        announce(said("updates"));
        return;
      }
    }
    window.location.reload();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", connectLive);
  } else {
    connectLive();
  }

  // ---------------------------------------------------------------------------------------------
  // Confirmation: <form data-confirm="Cancel this appointment?"> (or on its submit button).
  // Capture phase, so the question comes before htmx sees the submit. Without JS it just submits.

  document.addEventListener(
    "submit",
    function (evt) {
      var form = evt.target;
      if (!(form instanceof HTMLFormElement)) {
        return;
      }
      var submitter = evt.submitter;
      var question = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        evt.preventDefault();
        evt.stopPropagation();
      }
    },
    true
  );
})();
