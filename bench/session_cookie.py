"""Sign in to a served portal and print the session cookie as a `Cookie:` header value.

python bench/session_cookie.py http://127.0.0.1:8000 alice@example.org
"""

from __future__ import annotations

import http.cookiejar
import re
import sys
import urllib.parse
import urllib.request

PASSWORD = "Demo-Portal-2026!"  # noqa: S105  (every demo account's password, public in the README)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None


def main(base: str, email: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    page = opener.open(base + "/login").read().decode()  # noqa: S310 (a loopback URL we started)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    if token is None:
        raise SystemExit("no CSRF token on /login")
    form = urllib.parse.urlencode(
        {"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
    ).encode()
    try:
        opener.open(base + "/login", data=form)  # noqa: S310
    except urllib.error.HTTPError as exc:  # the 303 to the dashboard arrives as an "error"
        if exc.code != 303:
            raise SystemExit(f"sign-in failed: HTTP {exc.code}") from exc
    cookies = [f"{c.name}={c.value}" for c in jar if c.name == "portal_session"]
    if not cookies:
        raise SystemExit("sign-in failed: no session cookie")
    return cookies[0]


if __name__ == "__main__":
    print(main(sys.argv[1].rstrip("/"), sys.argv[2]))
