"""Every async test runs twice, on asyncio and on trio, through anyio's pytest plugin.

Mark a test (or a module, with ``pytestmark``) ``virtual_time`` to run both on autojump virtual
clocks instead (see ``tests/support.py``). Real clocks stay the default so that the fast clock
paths a runtime resolves on the standard loops (``time.monotonic``, trio's ``SystemClock``) are
exercised too.
"""

from __future__ import annotations

import pytest

from tests.support import BACKENDS, virtual_time_backend


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "virtual_time: run this anyio test on virtual clocks (trio MockClock with autojump, "
        "looptime on asyncio)",
    )


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    # Function scope: every virtual-time test gets a fresh clock starting at 0.
    if request.node.get_closest_marker("virtual_time") is not None:
        return virtual_time_backend(request.param)
    return request.param
