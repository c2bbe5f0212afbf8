"""A blocking client of a running ``rgruntime serve`` (what the command line talks to)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import quote

import attrs
import httpx

from rgruntime.errors import RGRuntimeError

__all__ = ["RemoteAPI", "RemoteError"]

DEFAULT_URL: Final = "http://127.0.0.1:8000"


class RemoteError(RGRuntimeError):
    """The server could not be reached (``status`` 0) or answered with an error."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        self.status = status
        self.field = field
        super().__init__(message)


@attrs.define
class RemoteAPI:
    """``RemoteAPI(url, token)``: each method is one HTTP call; errors raise RemoteError."""

    url: str = DEFAULT_URL
    token: str | None = None
    timeout: float = 30.0
    _http: httpx.Client = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteAPI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **options: Any) -> Any:
        try:
            answer = self._http.request(method, path, **options)
        except httpx.InvalidURL as error:
            raise RemoteError(0, f"{self.url!r} is not a URL ({error})") from None
        except httpx.HTTPError as error:
            raise RemoteError(
                0, f"cannot reach {self.url}: {error or type(error).__name__}"
            ) from None
        if answer.is_success:
            return (
                answer.json() if "json" in answer.headers.get("content-type", "") else answer.text
            )
        try:
            body = answer.json()
            message, field = body.get("message", answer.text), body.get("field")
        except ValueError:
            message, field = answer.text or answer.reason_phrase, None
        raise RemoteError(answer.status_code, f"{answer.status_code}: {message}", field)

    def health(self) -> Any:
        return self._call("GET", "/healthz")

    def stats(self) -> Any:
        return self._call("GET", "/api/v1/cache/stats")

    def invalidate(self, **selection: Any) -> Any:
        body = {name: value for name, value in selection.items() if value is not None}
        return self._call("POST", "/api/v1/cache/invalidate", json=body)

    def warm(self, agent_id: str, goals: Iterable[str], **options: Any) -> Any:
        body = {"agent_id": agent_id, "goals": list(goals)}
        body |= {name: value for name, value in options.items() if value is not None}
        return self._call("POST", "/api/v1/cache/warm", json=body)

    def get(self, key: str, layer: str = "response") -> Any:
        return self._call("GET", f"/api/v1/cache/{quote(key, safe='')}", params={"layer": layer})

    def delete(self, key: str, layer: str = "response") -> Any:
        path = f"/api/v1/cache/{quote(key, safe='')}"
        return self._call("DELETE", path, params={"layer": layer})

    def analyze(self) -> Any:
        return self._call("GET", "/api/v1/analyze")

    def diagnose(self, agent_id: str | None = None, layer: str | None = None) -> Any:
        params = {
            name: value for name, value in (("agent_id", agent_id), ("layer", layer)) if value
        }
        return self._call("GET", "/api/v1/diagnose", params=params)
