"""FastAPI app factory.

``create_app(settings, registry)`` builds the daemon's app; tests pass a registry of simulated
devices, the CLI lets it build one from the installed drivers. Every route but ``/health`` needs
the station token, as ``Authorization: Bearer <token>`` or, for the browser pages, the
``biostation_token`` cookie set by the sign-in form (HttpOnly, SameSite=Strict). Errors come back
as JSON ``{"error": <type>, "reason": <text>}`` with a 4xx/5xx status; biometric data and
tokens are never logged.
"""

from __future__ import annotations

import logging
from importlib import resources
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .._version import __version__
from ..config import Settings, get_settings
from ..errors import (
    AccessDeniedError,
    AuthError,
    CardError,
    CardRemovedError,
    ImageError,
    BiostationError,
    DeviceBusyError,
    DeviceGoneError,
    DeviceNotFoundError,
    DeviceProtocolError,
    DeviceStateError,
    DeviceTimeoutError,
)
from ..hal import DriverRegistry
from .auth import ensure_token, token_matches

log = logging.getLogger(__name__)

COOKIE = "biostation_token"

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
    BiostationError: 400,
}

_bearer = HTTPBearer(auto_error=False, description="The station token (`biostation token`).")


def status_for(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR_ERROR:
            return STATUS_FOR_ERROR[cls]
    return 500


def error_body(exc: BaseException) -> dict[str, str]:
    return {"error": type(exc).__name__, "reason": str(exc)}


def require_token(request: Request,
                  creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """Dependency: the request carries the station token (header or sign-in cookie)."""
    expected: str = request.app.state.token
    given = creds.credentials if creds is not None else request.cookies.get(COOKIE)
    if not token_matches(expected, given):
        raise AuthError("missing token" if given is None else "wrong token")


def create_app(settings: Settings | None = None, registry: DriverRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()
    own_registry = registry is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reg = app.state.registry
        if own_registry:
            reg.scan()
            reg.start_monitor()
        try:
            yield
        finally:
            if own_registry:
                reg.close()

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
    app.state.registry = registry if registry is not None else DriverRegistry(settings)

    @app.exception_handler(BiostationError)
    async def _biostation_error(request: Request, exc: BiostationError) -> Response:
        status = status_for(exc)
        if status >= 500:
            log.warning("%s %s -> %d %s", request.method, request.url.path, status, type(exc).__name__)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(exc), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": "ValidationError", "reason": reasons}, status_code=422)

    @app.get("/health", tags=["station"], summary="Liveness (no token needed)")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/", include_in_schema=False)
    def operator_page(request: Request) -> Response:
        """The desk operator's page (devices, capture, live camera, events); sign-in first."""
        if not token_matches(app.state.token, request.cookies.get(COOKIE)):
            return HTMLResponse(_SIGN_IN.replace("{next}", "/"), status_code=401)
        page = resources.files("biostation.station").joinpath("static/operator.html").read_text("utf-8")
        return HTMLResponse(page, headers={"Content-Security-Policy": _PAGE_CSP, "Cache-Control": "no-store"})

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> Response:
        if not token_matches(app.state.token, request.cookies.get(COOKIE)):
            return HTMLResponse(_SIGN_IN.replace("{next}", "/docs"), status_code=401)
        return get_swagger_ui_html(openapi_url="/openapi.json", title="biostation API")

    @app.post("/signin", include_in_schema=False)
    def signin(token: str = Form(...), next: str = Form("/docs")) -> Response:
        if not token_matches(app.state.token, token.strip()):
            raise AuthError("wrong token")
        target = next if next.startswith("/") and not next.startswith("//") else "/docs"
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", path="/")
        return resp

    from . import routes_abis, routes_card, routes_devices, routes_face

    for module in (routes_devices, routes_face, routes_card, routes_abis):
        app.include_router(module.router, dependencies=[Depends(require_token)])
    return app


#: the operator page loads nothing from elsewhere; images come as data: and blob: URLs
_PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
             "script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'")

_SIGN_IN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>biostation: sign in</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;color:#1b2733}
input{width:100%;padding:.5rem;font-size:1rem;margin:.5rem 0}button{padding:.5rem 1.2rem;font-size:1rem}</style>
</head><body><h1>biostation</h1><p>Paste the station token. On the station, <code>biostation token</code> prints it.</p>
<form method="post" action="/signin"><input type="password" name="token" autocomplete="off" autofocus
aria-label="Station token"><input type="hidden" name="next" value="{next}"><button type="submit">Sign in</button>
</form></body></html>"""
