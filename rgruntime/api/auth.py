"""Bearer tokens with a scope: ``read`` tokens may read, ``admin`` tokens may also change.

Every token is compared with :func:`hmac.compare_digest` against every configured token (no
early exit), so the time an answer takes tells nothing about how much of a token was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Final, Literal

import attrs

from rgruntime.errors import ConfigError

__all__ = ["SCOPES", "Scope", "Token", "TokenSet"]

Scope = Literal["read", "admin"]
SCOPES: Final = ("read", "admin")

#: Shorter tokens are guessable; the check is on the configuration, not on requests.
MIN_TOKEN_LENGTH: Final = 16


@attrs.frozen(repr=False)
class Token:
    """A bearer token and what it may do (its value never shows in a repr or a log)."""

    value: str
    scope: Scope = "admin"

    def __repr__(self) -> str:
        return f"Token(scope={self.scope!r})"


def _check(token: Token, min_length: int = MIN_TOKEN_LENGTH) -> Token:
    if not isinstance(token.value, str) or not token.value or len(token.value) < min_length:
        raise ConfigError("tokens", "<hidden>", f"tokens of at least {MIN_TOKEN_LENGTH} characters")
    if not token.value.isprintable() or any(c.isspace() for c in token.value):
        raise ConfigError("tokens", "<hidden>", "tokens without spaces or control characters")
    if token.scope not in SCOPES:
        raise ConfigError("tokens.scope", token.scope, "'read' or 'admin'")
    return token


class TokenSet:
    """The tokens a server accepts. Empty: every request is allowed (loopback only)."""

    def __init__(self, tokens: Iterable[Token] = (), *, api_key: str | None = None) -> None:
        checked = [_check(token) for token in tokens]
        if api_key is not None:
            # The client's own key, as the user chose it (the guide's "your_key" is short).
            checked.append(_check(Token(api_key, "admin"), min_length=1))
        self._tokens = tuple(checked)

    @classmethod
    def of(
        cls,
        tokens: Iterable[Token] | Mapping[str, Scope] | None = None,
        *,
        api_key: str | None = None,
    ) -> TokenSet:
        """Tokens as given (``Token`` records or ``{value: scope}``), plus ``api_key`` as an
        admin token: the client's own key opens its own server."""
        if tokens is None:
            given: list[Token] = []
        elif isinstance(tokens, Mapping):
            given = [Token(value, scope) for value, scope in tokens.items()]
        elif isinstance(tokens, str):
            raise ConfigError("tokens", tokens, "a list of Token or a dict {token: scope}")
        else:
            given = list(tokens)
            for token in given:
                if not isinstance(token, Token):
                    raise ConfigError("tokens", token, "Token(value, scope) records")
        return cls(given, api_key=api_key)

    @property
    def required(self) -> bool:
        return bool(self._tokens)

    def scope_of(self, presented: str) -> Scope | None:
        """The scope of ``presented``, or None when it is no configured token."""
        found: Scope | None = None
        candidate = presented.encode()
        for token in self._tokens:
            # Every token is compared, a match or not: no early exit.
            if hmac.compare_digest(candidate, token.value.encode()):
                found = token.scope
        return found


def allows(scope: Scope, needed: Scope) -> bool:
    """Whether a token of ``scope`` may call a route needing ``needed``."""
    return scope == "admin" or needed == "read"
