"""The dashboard in headless Chromium (``nox -s browser``): it loads with the token, its charts
draw from the live API, and an invalidation made through the page shows at the next refresh.

Not part of the default suite (its name matches no test pattern): it needs Playwright and a
Chromium (Debian's, found through CHROMIUM or on the PATH; nothing is downloaded).
``--screenshot PATH`` (an environment variable, DASHBOARD_SCREENSHOT) saves the page under load.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.api.conftest import ADMIN, AGENT, READ, bearer
from tests.api.served import rgruntime_serve

GOALS = [f"Question number {n}?" for n in range(30)]


def _chromium() -> str:
    path = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    assert path, "no Chromium: nox -s browser installs Debian's (apt-get install chromium)"
    return path


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with rgruntime_serve("asyncio", "--model-latency", "0.01") as served:
        with httpx.Client(base_url=served, headers=bearer(ADMIN), timeout=60) as http:
            for _ in range(2):  # the second round hits
                http.post("/api/v1/cache/warm", json={"agent_id": AGENT, "goals": GOALS})
        yield served


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), headless=True)
        try:
            yield browser.new_page(viewport={"width": 1440, "height": 900})
        finally:
            browser.close()


def _entries(url: str) -> int:
    stats = httpx.get(f"{url}/api/v1/cache/stats", headers=bearer(READ), timeout=30).json()
    return int(stats["entry_count"])


def test_the_dashboard_draws_from_the_live_api(url: str, page: Page) -> None:
    page.goto(f"{url}/dashboard?token={READ}&refresh=0.5")
    assert "token=" not in page.url  # taken out of the address bar
    expect(page.locator("body[data-refreshes]")).to_be_visible()
    # No lookups since the page opened: no hit-rate line yet (each point is one interval's).
    expect(page.locator('#hit-rate-chart path[data-series="response"]')).to_have_count(0)
    with httpx.Client(base_url=url, headers=bearer(ADMIN), timeout=60) as http:
        for _ in range(3):  # lookups over a few refreshes, all hits
            http.post("/api/v1/cache/warm", json={"agent_id": AGENT, "goals": GOALS})
            page.wait_for_timeout(600)
    expect(page.locator('#hit-rate-chart path[data-series="response"]')).to_have_count(1)
    expect(page.locator("#cache-figures #entry-count")).to_have_text(f"{_entries(url):,}")
    assert "Question" not in page.locator("#largest-entries").inner_text()  # 501 until issue 15
    expect(page.locator("#savings-figures")).to_contain_text("responses from the cache")
    expect(page.locator("#status")).not_to_have_class("status error")


def test_an_invalidation_through_the_page_shows_at_the_next_refresh(url: str, page: Page) -> None:
    page.goto(f"{url}/dashboard?token={ADMIN}&refresh=0.5")
    expect(page.locator("#cache-figures #entry-count")).to_have_text(f"{_entries(url):,}")
    before = int(page.locator("#invalidation-count").inner_text().replace(",", ""))
    page.fill("#invalidate-pattern", f"response:{AGENT}:*")
    page.click("#invalidate-form button")
    expect(page.locator("#invalidate-result")).to_have_attribute("data-status", "200")
    removed = int(page.locator("#invalidate-result").inner_text().split()[0])
    assert removed >= len(GOALS)
    expect(page.locator("#invalidation-count")).to_have_text(f"{before + removed:,}")
    expect(page.locator("#cache-figures #entry-count")).to_have_text(f"{_entries(url):,}")


def test_a_read_token_cannot_invalidate_from_the_page(url: str, page: Page) -> None:
    page.goto(f"{url}/dashboard?token={READ}&refresh=0.5")
    page.fill("#invalidate-tag", "products")
    page.click("#invalidate-form button")
    expect(page.locator("#invalidate-result")).to_have_attribute("data-status", "403")


def test_without_a_token_the_page_is_refused(url: str, page: Page) -> None:
    answer = page.goto(f"{url}/dashboard")
    assert answer is not None
    assert answer.status == 401


def test_screenshot_under_load(page: Page) -> None:
    """The page keeps drawing while warm requests run against a cache too small for them (so
    entries are evicted); DASHBOARD_SCREENSHOT=path saves it."""
    target = os.environ.get("DASHBOARD_SCREENSHOT")
    with rgruntime_serve("asyncio", "--model-latency", "0.002", "--max-size", "96KB") as url:
        _under_load(url, page, target)


def _under_load(url: str, page: Page, target: str | None) -> None:
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=url, headers=bearer(ADMIN), timeout=60) as http:
            round_ = 0
            while not stop.is_set():
                # Popular goals often, the long tail sometimes: hits, misses and evictions.
                goals = [f"Popular question {(round_ + n) % 12}?" for n in range(6)]
                goals += [f"Rare question {(round_ * 5 + n) % 400}?" for n in range(4)]
                http.post("/api/v1/cache/warm", json={"agent_id": AGENT, "goals": goals})
                round_ += 1

    worker = threading.Thread(target=load)
    worker.start()
    try:
        page.goto(f"{url}/dashboard?token={READ}&refresh=0.5")
        # 12 refreshes or more (the page's CSP forbids the eval a JS predicate would need).
        twelve_or_more = re.compile(r"^(1[2-9]|[2-9]\d|\d{3,})$")
        expect(page.locator("body")).to_have_attribute(
            "data-refreshes", twelve_or_more, timeout=30000
        )
        expect(page.locator('#hit-rate-chart path[data-series="response"]')).to_have_count(1)
        expect(page.locator('#eviction-chart rect[data-cause="evictions"]').first).to_be_visible()
        if target:
            page.screenshot(path=target, full_page=True)
    finally:
        stop.set()
        worker.join()
