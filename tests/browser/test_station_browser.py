"""The Weather Station in real headless Chromium, against a real database server and station."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from atmosphere import Atmosphere
from atmosphere.db.client import FirebaseDatabase
from atmosphere.paths import Paths
from atmosphere.settings import Settings
from tests.browser import seed
from tests.browser.harness import SCREENSHOTS, StationProcess, World, new_world, start_station
from tests.support import ServerProcess, wait_until

pytestmark = pytest.mark.browser

PATHS = Paths("atmosphere")
Shot = Callable[[Any, str], Path]


def fill(db: FirebaseDatabase) -> dict[str, str]:
    """Realistic data; returns the ids the tests look for."""
    seed.apply(db, seed.stats(PATHS, 60))
    seed.apply(db, seed.history(db, PATHS, 120))
    seed.apply(db, seed.clouds(db, PATHS, 12, dead=1))
    seed.apply(db, seed.control_plane(db, PATHS))
    xss_id, updates = seed.failed_job(db, PATHS, seed.XSS_NAME, seed.XSS_DATA)
    seed.apply(db, updates)
    retry_id, updates = seed.failed_job(db, PATHS, "retry-me")
    seed.apply(db, updates)
    chain_id, updates = seed.chain(db, PATHS)
    seed.apply(db, updates)
    return {"xss": xss_id, "retry": retry_id, "chain": chain_id}


@pytest.fixture(scope="module")
def world(db_server: ServerProcess) -> Iterator[World]:
    """This module's namespace, seeded, with its station."""
    with new_world(db_server, fill) as made:
        yield made


@pytest.fixture
def seeded(world: World) -> dict[str, str]:
    """Ids of the seeded jobs."""
    return world.seeded


def open_view(page: Any, station: StationProcess, view: str) -> None:
    page.goto(f"{station.url}/#/{view}")
    page.wait_for_selector("#conn.live", timeout=10_000)  # the live stream is up


def test_every_view_renders_and_is_screenshotted(
    world: World, seeded: dict[str, str], strict_page: Any, shot: Shot
) -> None:
    page = strict_page  # under the real Content-Security-Policy: no violation may occur
    station = world.station
    views = (
        ("clouds", "clouds", "#clouds-table tbody tr"),
        ("jobs", "jobs", "#jobs-table tbody tr"),
        ("failed", "failed", "#failed-table tbody tr"),
        ("schedules", "schedules", "#schedules-table tbody tr"),
        ("dispatchers", "dispatchers", "#dispatchers-table tbody tr"),
        ("job", f"job/{seeded['xss']}", "#traceback"),
        ("job-chain", f"job/{seeded['chain']}-1", ".step.current"),
    )
    for theme in ("dark", "light"):
        page.emulate_media(color_scheme=theme)  # the page follows the system theme by default
        page.goto("about:blank")  # a real load, so the theme is chosen again
        open_view(page, station, "overview")
        assert page.evaluate("document.documentElement.dataset.theme") == theme
        page.locator(".uplot canvas").nth(3).wait_for()
        page.locator("#view .tile.info .value >> text=/[1-9]/").wait_for()  # stats arrived
        assert page.locator(".empty-chart").count() == 0
        shot(page, f"{theme}-overview")
        for name, view, ready in views:
            open_view(page, station, view)
            page.wait_for_selector(ready, timeout=10_000)
            shot(page, f"{theme}-{name}")
    assert (SCREENSHOTS / "dark-overview.png").stat().st_size > 10_000


def test_dead_cloud_is_visibly_dead(world: World, seeded: dict[str, str], page: Any) -> None:
    station = world.station
    open_view(page, station, "clouds")
    dead = page.wait_for_selector("#clouds-table tr.dead")
    assert "DEAD" in dead.inner_text()
    assert page.locator("#clouds-table tr.dead").count() == 1
    assert "1 dead" in page.inner_text("#badge-clouds")
    open_view(page, station, "overview")
    health = page.wait_for_selector("#health.bad")  # the first line says something is wrong
    assert "1 cloud not heard from" in health.inner_text()


def test_a_submitted_job_appears_live(world: World, seeded: dict[str, str], page: Any) -> None:
    db, station = world.db, world.station
    open_view(page, station, "jobs")
    page.wait_for_selector("#jobs-table")
    name = f"live-{uuid.uuid4().hex[:8]}"
    app = Atmosphere(settings=Settings.from_url(world.url), database=db)
    submitted = time.monotonic()
    handle = app.submit({"type": "syncUser", "name": name, "data": {"hello": "world"}})
    page.wait_for_selector(f"#in-flight tr[data-job='{handle.id}']", timeout=5_000)
    shown_after = time.monotonic() - submitted
    assert "queued" in page.inner_text(f"#in-flight tr[data-job='{handle.id}']")
    # The cloud completes it (the "complete" write of the protocol): history updates by itself.
    now = int(time.time() * 1000)
    db.update(
        "",
        {
            PATHS.queue("syncUser", handle.id): None,
            f"{PATHS.jobs(handle.id)}/state": "succeeded",
            f"{PATHS.jobs(handle.id)}/result": {"ok": True},
            f"{PATHS.jobs(handle.id)}/started": now - 20,
            f"{PATHS.jobs(handle.id)}/finished": now,
        },
    )
    row = f"#jobs-table tr[data-job='{handle.id}']"
    page.wait_for_selector(f"{row} >> text=succeeded", timeout=8_000)
    assert page.locator(f"#in-flight tr[data-job='{handle.id}']").count() == 0
    print(f"\nsubmitted job visible in the browser after {shown_after * 1000:.0f} ms")


def test_retry_a_failed_job(world: World, seeded: dict[str, str], page: Any) -> None:
    db, station = world.db, world.station
    job_id = seeded["retry"]
    open_view(page, station, "failed")
    page.click(f"#failed-table tr[data-job='{job_id}'] button[data-action='retry']")
    wait_until(lambda: db.get(PATHS.jobs(f"{job_id}/state")) == "queued", 5, what="job requeued")
    record = db.get(PATHS.jobs(job_id))
    assert "error" not in record
    queued = db.get(PATHS.queue("billing", job_id))
    assert queued["attempt"] == 1 and queued["id"] == job_id
    page.wait_for_selector(
        f"#failed-table tr[data-job='{job_id}']", state="detached", timeout=8_000
    )


def test_pause_and_resume_a_schedule(world: World, seeded: dict[str, str], page: Any) -> None:
    db, station = world.db, world.station
    open_view(page, station, "schedules")
    row = "#schedules-table tr[data-schedule='sync-all']"
    page.wait_for_selector(f"{row} >> text=active")
    page.click(f"{row} button[data-action='pause']")
    wait_until(lambda: db.get(PATHS.schedules("sync-all/paused")) is True, 5, what="paused")
    page.wait_for_selector(f"{row} .schedule-status >> text=paused", timeout=5_000)
    page.click(f"{row} button[data-action='resume']")
    wait_until(lambda: db.get(PATHS.schedules("sync-all/paused")) is False, 5, what="resumed")
    page.click(f"{row} button[data-action='run']")
    wait_until(
        lambda: isinstance(db.get(PATHS.schedules("sync-all/run_now")), int), 5, what="run now"
    )


def test_job_data_is_escaped_never_executed(
    world: World, seeded: dict[str, str], page: Any
) -> None:
    station = world.station
    for view in (f"job/{seeded['xss']}", "failed", "jobs?"):
        open_view(page, station, view.rstrip("?"))
        page.wait_for_selector(f"text={seed.XSS_NAME}", timeout=10_000)
    open_view(page, station, f"job/{seeded['xss']}")
    page.wait_for_selector("#traceback")
    text = page.inner_text("#view")
    for payload in seed.XSS_DATA.values():
        assert payload in text  # shown as text, character for character
    assert page.evaluate("window.__xss") is None  # no handler or script ever ran
    assert page.locator("#view img, #view script, #view svg[onload]").count() == 0


def test_search_by_type_state_name_and_id(world: World, seeded: dict[str, str], page: Any) -> None:
    station = world.station
    open_view(page, station, "jobs")
    page.fill("#job-type", "billing")
    page.select_option("#job-state", "failed")
    page.click("#job-search button[type=submit]")
    # Wait for the filtered table (the unfiltered first page was showing before the search).
    page.wait_for_function(
        "(() => { const rows = [...document.querySelectorAll('#jobs-table tbody tr')];"
        " return rows.length > 0 && rows.every(r => r.innerText.includes('failed')"
        " && r.innerText.includes('billing')); })()",
        timeout=8_000,
    )
    # the XSS job is a failed billing job no other test touches
    assert page.locator(f"#jobs-table tr[data-job='{seeded['xss']}']").count() == 1
    rows = page.locator("#jobs-table tbody tr")
    assert rows.count() >= 1
    for text in rows.all_inner_texts():
        assert "billing" in text and "failed" in text
    page.click("#job-search button[type=button]")  # Clear
    page.fill("#job-id", seeded["xss"])
    page.click("#job-search button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#jobs-table tbody tr').length === 1")
    assert seed.XSS_NAME in page.inner_text("#jobs-table")
    page.click(f"#jobs-table tr[data-job='{seeded['xss']}'] td:first-child")
    page.wait_for_selector("#traceback")  # a row opens the job
    assert seeded["xss"] in page.url


def test_token_is_exchanged_for_a_cookie_and_actions_still_work(
    world: World, seeded: dict[str, str], page: Any
) -> None:
    token = uuid.uuid4().hex
    guarded = start_station(
        world.url, {"ATMOSPHERE_DEAD_AFTER": "3600", "ATMOSPHERE_STATION_TOKEN": token}
    )
    try:
        assert page.request.get(f"{guarded.url}/api/live").status == 401
        page.goto(f"{guarded.url}/?token={token}#/schedules")
        assert "token" not in page.url  # exchanged for a cookie, gone from the address bar
        page.wait_for_selector("#conn.live")
        row = "#schedules-table tr[data-schedule='nightly-report']"
        page.click(f"{row} button[data-action='pause']")  # a POST with cookie + CSRF + Origin
        wait_until(
            lambda: world.db.get(PATHS.schedules("nightly-report/paused")) is True, 5, what="paused"
        )
        page.click(f"{row} button[data-action='resume']")
        wait_until(
            lambda: world.db.get(PATHS.schedules("nightly-report/paused")) is False,
            5,
            what="resumed",
        )
        assert page.request.get(f"{guarded.url}/api/live").status == 200  # the cookie, shared
    finally:
        page.goto("about:blank")  # end the event stream before the station goes away
        guarded.stop()
