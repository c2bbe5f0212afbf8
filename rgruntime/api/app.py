"""The starlette application: the route table behind bearer-token authentication."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from rgruntime.api.auth import TokenSet, allows
from rgruntime.api.problems import ApiError, error_response, from_exception
from rgruntime.api.table import ROUTES, ApiRoute

if TYPE_CHECKING:
    from rgruntime.agents.client import ResonantGenesis
    from rgruntime.api.bare import BareRuntime

__all__ = ["create_app"]

logger = logging.getLogger("rgruntime.api")

#: The longest URL (path and query) accepted: a key of 1024 characters, each escaped as up to
#: 12 bytes (4 UTF-8 bytes, %XX each), with room for the query.
MAX_URL = 16384
_REALM = 'Bearer realm="rgruntime"'
DASHBOARD_PATH = "/dashboard"


class Authentication:
    """ASGI middleware: with tokens configured, nothing (not even a 404) answers a request
    without a valid bearer token. The token's scope goes to the route in ``scope["state"]``."""

    def __init__(self, app: ASGIApp, tokens: TokenSet) -> None:
        self._app = app
        self._tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        try:
            scope.setdefault("state", {})["token_scope"] = self._authenticate(scope)
        except ApiError as error:
            await error_response(error)(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def _authenticate(self, scope: Scope) -> str:
        if len(scope.get("raw_path", b"")) + len(scope.get("query_string", b"")) > MAX_URL:
            raise ApiError(414, "uri_too_long", f"the URL exceeds {MAX_URL} bytes")
        if not self._tokens.required:
            return "admin"
        headers = dict(scope["headers"])
        presented = headers.get(b"authorization", b"").decode("latin-1")
        if not presented and scope["path"] == DASHBOARD_PATH:
            # A browser opening the page cannot send a header: the dashboard alone takes the
            # token from its URL (the page then removes it from the address bar and sends it
            # as a header; the access log is off).
            presented = _query_token(scope)
        scheme, _, token = presented.partition(" ")
        if not presented:
            raise ApiError(
                401,
                "unauthorized",
                "a bearer token is required",
                headers={"WWW-Authenticate": _REALM},
            )
        found = self._tokens.scope_of(token.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise ApiError(
                401,
                "unauthorized",
                "the bearer token is not valid",
                headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
            )
        return found


def _query_token(scope: Scope) -> str:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
    return f"Bearer {values[0]}" if len(values) == 1 else ""


def _endpoint(route: ApiRoute, client: ResonantGenesis) -> Any:
    @functools.wraps(route.handler)
    async def endpoint(request: Request) -> Response:
        if not allows(request.state.token_scope, route.scope):
            return error_response(
                ApiError(
                    403,
                    "forbidden",
                    f"this route needs a token with the {route.scope} scope",
                    headers={"WWW-Authenticate": f'{_REALM}, error="insufficient_scope"'},
                )
            )
        try:
            answer = await route.handler(client, request)
        except ApiError as error:
            return error_response(error)
        except Exception as error:
            known = from_exception(error)
            if known is None:
                raise
            return error_response(known)
        return answer if isinstance(answer, Response) else JSONResponse(answer)

    return endpoint


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own answers (no route: 404; wrong method: 405) in the API's JSON shape, as
    the OpenAPI document declares every answer (a raw path with a newline once got a text/plain
    404 from the router: the fuzzer's find)."""
    assert isinstance(error, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    headers = dict(error.headers or {})
    return error_response(ApiError(error.status_code, code, str(error.detail), headers=headers))


async def _server_error(request: Request, error: Exception) -> Response:
    logger.exception("the API failed on %s %s", request.method, request.url.path)
    return error_response(ApiError(500, "internal", "the server failed; see its log"))


def create_app(target: ResonantGenesis | BareRuntime, tokens: TokenSet | None = None) -> Starlette:
    """The API over an open client (or a bare runtime's stand-in, ``rgruntime.api.bare``);
    ``tokens`` empty or None: no authentication."""
    tokens = tokens if tokens is not None else TokenSet()
    # The stand-in answers every call the routes make of a client (or says why not).
    client = cast("ResonantGenesis", target)
    app = Starlette(
        routes=[
            Route(route.starlette_path, _endpoint(route, client), methods=[route.method])
            for route in ROUTES
        ],
        middleware=[Middleware(Authentication, tokens=tokens)],
        exception_handlers={StarletteHTTPException: _http_error, Exception: _server_error},
    )
    app.state.secured = tokens.required
    return app
