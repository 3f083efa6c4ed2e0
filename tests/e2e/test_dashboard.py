"""A person at the dashboard: log in, watch the demo stations, start and stop charging."""

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def sandbox_messages(page, demo, station_id, action):
    response = page.request.get(
        f"{demo.url}/api/sandbox/messages/?station_id={station_id}&action={action}")
    return response.json()["messages"]


def evse(page, station_id, evse_id=1):
    return page.locator(f'[data-station="{station_id}"] [data-evse="{evse_id}"]').first


def number(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text) or 0)


def test_demo_stations_come_online_and_charge_from_a_click(page, demo):
    row = page.locator('[data-station="DEMO-001"]').first
    row.wait_for()
    page.wait_for_function(
        "document.querySelector('[data-total=\"connected\"]').textContent.trim() === '4'")
    box = evse(page, "DEMO-001")
    box.locator('input').first.fill("TOKEN-001")
    box.locator('button[data-command="start_charging"]').click()
    box.locator("[data-outcome]").filter(has_text="Accepted").wait_for()
    page.wait_for_function(
        "[...document.querySelectorAll('[data-station=\"DEMO-001\"] [data-evse=\"1\"] "
        "[data-field=\"charging_state\"]')].some(e => e.textContent.includes('Charging'))")
    started = sandbox_messages(page, demo, "DEMO-001", "TransactionEvent")
    assert started and started[0]["payload"]["eventType"] == "Started"

    energy = box.locator('[data-field="energy"]').first
    first = number(energy.inner_text())
    page.wait_for_function(
        f"(() => {{ const e = document.querySelector('[data-station=\"DEMO-001\"] "
        f"[data-evse=\"1\"] [data-field=\"energy\"]'); "
        f"return e && parseFloat(e.textContent.replace(/[^0-9.]/g, '')) > {first}; }})()",
        timeout=20000)
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "dashboard.png"), full_page=False)
    detail = page.context.new_page()
    detail.goto(f"{demo.url}/stations/DEMO-001/")
    detail.wait_for_function("window.websocketConnected === true")
    detail.wait_for_timeout(7000)  # a few live kW/kWh points for the chart
    detail.screenshot(path=str(DOCS / "station.png"), full_page=False)
    detail.close()

    box.locator('button[data-command="stop_charging"]').click()
    box.locator("[data-outcome]").filter(has_text="Accepted").first.wait_for()
    page.wait_for_function(
        "![...document.querySelectorAll('[data-station=\"DEMO-001\"] [data-evse=\"1\"] "
        "[data-field=\"charging_state\"]')].some(e => e.textContent.includes('Charging'))")
    events = sandbox_messages(page, demo, "DEMO-001", "TransactionEvent")
    assert events[-1]["payload"]["eventType"] == "Ended"

    page.goto(f"{demo.url}/stations/DEMO-001/")
    page.wait_for_function("window.websocketConnected === true")
    page.locator('[data-frame][data-action="TransactionEvent"]').first.wait_for()
    assert page.locator('[data-frame][data-action="TransactionEvent"]').count() >= 2
    # The page starts from the database (up to a second behind); the live view follows.
    page.wait_for_function(
        "(() => { const e = document.querySelector('[data-evse=\"1\"] "
        "[data-field=\"charging_state\"]'); return e && !e.textContent.includes('Charging'); "
        "})()")


def test_a_rejected_token_and_an_offline_station_show_their_outcome(page, demo):
    box = evse(page, "DEMO-002")
    box.wait_for()
    box.locator('input').first.fill("BLOCKED-001")
    box.locator('button[data-command="start_charging"]').click()
    box.locator("[data-outcome]").filter(has_text=re.compile("Invalid|Rejected")).wait_for()

    station = page.locator('[data-station="DEMO-003"]').first
    station.locator('button[data-command="disconnect"]').first.click()
    page.wait_for_function(
        "document.querySelector('[data-total=\"offline\"]').textContent.trim() === '1'")
    box = evse(page, "DEMO-003")
    box.locator('input').first.fill("TOKEN-002")
    box.locator('button[data-command="start_charging"]').click()
    box.locator("[data-outcome]").filter(has_text="Offline").wait_for()
    station.locator('button[data-command="connect"]').first.click()


def test_the_page_works_at_a_narrow_width(page, demo):
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator('[data-station="DEMO-001"]').first.wait_for()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page scrolls sideways at 390 px ({width} px wide)"
    button = evse(page, "DEMO-001").locator('button[data-command="start_charging"]')
    button.scroll_into_view_if_needed()
    assert button.is_visible()
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "dashboard-narrow.png"), full_page=False)
