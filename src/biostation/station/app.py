"""FastAPI app factory.

``create_app(settings, registry)`` builds the daemon's app; tests pass a registry of simulated
devices, the CLI lets it build one from the installed drivers. Every route but ``/health``, the
sign-in pages and the docs assets needs credentials: machines send the station token as
``Authorization: Bearer <token>``; a browser signs in once with the token and then carries a
session cookie of its own (``biostation_session``: a random id, HttpOnly, SameSite=Strict,
expiring after ``Settings.session_ttl_s``, revoked by ``POST /signout``), never the token itself.

:mod:`.security` guards every request before its route runs (Host header, credentials from the
headers, body size, security headers); heavy work runs on its bounded pool
(``app.state.heavy``). Errors come back as JSON ``{"error": <type>, "reason": <text>}`` with a
4xx/5xx status, whatever raised them (a route, the request parser, an unknown path or method);
biometric data and tokens are never logged, and no reason shows a Python object's repr.
"""

from __future__ import annotations

import http
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import Depends, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._version import __version__
from ..config import Settings, get_settings
from ..errors import (
    AccessDeniedError,
    AuthError,
    BatchError,
    BiostationError,
    CardError,
    CardRemovedError,
    DeviceBusyError,
    DeviceGoneError,
    DeviceNotFoundError,
    DeviceProtocolError,
    DeviceStateError,
    DeviceTimeoutError,
    ImageError,
    InvalidInputError,
    RecordError,
    SessionBusyError,
    SessionNotFoundError,
    StationBusyError,
    StepOrderError,
    StoreStateError,
)
from ..hal import DriverRegistry
from .auth import ensure_token, token_matches
from .security import SESSION_COOKIE, Guard, HeavyPool, Sessions, credentials_ok, route_options
from .workflows import ChipReads
from .workflows.store_repo import open_desk
from .workflows.verification import Verifications

log = logging.getLogger(__name__)

#: HTTP status for each error type; the first match along the class's MRO wins
STATUS_FOR_ERROR: dict[type[BaseException], int] = {
    AuthError: 401,
    AccessDeniedError: 403,  # the chip refused the CAN / MRZ
    CardRemovedError: 409,
    CardError: 502,
    ImageError: 422,
    DeviceNotFoundError: 404,
    DeviceBusyError: 409,
    DeviceStateError: 409,
    DeviceGoneError: 410,
    DeviceProtocolError: 502,
    DeviceTimeoutError: 504,
    InvalidInputError: 422,
    SessionNotFoundError: 404,
    SessionBusyError: 409,
    StepOrderError: 409,
    StoreStateError: 409,  # a closed session, a finished record
    BatchError: 422,
    RecordError: 422,
    StationBusyError: 503,
    BiostationError: 400,
}

_bearer = HTTPBearer(auto_error=False, description="The station token (`biostation token`).")

#: "<_io.BytesIO object at 0x7f...>" and the like: never part of a reason
_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")

#: the Swagger UI files served from the fastapi-offline package (no CDN, works without network)
_DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
                "favicon.png": "image/png"}


def status_for(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR_ERROR:
            return STATUS_FOR_ERROR[cls]
    return 500


def clean_reason(text: str) -> str:
    """``text`` without Python object reprs (they say nothing to a client and leak internals)."""
    return _REPR.sub("the upload", text)


def error_body(exc: BaseException) -> dict[str, str]:
    body = {"error": type(exc).__name__, "reason": clean_reason(str(exc))}
    missing = getattr(exc, "missing", None)
    if isinstance(exc, StepOrderError) and missing:
        body["missing_step"] = missing
    return body


def _http_error_name(status: int) -> str:
    try:
        return "".join(w.capitalize() for w in http.HTTPStatus(status).phrase.replace("-", " ").split())
    except ValueError:
        return "HTTPError"


def require_token(request: Request,
                  creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """Dependency: the request carries the station token, or a live sign-in session cookie.

    The :class:`.security.Guard` has already checked this from the headers; the dependency
    documents the scheme in the OpenAPI and keeps the check where a route is mounted without it."""
    auth = request.headers.get("authorization")
    sid = request.cookies.get(SESSION_COOKIE)
    if not credentials_ok(request.app.state.token, request.app.state.sessions, auth, sid):
        raise AuthError("wrong token" if auth is not None else
                        "the sign-in session has expired or ended" if sid is not None else "missing token")


def create_app(settings: Settings | None = None, registry: DriverRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()
    own_registry = registry is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reg = app.state.registry
        if own_registry:
            reg.scan()
            reg.start_monitor()
        if app.state.outbox is not None:
            app.state.outbox.start()
        try:
            yield
        finally:
            if app.state.outbox is not None:
                app.state.outbox.stop(timeout_s=10)
            app.state.heavy.close()
            if own_registry:
                reg.close()
            app.state.store.close()

    app = FastAPI(
        title="biostation",
        version=__version__,
        description="Station daemon: devices, capture, matching, chip cards. "
                    "Authenticate with `Authorization: Bearer <token>`; `biostation token` prints it.",
        docs_url=None, redoc_url=None, openapi_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.token = ensure_token(settings.token_path)
    app.state.sessions = Sessions(settings.session_ttl_s)
    app.state.heavy = HeavyPool(settings.heavy_workers, settings.heavy_queue)
    app.state.registry = registry if registry is not None else DriverRegistry(settings)
    app.state.chip_reads = ChipReads(settings.trust_dir, settings.terminal_dir)
    app.state.enrollments, app.state.store, app.state.outbox = open_desk(settings)
    app.state.verifications = Verifications(app.state.chip_reads, app.state.store,
                                            capture_timeout_s=settings.capture_timeout_s)
    app.add_middleware(Guard, settings=settings)
    #: the guard's options of the routes kept out of the OpenAPI (security.RouteTable)
    app.state.hidden_routes = {
        ("GET", "/"): route_options(public=True),
        ("GET", "/assets/{name}.js"): route_options(public=True),
        ("GET", "/docs"): route_options(public=True),
        ("GET", "/docs/assets/{name}"): route_options(public=True),
        ("POST", "/signin"): route_options(public=True, max_body_bytes=4096),
        ("POST", "/signout"): route_options(public=True, max_body_bytes=4096),
    }

    @app.exception_handler(BiostationError)
    async def _biostation_error(request: Request, exc: BiostationError) -> Response:
        status = status_for(exc)
        if status >= 500:
            log.warning("%s %s -> %d %s", request.method, request.url.path, status, type(exc).__name__)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, StationBusyError):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse(error_body(exc), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": "ValidationError", "reason": clean_reason(reasons)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # unknown routes (404), wrong methods (405), unparsable bodies and forms (400), ...
        reason = exc.detail if isinstance(exc.detail, str) else http.HTTPStatus(exc.status_code).phrase
        return JSONResponse({"error": _http_error_name(exc.status_code), "reason": clean_reason(reason)},
                            status_code=exc.status_code, headers=exc.headers)

    def signed_in(request: Request) -> bool:
        return app.state.sessions.valid(request.cookies.get(SESSION_COOKIE))

    def sign_in_page(target: str) -> HTMLResponse:
        return HTMLResponse(_SIGN_IN.replace("{next}", target), status_code=401,
                            headers={"Content-Security-Policy": _SIGN_IN_CSP})

    @app.get("/health", tags=["station"], summary="Liveness (no token needed)", openapi_extra=route_options(public=True))
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/", include_in_schema=False)
    def operator_page(request: Request) -> Response:
        """The desk operator's page (devices, capture, live camera, events); sign-in first."""
        if not signed_in(request):
            return sign_in_page("/")
        page = resources.files("biostation.station").joinpath("static/operator.html").read_text("utf-8")
        return HTMLResponse(page, headers={"Content-Security-Policy": _PAGE_CSP})

    @app.get("/assets/{name}.js", include_in_schema=False)
    def page_script(name: str) -> Response:
        if name not in ("operator", "desk"):
            raise StarletteHTTPException(404, "no such script")
        script = resources.files("biostation.station").joinpath(f"static/{name}.js").read_bytes()
        return Response(script, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> Response:
        if not signed_in(request):
            return sign_in_page("/docs")
        return HTMLResponse(_DOCS, headers={"Content-Security-Policy": _DOCS_CSP})

    @app.get("/docs/assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> Response:
        if name == "init.js":
            return Response(_DOCS_INIT, media_type="text/javascript", headers={"Cache-Control": "no-cache"})
        media = _DOCS_ASSETS.get(name)
        if media is None:
            return JSONResponse({"error": "NotFound", "reason": f"no docs asset {name!r}"}, status_code=404)
        data = resources.files("fastapi_offline").joinpath("static", name).read_bytes()
        return Response(data, media_type=media, headers={"Cache-Control": "public, max-age=86400"})

    @app.post("/signin", include_in_schema=False)
    def signin(token: str = Form(..., max_length=512), next: str = Form("/docs", max_length=512)) -> Response:
        if not token_matches(app.state.token, token.strip()):
            raise AuthError("wrong token")
        target = next if next.startswith("/") and not next.startswith("//") else "/docs"
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(SESSION_COOKIE, app.state.sessions.new(), max_age=int(settings.session_ttl_s),
                        httponly=True, samesite="strict", path="/")
        return resp

    @app.post("/signout", include_in_schema=False)
    def signout(request: Request) -> Response:
        app.state.sessions.revoke(request.cookies.get(SESSION_COOKIE))
        resp = RedirectResponse("/", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict", path="/")
        return resp

    from . import routes_abis, routes_card, routes_devices, routes_enroll, routes_face, routes_verify

    for module in (routes_devices, routes_face, routes_card, routes_enroll, routes_verify, routes_abis):
        app.include_router(module.router, dependencies=[Depends(require_token)])
    return app


#: the operator page loads nothing from elsewhere and runs no inline script; images come as data:
#: and blob: URLs
_PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
             "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

#: Swagger UI: its scripts from this origin only (no inline script); React sets style attributes
_DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
             "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

_SIGN_IN_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

_DOCS = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>biostation API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"><link rel="icon" href="/docs/assets/favicon.png">
</head><body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/docs/assets/init.js"></script>
</body></html>"""

_DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout", withCredentials: true});
"""

_SIGN_IN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>biostation: sign in</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;color:#1b2733}
input{width:100%;padding:.5rem;font-size:1rem;margin:.5rem 0}button{padding:.5rem 1.2rem;font-size:1rem}</style>
</head><body><h1>biostation</h1><p>Paste the station token. On the station, <code>biostation token</code> prints it.</p>
<form method="post" action="/signin"><input type="password" name="token" autocomplete="off" autofocus
aria-label="Station token"><input type="hidden" name="next" value="{next}"><button type="submit">Sign in</button>
</form></body></html>"""
