"""Take the README's screenshots of the dashboard (docs/*.png) from a fresh demo.

    .venv/bin/python scripts/screenshots.py [--out docs]

Runs `runfleet --sandbox` with a throw-away database, drives Debian's Chromium through a
few charging sessions and saves dashboard.png, station.png and dashboard-narrow.png.
The test suite never writes these files; this command is the only one that does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, Demo, login  # noqa: E402

HISTORY_S = 25  # seconds of charging before the first picture, for the charts


def start(page, station_id, evse_id):
    box = page.locator(f'[data-station="{station_id}"] [data-evse="{evse_id}"]').first
    box.locator("[data-primary]").click()
    box.locator("[data-outcome]").filter(has_text="Accepted").wait_for()


def plug_in(page, station_id, evse_id):
    box = page.locator(f'[data-station="{station_id}"] [data-evse="{evse_id}"]').first
    box.locator("[data-menu] > summary").click()
    box.locator('[data-menu] button[data-command="plug_in"]').click()
    box.locator("[data-outcome]").filter(has_text="Accepted").wait_for()
    page.keyboard.press("Escape")


def take(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fleet-screenshots-") as tmp:
        demo = Demo(Path(tmp))
        demo.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                context = browser.new_context(viewport={"width": 1366, "height": 900})
                page = context.new_page()
                login(page, demo)
                page.wait_for_function(
                    "document.querySelector('[data-total=\"connected\"]').textContent === '4'")
                start(page, "DEMO-001", 1)
                start(page, "DEMO-DC1", 1)
                plug_in(page, "DEMO-002", 2)
                page.wait_for_timeout(HISTORY_S * 1000)
                page.mouse.move(0, 0)  # no hover: the legends show the newest values
                page.screenshot(path=str(out / "dashboard.png"))
                print(f"wrote {out / 'dashboard.png'}")

                station = context.new_page()
                station.goto(f"{demo.url}/stations/DEMO-001/")
                station.wait_for_function("window.websocketConnected === true")
                station.wait_for_timeout(3000)
                station.screenshot(path=str(out / "station.png"))
                print(f"wrote {out / 'station.png'}")

                page.set_viewport_size({"width": 390, "height": 844})
                page.locator('[data-station="DEMO-001"]').first.scroll_into_view_if_needed()
                page.wait_for_timeout(1000)
                page.screenshot(path=str(out / "dashboard-narrow.png"))
                print(f"wrote {out / 'dashboard-narrow.png'}")
                browser.close()
        finally:
            demo.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs",
                        help="where the pictures go (default: docs/)")
    take(parser.parse_args().out)


if __name__ == "__main__":
    main()
