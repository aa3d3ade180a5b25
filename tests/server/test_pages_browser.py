"""The pages in a real browser (Debian's headless Chromium, driven by Playwright) over a real server running a
search: the list links to the job's page, which follows the job as it runs without a reload, then shows its plot.

Screenshots of both pages, during the search and after it, are left in the test's tmp folder.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from backends import get_target
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.predictors import train_and_save
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from tests.conftest import TOKEN
from tests.pipeline.test_predictors import store_latencies
from tests.server.test_server import TINY, submit

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package `chromium` (.ci/run installs it)
FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--no-sandbox", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip
WAIT_MS = 180_000  # for what the job does next, on a busy machine
LIVE = """() => {
  const live = document.querySelector("#live");
  return {status: live.querySelector("strong").textContent, progress: live.querySelector("progress").value,
          message: live.querySelector(".message").textContent, same: window.loadedOnce === true};
}"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"),
]


def test_the_job_page_follows_a_search_while_it_runs_then_shows_its_plot(
    launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    runner, space = get_target("systolic-edge32"), get_space("darts", TINY)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store_latencies(store, runner, space, space.sample_many(50, 0))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # where the server's searches look (launch's)
    train_and_save(store, space, MeasurementKey.of(runner, space), kinds=["lut"])
    server = launch()
    spec = {"target": runner.name, "space_options": TINY, "epochs": 2, "retrain_epochs": 1, "batch_size": 256,
            "follow": False}  # fmt: skip
    job_id = submit(server.client(TOKEN), "search", **spec)["id"]

    # Without the cookie: the 401 page, and the live part refuses too; `?token=` leaves the address bar.
    assert "needs the server's API token" in httpx.get(f"{server.url}/jobs/{job_id}").text
    assert httpx.get(f"{server.url}/jobs/{job_id}/live").status_code == 401
    redirect = httpx.get(f"{server.url}/jobs/{job_id}?token={TOKEN}")
    assert (redirect.status_code, redirect.headers["location"]) == (303, f"/jobs/{job_id}")
    missing = httpx.get(f"{server.url}/jobs/999", cookies={"ehdnas_token": TOKEN})
    assert missing.status_code == 404 and "No job 999" in missing.text

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            tmp_path / "profile", executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        browser.set_default_timeout(WAIT_MS)
        page = browser.new_page()
        page.goto(f"{server.url}/?token={TOKEN}")
        assert page.url == f"{server.url}/"  # the cookie is set, the token gone from the address
        page.click(f"a[href='/jobs/{job_id}'] >> nth=0")
        page.wait_for_url(f"{server.url}/jobs/{job_id}")
        page.evaluate("window.loadedOnce = true")  # gone if the page reloads
        page.wait_for_function(f"() => ({LIVE})().status === 'running' && ({LIVE})().progress > 0")
        first = page.evaluate(LIVE)
        page.screenshot(path=tmp_path / "job-during.png", full_page=True)
        listing = browser.new_page()
        listing.goto(f"{server.url}/")
        assert "running" in listing.inner_text(f"tr:has(a[href='/jobs/{job_id}'])")
        listing.screenshot(path=tmp_path / "list-during.png", full_page=True)

        # The page moves on its own while the job runs: the same document, another progress or message.
        moved = f"(first) => {{ const now = ({LIVE})(); return now.same && now.status === 'running' && " \
                "(now.progress !== first.progress || now.message !== first.message); }"  # fmt: skip
        page.wait_for_function(moved, arg=first)
        later = page.evaluate(LIVE)
        assert later["progress"] >= first["progress"], (first, later)

        # Once it has finished the page reloads itself once, with the outcome and the plot.
        page.wait_for_selector("#live [data-finished]")
        page.wait_for_function("() => document.images.length > 0 && [...document.images].every(i => i.naturalWidth)")
        assert page.evaluate(LIVE)["status"] == "succeeded" and page.evaluate("window.loadedOnce") is None
        assert "test accuracy" in page.inner_text("body") and page.locator("img[src$='/search.png']").count() == 1
        page.screenshot(path=tmp_path / "job-after.png", full_page=True)
        listing.reload()
        assert "succeeded" in listing.inner_text(f"tr:has(a[href='/jobs/{job_id}'])")
        listing.screenshot(path=tmp_path / "list-after.png", full_page=True)
        browser.close()
    print(f"screenshots in {tmp_path}")
