"""The dashboard's protections: who may see it (a token, or a loopback bind), that a
POST comes from its own pages (CSRF), and the security headers of every answer.

- **Token.** With a token, every request but ``/login`` and ``/static`` must carry it:
  ``Authorization: Bearer <token>``, or the cookie the login form sets (HttpOnly,
  SameSite=Strict; it holds an HMAC of the token, not the token).
- **Host.** Without a token the dashboard answers only to loopback host names, so a web
  page cannot reach it through DNS rebinding.
- **CSRF.** Each browser gets a random token in a SameSite=Strict cookie; every form
  carries it in a hidden field and a POST is refused unless both match and its
  ``Origin`` (when sent) is the dashboard's own. A POST with a bearer header needs no
  CSRF token (a cross-site page cannot set that header).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

AUTH_COOKIE = "fairque_auth"
CSRF_COOKIE = "fairque_csrf"
CSRF_FIELD = "csrf_token"
NEW_CSRF = "fairque_new_csrf"
"""Key of the request state holding a CSRF token made for this answer's cookie."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
OPEN_PATHS = ("/login", "/static/")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    """True for an address or name only this machine can reach."""
    if host in LOOPBACK_HOSTS:
        return True
    return host.startswith("127.")


def session_value(token: str) -> str:
    """What the auth cookie holds for ``token``: an HMAC, so the cookie is not the token."""
    return hmac.new(token.encode(), b"fairque-ui-session", hashlib.sha256).hexdigest()


def same(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(given.encode(), expected.encode())


def has_token(request: Request, token: str) -> bool:
    """True when the request carries ``token`` (bearer header or login cookie)."""
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and same(given.strip(), token):
        return True
    cookie = request.cookies.get(AUTH_COOKIE, "")
    return bool(cookie) and same(cookie, session_value(token))


def bearer(request: Request) -> bool:
    """True when the request authenticates with a header (not a browser's cookie)."""
    return request.headers.get("authorization", "").lower().startswith("bearer ")


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (a fresh one when it has none yet)."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    if len(existing) == 43:
        return existing
    state = request.scope.setdefault("state", {})
    token: str = state.setdefault(NEW_CSRF, secrets.token_urlsafe(32))
    return token


def csrf_problem(request: Request, form_token: str | None) -> str | None:
    """Why a POST must be refused as cross-site, or None."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        parts = urlsplit(origin)
        if parts.netloc != request.headers.get("host", ""):
            return f"cross-site request refused (Origin {origin})"
    elif origin == "null":
        return "cross-site request refused (Origin null)"
    if bearer(request):
        return None
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not form_token or not same(cookie, form_token):
        return "missing or wrong CSRF token: reload the page and try again"
    return None


Handler = Callable[[Request], Awaitable[Response]]


class Guard(BaseHTTPMiddleware):
    """Authentication (token or loopback host), then the security headers and the CSRF
    cookie on every answer."""

    def __init__(self, app: object, token: str | None, open_hosts: bool) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.token = token
        self.open_hosts = open_hosts

    async def dispatch(self, request: Request, call_next: Handler) -> Response:
        response = self._refusal(request) or await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        new = request.scope.get("state", {}).get(NEW_CSRF)
        if new:
            response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", path="/")
        return response

    def _refusal(self, request: Request) -> Response | None:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        if self.token is None and not self.open_hosts and not is_loopback(host):
            return PlainTextResponse(f"unknown host {host!r}", status_code=400)
        root = request.scope.get("root_path", "")
        path = request.url.path.removeprefix(root)
        if self.token is None or path.startswith(OPEN_PATHS) or has_token(request, self.token):
            return None
        if path.startswith("/api/"):
            return JSONResponse(
                {"error": "a token is required (Authorization: Bearer <token>)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return RedirectResponse(f"{root}/login?next={quote(request.url.path)}", status_code=303)
