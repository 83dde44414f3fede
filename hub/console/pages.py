"""The console's pages: sign-in, the access log, a subject's timeline, the chain, evidence.

Every page but sign-in needs a live session whose token still passes the resource-server check
(`AuthService.authenticate`: signature, expiry, client registered and enabled, and the shared
denylist, the same revocation judge the request gate uses) and still carries `audit:read`;
otherwise the session ends there. Every page view (and every action) is audited as an
`audit_read` record naming the client, the page and the subject looked at.

POSTs are CSRF-checked three ways: the session cookie is SameSite=Strict, each form carries the
session's CSRF token (compared in constant time), and an `Origin` or `Sec-Fetch-Site` header, when
the browser sends one, must say the form came from the console's own origin.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from auth import Principal, Unauthenticated
from auth.errors import Unavailable
from hub.components import Hub
from hub.console.chart import timeline
from hub.console.forms import (
    HAS_ACTOR,
    OUTCOMES,
    PAGE_SIZES,
    BadForm,
    LogFilter,
    read_form,
    timeline_view,
)
from hub.console.sessions import COOKIE, IDLE_SECONDS, ConsoleSession, SessionStore
from hub.console.verification import Verifications
from hub.transport import trace_id_of
from infra.kv import KeyValueUnavailable
from observability.audit import (
    AuditEvent,
    AuditFilter,
    AuditQueryError,
    AuditUnavailable,
    check_evidence,
)

__all__ = ["PAGES", "Console"]

log = logging.getLogger("hub.console")

BASE = "/audit"
SCOPE = "audit:read"
_SIGN_IN_COOKIE = "hub_console_signin"  # the sign-in form's CSRF value (double submit)
_FORM_BYTES = 16 * 1024
_EVIDENCE_FORM_BYTES = 2 * 1024 * 1024
_FORM_FIELDS = 40
_TIMELINE_PAGES = 20  # at most 20 x 500 records drawn; the page says when there were more

_templates = Environment(
    loader=PackageLoader("hub.console", "templates"),
    autoescape=True,  # every value: audit records hold strings callers chose
    undefined=StrictUndefined,
)


class Console:
    """What the console keeps per hub process: its session store and verification runs."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.sessions = SessionStore(hub.kv)
        self.verifications = Verifications(hub.kv, hub.audit)


@dataclass(frozen=True)
class _Viewer:
    session: ConsoleSession
    principal: Principal


def _console(request: Request) -> Console:
    hub: Hub = request.app.state.hub
    console: Console | None = getattr(request.app.state, "console", None)
    if console is None or console.hub is not hub:
        console = Console(hub)
        request.app.state.console = console
    return console


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(name).render(base=BASE, **context)
    return HTMLResponse(html, status_code=status)


def _secure(request: Request) -> bool:
    """Secure cookies, except over plain HTTP to a loopback address (the demo)."""
    if request.url.scheme == "https":
        return True
    host = request.url.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _set_cookie(response: Response, request: Request, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name, value, max_age=age, path=f"{BASE}/", secure=_secure(request), httponly=True,
        samesite="strict",
    )


def _same_origin(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


async def _viewer(request: Request) -> _Viewer | None:
    """The signed-in auditor, checked now; None (and the session ended) if not any more."""
    console = _console(request)
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    session = await console.sessions.find(session_id)
    if session is None:
        return None
    try:
        principal = await console.hub.auth.authenticate(f"Bearer {session.token}")
    except Unauthenticated:
        principal = None
    if principal is None or not principal.has_scope(SCOPE):
        await console.sessions.end(session)
        return None
    return _Viewer(session, principal)


async def _audited(
    request: Request, viewer: _Viewer, page: str, subject: str | None = None,
    *, outcome: str = "OK", error: str | None = None,
) -> None:
    """One audit record per page view, committed before the page is sent."""
    await _console(request).hub.audit.append(AuditEvent(
        time=dt.datetime.now(dt.UTC),
        kind="audit_read",
        outcome="OK" if outcome == "OK" else "DENIED",
        client_id=viewer.principal.client_id,
        agency=viewer.principal.agency,
        operation=f"console {page}",
        subjects=(subject,) if subject else (),
        error_codes=(error,) if error else (),
        trace_id=trace_id_of(request.scope),
        client_address=request.client.host if request.client else None,
    ))


def _to_sign_in() -> Response:
    return RedirectResponse(f"{BASE}/sign-in", status_code=303)


def _refused_post(message: str, status: int = 403) -> Response:
    return _page("refused.html", status, message=message, viewer=None)


async def _checked_post(
    request: Request, max_bytes: int = _FORM_BYTES
) -> tuple[_Viewer, dict[str, str]] | Response:
    """A signed-in auditor's form, CSRF-checked; or the refusal to send."""
    viewer = await _viewer(request)
    if viewer is None:
        return _refused_post("Sign in first.")
    if not _same_origin(request):
        await _audited(request, viewer, request.url.path, outcome="DENIED", error="CSRF")
        return _refused_post("This form did not come from the console.")
    try:
        form = await read_form(request, max_bytes=max_bytes, max_fields=_FORM_FIELDS)
    except BadForm as exc:
        return _refused_post(str(exc), 400)
    if not hmac.compare_digest(form.get("csrf", ""), viewer.session.csrf):
        await _audited(request, viewer, request.url.path, outcome="DENIED", error="CSRF")
        return _refused_post("This form is stale or did not come from the console.")
    return viewer, form


# -- sign-in and out ---------------------------------------------------------------------------


async def home(request: Request) -> Response:
    if await _viewer(request) is None:
        return _to_sign_in()
    return RedirectResponse(f"{BASE}/log", status_code=303)


def _sign_in_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = _page("sign_in.html", status, csrf=token, error=error, viewer=None)
    _set_cookie(response, request, _SIGN_IN_COOKIE, token, IDLE_SECONDS)
    return response


async def sign_in_form(request: Request) -> Response:
    if await _viewer(request) is not None:
        return RedirectResponse(f"{BASE}/log", status_code=303)
    return _sign_in_page(request)


_SIGN_IN_ERRORS = {
    "invalid_client": "Unknown client, wrong secret, or a disabled client.",
    "invalid_scope": "This client may not read the audit log (it lacks audit:read).",
}


async def sign_in(request: Request) -> Response:
    """Client id and secret, checked as the token endpoint checks them (same throttle, same
    audit records); the token it gives stays in the server-side session."""
    if not _same_origin(request):
        return _refused_post("This form did not come from the console.")
    try:
        form = await read_form(request, max_bytes=_FORM_BYTES, max_fields=_FORM_FIELDS)
    except BadForm as exc:
        return _sign_in_page(request, 400, str(exc))
    cookie = request.cookies.get(_SIGN_IN_COOKIE, "")
    if not cookie or not hmac.compare_digest(form.get("csrf", ""), cookie):
        return _sign_in_page(request, 403, "The sign-in form expired; please try again.")
    console = _console(request)
    address = request.client.host if request.client else "unknown"
    try:
        exchanged = await console.hub.auth.exchange_secret(
            form.get("client_id", "").strip(), form.get("client_secret", ""), SCOPE, address
        )
    except Unavailable:
        return _sign_in_page(request, 503, "The hub cannot check credentials now; retry.")
    if exchanged.token is None:
        if exchanged.retry_after is not None:
            error = f"Too many failed sign-ins; retry in {exchanged.retry_after} seconds."
            return _sign_in_page(request, 429, error)
        error = _SIGN_IN_ERRORS.get(exchanged.error or "", "The sign-in was refused.")
        return _sign_in_page(request, 401, error)
    principal = await console.hub.auth.authenticate(f"Bearer {exchanged.token}")
    session_id, session = await console.sessions.create(
        principal.client_id, principal.agency, exchanged.token
    )
    await _audited(request, _Viewer(session, principal), "sign-in")
    response = RedirectResponse(f"{BASE}/log", status_code=303)
    _set_cookie(response, request, COOKIE, session_id, IDLE_SECONDS)
    response.delete_cookie(_SIGN_IN_COOKIE, path=f"{BASE}/")
    return response


async def sign_out(request: Request) -> Response:
    checked = await _checked_post(request)
    if isinstance(checked, Response):
        return checked
    viewer, _ = checked
    await _console(request).sessions.end(viewer.session)
    await _audited(request, viewer, "sign-out")
    response = _to_sign_in()
    response.delete_cookie(COOKIE, path=f"{BASE}/", secure=_secure(request), httponly=True,
                           samesite="strict")
    return response


# -- the access log ----------------------------------------------------------------------------


async def log_page(request: Request) -> Response:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    console = _console(request)
    view_id = request.query_params.get("view", "")
    values = await console.sessions.view(viewer.session, view_id) if view_id else None
    chosen = LogFilter.of(values) if values is not None else LogFilter.of({})
    after = request.query_params.get("after") or None
    error = None
    try:
        page = await console.hub.audit.search(
            chosen.query(), chosen.page_size, after, subject_view=False, today=dt.date.today()
        )
    except AuditQueryError as exc:
        error, page = str(exc), None
    await _audited(request, viewer, "log", chosen.subject)
    return _log_response(viewer, chosen, page, view_id if values is not None else "", error)


def _log_response(
    viewer: _Viewer, chosen: LogFilter, page: Any, view_id: str, error: str | None,
    status: int = 200,
) -> Response:
    return _page(
        "log.html", status, viewer=viewer, filter=chosen.values, page=page, view=view_id,
        error=error, outcomes=OUTCOMES, page_sizes=PAGE_SIZES, has_actor=HAS_ACTOR,
    )


async def log_filter(request: Request) -> Response:
    checked = await _checked_post(request)
    if isinstance(checked, Response):
        return checked
    viewer, form = checked
    try:
        chosen = LogFilter.of(form)
    except BadForm as exc:
        await _audited(request, viewer, "log", outcome="DENIED", error="BAD_USER_INPUT")
        raw = LogFilter({name: str(form.get(name, ""))[:200] for name in LogFilter.FIELDS})
        return _log_response(viewer, raw, None, "", str(exc), 400)
    view_id = await _console(request).sessions.keep_view(viewer.session, chosen.values)
    return RedirectResponse(f"{BASE}/log?view={view_id}", status_code=303)


# -- a subject's timeline ----------------------------------------------------------------------


async def timeline_page(request: Request) -> Response:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    console = _console(request)
    view_id = request.query_params.get("view", "")
    chosen = await console.sessions.view(viewer.session, view_id) if view_id else None
    if chosen is None:
        await _audited(request, viewer, "timeline")
        return _page("timeline.html", viewer=viewer, chosen=None, chart=None, error=None,
                     truncated=False)
    subject, days = chosen["subject"], int(chosen["days"])
    last_day = dt.datetime.now(dt.UTC).date()
    first_day = last_day - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first_day, dt.time(), dt.UTC)
    where = AuditFilter(subject=subject, time_from=since)
    accesses: list[tuple[dt.datetime, str | None]] = []
    after, truncated = None, False
    for _ in range(_TIMELINE_PAGES):
        page = await console.hub.audit.search(
            where, 500, after, subject_view=False, today=dt.date.today()
        )
        accesses.extend((record.time, record.agency) for record in page.records)
        after = page.end_cursor
        if not page.has_next_page:
            break
    else:
        truncated = True
    chart = timeline(accesses, first_day, last_day)
    await _audited(request, viewer, "timeline", subject)
    return _page("timeline.html", viewer=viewer, chosen=chosen, chart=chart, error=None,
                 first_day=first_day, last_day=last_day, truncated=truncated)


async def timeline_choose(request: Request) -> Response:
    checked = await _checked_post(request)
    if isinstance(checked, Response):
        return checked
    viewer, form = checked
    try:
        chosen = timeline_view(form)
    except BadForm as exc:
        await _audited(request, viewer, "timeline", outcome="DENIED", error="BAD_USER_INPUT")
        return _page("timeline.html", 400, viewer=viewer, chosen=None, chart=None,
                     error=str(exc), truncated=False)
    view_id = await _console(request).sessions.keep_view(viewer.session, chosen)
    return RedirectResponse(f"{BASE}/timeline?view={view_id}", status_code=303)


# -- the chain ---------------------------------------------------------------------------------


async def chain_page(request: Request) -> Response:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    console = _console(request)
    checkpoint = await console.hub.audit.latest_checkpoint()
    current = await console.verifications.current()
    last = await console.verifications.last_finished()
    await _audited(request, viewer, "chain")
    return _page("chain.html", viewer=viewer, checkpoint=checkpoint, current=current, last=last,
                 refresh=current is not None and current.state == "running")


async def chain_verify(request: Request) -> Response:
    checked = await _checked_post(request)
    if isinstance(checked, Response):
        return checked
    viewer, _ = checked
    await _console(request).verifications.start(viewer.principal.client_id)
    await _audited(request, viewer, "verify")
    return RedirectResponse(f"{BASE}/chain", status_code=303)


# -- evidence ----------------------------------------------------------------------------------


async def evidence_page(request: Request) -> Response:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    await _audited(request, viewer, "evidence")
    return _page("evidence.html", viewer=viewer, checked=None, evidence="", body="", note=None)


async def evidence_check(request: Request) -> Response:
    checked = await _checked_post(request, _EVIDENCE_FORM_BYTES)
    if isinstance(checked, Response):
        return checked
    viewer, form = checked
    evidence, body = form.get("evidence", ""), form.get("body", "")
    jwks = _console(request).hub.auth.jwks()
    result = check_evidence(evidence, body.encode(), jwks)
    note = None
    if not result.ok and "\r\n" in body:
        # A browser sends a textarea's line breaks as CRLF: try the body with the LF it had.
        unix = check_evidence(evidence, body.replace("\r\n", "\n").encode(), jwks)
        if unix.ok:
            result, note = unix, "checked with LF line breaks (the form sent CRLF)"
    await _audited(request, viewer, "evidence check")
    return _page("evidence.html", viewer=viewer, checked=result, evidence=evidence, body=body,
                 note=note)


Endpoint = Callable[[Request], Awaitable[Response]]


def _guarded(endpoint: Endpoint) -> Endpoint:
    """A dependency outage (database, shared store, audit log) as a 503 page, never a page
    whose view could not be audited (no audit, no data)."""

    async def page(request: Request) -> Response:
        try:
            return await endpoint(request)
        except (Unavailable, KeyValueUnavailable, AuditUnavailable) as exc:
            log.warning("console: dependency unavailable on %s (%s)", request.url.path,
                        type(exc).__name__)
            response = _page("refused.html", 503, viewer=None,
                             message="The hub cannot answer now; retry in a moment.")
            response.headers["retry-after"] = str(Unavailable.retry_after)
            return response

    return page


_ROUTES: tuple[tuple[str, Endpoint, str], ...] = (
    ("/", home, "GET"),
    ("/sign-in", sign_in_form, "GET"),
    ("/sign-in", sign_in, "POST"),
    ("/sign-out", sign_out, "POST"),
    ("/log", log_page, "GET"),
    ("/log", log_filter, "POST"),
    ("/timeline", timeline_page, "GET"),
    ("/timeline", timeline_choose, "POST"),
    ("/chain", chain_page, "GET"),
    ("/chain/verify", chain_verify, "POST"),
    ("/evidence", evidence_page, "GET"),
    ("/evidence", evidence_check, "POST"),
)
PAGES = tuple((path, _guarded(endpoint), method) for path, endpoint, method in _ROUTES)
