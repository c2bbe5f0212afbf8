"""A server with a request in flight stops when its client's scope is cancelled."""

from __future__ import annotations

import anyio
import anyio.abc
import httpx
import pytest

from rgruntime import ResonantGenesis
from rgruntime.providers import SimulatedProvider
from tests.api.conftest import ADMIN, AGENT, bearer

pytestmark = pytest.mark.anyio


async def test_cancelling_the_client_stops_a_server_mid_request(anyio_backend: object) -> None:
    answered: list[int] = []
    # fail_after guards against a hang only: a server that outlived its scope would block here.
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            started = anyio.Event()

            async def serve_and_wait(*, task_status: anyio.abc.TaskStatus[str]) -> None:
                slow = SimulatedProvider(latency=3600)  # the warm below never finishes
                async with ResonantGenesis(provider=slow) as client:
                    await client.agents.create("Support", agent_id=AGENT)
                    server = await client.serve_api(port=0, tokens={ADMIN: "admin"})
                    task_status.started(server.url)
                    await anyio.sleep_forever()

            url = await group.start(serve_and_wait)

            async def request() -> None:
                async with httpx.AsyncClient(base_url=url, headers=bearer(ADMIN)) as http:
                    started.set()
                    try:
                        answer = await http.post(
                            "/api/v1/cache/warm", json={"agent_id": AGENT, "goals": ["slow?"]}
                        )
                        answered.append(answer.status_code)
                    except httpx.HTTPError:
                        answered.append(0)  # the server went away with the request

            group.start_soon(request)
            await started.wait()
            await anyio.sleep(0.2)  # let the request reach the server
            group.cancel_scope.cancel()
    assert answered in ([], [0])  # cancelled with the group, or cut off: never answered
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{url}/healthz")
