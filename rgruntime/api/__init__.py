"""The HTTP API over a client: the caching guide's API Reference and the operations routes.

Needs the ``api`` extra (``pip install 'rgruntime[api]'``: starlette, hypercorn).
"""

from __future__ import annotations

try:
    import hypercorn  # noqa: F401
    import starlette  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised by tests/test_missing_extras.py
    raise ImportError(
        f"rgruntime.api needs the api extra (pip install 'rgruntime[api]'): {error}"
    ) from error

from rgruntime.api.app import create_app
from rgruntime.api.auth import Token, TokenSet
from rgruntime.api.openapi import document
from rgruntime.api.server import ApiServer, serve_api

__all__ = ["ApiServer", "Token", "TokenSet", "create_app", "document", "serve_api"]
