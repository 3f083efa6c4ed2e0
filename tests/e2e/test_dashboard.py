"""A person at the dashboard: log in, watch the demo stations, start and stop charging.

These tests write nothing outside their temporary folders; the README's screenshots are
made by `make screenshots` (scripts/screenshots.py).
"""

import re

from tests.e2e.conftest import login


def sandbox_messages(page, demo, station_id, action):
    response = page.request.get(
        f"{demo.url}/api/sandbox/messages/?station_id={station_id}&action={action}")
    return response.json()["messages"]


def evse(page, station_id, evse_id=1):
    return page.locator(f'[data-station="{station_id}"] [data-evse="{evse_id}"]').first


def number(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text) or 0)


def use_token(box, token):
    """Open an EVSE's menu of actions and pick the idToken its Start presents."""
    box.locator("[data-menu] > summary").click()
    box.locator("[data-input=id_token]").fill(token)


def charging_state(page, station_id, evse_id=1):
    return (f"((document.querySelector('[data-station=\"{station_id}\"] [data-evse=\"{evse_id}\"] "
            "[data-field=\"charging_state\"]') || {}).textContent || '')")


def chart_times(page, selector):
    return page.evaluate(f"document.querySelector('{selector}').chartTimes()")


def wait_for_points(page, selector, count, timeout=30000):
    page.wait_for_function(
        f"(() => {{ const c = document.querySelector('{selector}'); "
        f"return c && c.chartTimes && c.chartTimes().length >= {count}; }})()", timeout=timeout)


def test_demo_stations_come_online_and_charge_from_a_click(page, demo):
    row = page.locator('[data-station="DEMO-001"]').first
    row.wait_for()
    page.wait_for_function(
        "document.querySelector('[data-total=\"connected\"]').textContent.trim() === '4'")
    box = evse(page, "DEMO-001")
    primary = box.locator("[data-primary]")
    assert primary.inner_text() == "Start"
    primary.click()
    box.locator("[data-outcome]").filter(has_text="Accepted").wait_for()
    page.wait_for_function(f"{charging_state(page, 'DEMO-001')}.includes('Charging')")
    started = sandbox_messages(page, demo, "DEMO-001", "TransactionEvent")
    assert started and started[0]["payload"]["eventType"] == "Started"

    energy = box.locator('[data-field="energy"]').first
    first = number(energy.inner_text())
    page.wait_for_function(
        f"(() => {{ const e = document.querySelector('[data-station=\"DEMO-001\"] "
        f"[data-evse=\"1\"] [data-field=\"energy\"]'); "
        f"return e && parseFloat(e.textContent.replace(/[^0-9.]/g, '')) > {first}; }})()",
        timeout=20000)

    # One action at a time: a running transaction offers Stop.
    page.wait_for_function(
        "document.querySelector('[data-station=\"DEMO-001\"] [data-evse=\"1\"] "
        "[data-primary]').textContent === 'Stop'")
    primary.click()
    box.locator("[data-outcome]").filter(has_text="Accepted").first.wait_for()
    page.wait_for_function(f"!{charging_state(page, 'DEMO-001')}.includes('Charging')")
    events = sandbox_messages(page, demo, "DEMO-001", "TransactionEvent")
    assert events[-1]["payload"]["eventType"] == "Ended"
    box.locator("[data-menu] > summary").click()
    box.locator('[data-menu] button[data-command="unplug"]').click()
    page.wait_for_function(
        "document.querySelector('[data-station=\"DEMO-001\"] [data-evse=\"1\"] "
        "[data-field=\"status\"]').textContent === 'Available'")


def test_each_evse_offers_one_action_and_the_rest_on_demand(page, demo):
    page.locator('[data-station="DEMO-001"] [data-evse="2"]').wait_for()
    rows = page.locator("tr[data-station]")
    assert rows.count() == 4
    for n in range(rows.count()):
        for line in rows.nth(n).locator("[data-evse]").all():
            visible = [b for b in line.locator("button").all() if b.is_visible()]
            assert len(visible) == 1, "one primary action per EVSE; the rest in its menu"
        # Two EVSEs take two lines, not a wall of buttons (it was ~145 px a station).
        height = rows.nth(n).bounding_box()["height"]
        evses = rows.nth(n).locator("[data-evse]").count()
        assert height <= 24 + 36 * evses, f"row {n} is {height} px for {evses} EVSEs"

    box = evse(page, "DEMO-002", 2)
    box.locator("[data-menu] > summary").click()
    actions = {b.get_attribute("data-command")
               for b in box.locator("[data-menu] button").all() if b.is_visible()}
    assert {"present_id_token", "plug_in", "start_charging", "stop_charging", "unplug",
            "set_fault", "clear_fault", "remote_start", "remote_stop"} <= actions
    page.keyboard.press("Escape")
    assert not box.locator("[data-input=id_token]").is_visible()
    assert "shard" not in rows.first.inner_text().lower(), "no engine jargon in the table"


def test_every_tile_says_what_it_counts_and_occupied_agrees_with_the_table(page, demo):
    page.locator('[data-station="DEMO-002"]').first.wait_for()
    for tile in page.locator(".total").all():
        assert len(tile.get_attribute("title") or "") > 20, tile.inner_text()
    box = evse(page, "DEMO-002", 2)
    box.locator("[data-menu] > summary").click()
    box.locator('[data-menu] button[data-command="plug_in"]').click()
    box.locator("[data-outcome]").filter(has_text="Accepted").wait_for()
    shown = ("[...document.querySelectorAll('tr[data-station] [data-field=\"status\"]')]"
             ".filter(e => e.textContent === 'Occupied').length")
    tile = "Number(document.querySelector('[data-total=\"occupied\"]').textContent)"
    page.wait_for_function(f"{shown} >= 1 && {shown} === {tile}")

    box.locator('[data-menu] button[data-command="unplug"]').click()
    page.wait_for_function(f"{shown} === {tile}")


def test_a_reloaded_fleet_page_keeps_its_chart_history(page, demo):
    wait_for_points(page, "[data-chart=fleet]", 5)
    before = chart_times(page, "[data-chart=fleet]")
    page.reload()
    page.wait_for_function("window.websocketConnected === true")
    wait_for_points(page, "[data-chart=fleet]", len(before) + 1)
    after = chart_times(page, "[data-chart=fleet]")
    assert set(before) <= set(after), "the points it had before the reload"


def open_station(page, demo, station_id):
    page.goto(f"{demo.url}/stations/{station_id}/")
    page.wait_for_function("window.websocketConnected === true")
    page.locator("[data-evse-cards] [data-evse]").first.wait_for()


def frame_keys(page):
    return page.evaluate(
        "[...document.querySelectorAll('[data-frame]')].map(r => "
        "[r.dataset.direction, r.dataset.type, r.dataset.uniqueId].join(' '))")


def assert_each_frame_once(page):
    keys = frame_keys(page)
    assert keys, "the log shows frames"
    doubled = sorted({k for k in keys if keys.count(k) > 1})
    assert not doubled, f"frames shown twice: {doubled}"


def test_a_new_transaction_appears_in_the_recent_list_live_with_its_kwh_rising(page, demo):
    open_station(page, demo, "DEMO-003")
    card = page.locator('[data-evse-cards] [data-evse="1"]')
    card.locator('button[data-command="start_charging"]').click()
    card.locator("[data-outcome]").filter(has_text="Accepted").wait_for()
    row = page.locator("[data-transactions] tr[data-transaction]").first
    row.filter(has_text="running").wait_for(timeout=3000)
    tx_id = row.get_attribute("data-transaction")
    assert tx_id == card.locator("[data-field=transaction_id]").inner_text()
    kwh = f"document.querySelector('tr[data-transaction=\"{tx_id}\"] [data-field=energy]')"
    first = page.evaluate(f"Number({kwh}.textContent)")
    page.wait_for_function(f"Number({kwh}.textContent) > {first}", timeout=10000)

    card.locator('button[data-command="stop_charging"]').click()
    page.locator(f'tr[data-transaction="{tx_id}"]').filter(has_text="Local").wait_for(
        timeout=3000)
    card.locator('button[data-command="unplug"]').click()


def test_a_reloaded_station_page_keeps_the_transaction_chart(page, demo):
    open_station(page, demo, "DEMO-003")
    card = page.locator('[data-evse-cards] [data-evse="2"]')
    card.locator('button[data-command="start_charging"]').click()
    card.locator("[data-outcome]").filter(has_text="Accepted").wait_for()
    chart = '[data-chart="evse-2"]'
    wait_for_points(page, chart, 3)
    before = chart_times(page, chart)
    page.reload()
    page.wait_for_function("window.websocketConnected === true")
    wait_for_points(page, chart, len(before))
    after = chart_times(page, chart)
    assert set(before) <= set(after), "the points it had before the reload"
    labels = page.locator(f"{chart} .u-axis").first.inner_text().split()
    assert len(labels) == len(set(labels)), f"time labels repeat: {labels}"
    card = page.locator('[data-evse-cards] [data-evse="2"]')
    card.locator('button[data-command="stop_charging"]').click()
    card.locator("[data-outcome]").filter(has_text="Accepted").wait_for()
    card.locator('button[data-command="unplug"]').click()


def test_the_message_log_shows_each_frame_once_through_a_transaction_and_a_reload(page, demo):
    open_station(page, demo, "DEMO-DC1")
    card = page.locator('[data-evse-cards] [data-evse="1"]')
    card.locator('button[data-command="start_charging"]').click()
    card.locator("[data-outcome]").filter(has_text="Accepted").wait_for()
    page.locator('[data-frame][data-action="TransactionEvent"]').first.wait_for()
    page.wait_for_timeout(2500)  # the recent list and the log were reloaded meanwhile
    assert_each_frame_once(page)
    card.locator('button[data-command="stop_charging"]').click()
    card.locator("[data-outcome]").filter(has_text="Accepted").wait_for()
    page.wait_for_function(
        "[...document.querySelectorAll('[data-frame][data-action=\"TransactionEvent\"]')]"
        ".some(r => r.textContent.includes('Ended'))")
    page.wait_for_timeout(2500)
    assert_each_frame_once(page)
    card.locator('button[data-command="unplug"]').click()

    page.reload()
    page.wait_for_function("window.websocketConnected === true")
    page.locator('[data-frame][data-action="TransactionEvent"]').first.wait_for()
    page.wait_for_timeout(1500)
    assert_each_frame_once(page)


def test_a_rejected_token_and_an_offline_station_show_their_outcome(page, demo):
    box = evse(page, "DEMO-002")
    box.wait_for()
    use_token(box, "0BADC0DE")
    box.locator('[data-menu] button[data-command="start_charging"]').click()
    box.locator("[data-outcome]").filter(has_text=re.compile("Invalid|Rejected")).wait_for()
    page.keyboard.press("Escape")
    box.locator("[data-menu] > summary").click()
    box.locator('[data-menu] button[data-command="unplug"]').click()

    station = page.locator('[data-station="DEMO-003"]').first
    station.locator("[data-station-menu] > summary").click()
    station.locator('button[data-command="disconnect"]').click()
    page.wait_for_function(
        "document.querySelector('[data-total=\"offline\"]').textContent.trim() === '1'")
    box = evse(page, "DEMO-003")
    box.locator("[data-primary]").click()
    box.locator("[data-outcome]").filter(has_text="Offline").wait_for()
    station.locator("[data-station-menu] > summary").click()
    station.locator('button[data-command="connect"]').click()
    page.wait_for_function(
        "document.querySelector('[data-total=\"offline\"]').textContent.trim() === '0'")


def test_the_token_type_is_picked_beside_the_value_and_a_wrong_format_is_marked(page, demo):
    box = evse(page, "DEMO-002", 2)
    box.wait_for()
    box.locator("[data-menu] > summary").click()
    picker, value = box.locator("[data-input=token_type]"), box.locator("[data-input=id_token]")
    assert picker.input_value() == "ISO14443", "RFID cards unless another type is picked"
    value.fill("TOKEN-001")
    present = box.locator('[data-menu] button[data-command="present_id_token"]')
    present.click()
    box.locator("[data-outcome]").filter(has_text="ISO14443 idTokens are 4- or 7-byte").wait_for()
    assert value.get_attribute("aria-invalid") == "true"
    asked = [m["payload"]["idToken"] for m in sandbox_messages(page, demo, "DEMO-002", "Authorize")]
    assert all(t["idToken"] != "TOKEN-001" for t in asked), "a bad value reaches no CSMS"

    picker.select_option("Central")
    present.click()
    box.locator("[data-outcome]").filter(has_text="Accepted").wait_for()
    assert value.get_attribute("aria-invalid") is None
    asked = [m["payload"]["idToken"] for m in sandbox_messages(page, demo, "DEMO-002", "Authorize")]
    assert {"idToken": "TOKEN-001", "type": "Central"} in asked
    present.click()  # the same card again ends the authorization
    box.locator("[data-outcome]").filter(has_text="Stopped").wait_for()


def test_the_favicon_is_served_from_static(page, demo):
    response = page.request.get(f"{demo.url}/favicon.ico")
    assert response.status == 200
    assert response.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert response.body()[:4] == b"\x00\x00\x01\x00", "an ICO file"
    icon = page.locator("link[rel=icon]").first.get_attribute("href")
    assert page.request.get(demo.url + icon).status == 200


CHARTS_FIT = """(() => [...document.querySelectorAll('[data-chart]')].map(c => {
  const box = c.getBoundingClientRect();
  const parts = [...c.querySelectorAll('canvas, .u-axis')].map(p => p.getBoundingClientRect())
    .filter(r => r.width > 0);
  return [c.dataset.chart, Math.round(box.left), Math.round(box.right),
          Math.round(Math.min(...parts.map(r => r.left))),
          Math.round(Math.max(...parts.map(r => r.right)))];
}))()"""


def assert_fits(page, width):
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page scrolls sideways at {width} px ({scroll} px wide)"
    charts = page.evaluate(CHARTS_FIT)
    assert charts
    for name, left, right, first, last in charts:
        assert left <= first and last <= right <= width, f"chart {name} is cut off: {charts}"


def test_pages_and_their_charts_fit_a_390_px_phone(browser, demo):
    for start in (390, 1366):  # opened on a phone, and a window narrowed to one
        context = browser.new_context(viewport={"width": start, "height": 844})
        page = context.new_page()
        login(page, demo)
        page.locator('[data-station="DEMO-001"]').first.wait_for()
        page.locator("[data-chart=fleet] canvas").wait_for()
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(500)
        assert_fits(page, 390)
        primary = evse(page, "DEMO-001").locator("[data-primary]")
        primary.scroll_into_view_if_needed()
        assert primary.is_visible()

        page.set_viewport_size({"width": start, "height": 844})
        open_station(page, demo, "DEMO-001")
        page.locator('[data-chart="evse-1"] canvas').wait_for()
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(500)
        assert_fits(page, 390)
        context.close()


def test_the_authorization_panel_presents_a_card_and_shows_the_station_s_list(page, demo):
    open_station(page, demo, "DEMO-002")
    auth = page.locator("[data-authorization]")
    auth.locator("[data-auth-list-summary]").filter(has_text="version 0").wait_for()
    auth.locator('button[data-auth-csms="send-local-list"]').click()
    auth.locator("[data-auth-list-summary]").filter(has_text="version 1 · 4 of 1000").wait_for()
    auth.locator('button[data-auth-csms="enable-cache"]').click()
    auth.locator("[data-auth-outcome]").filter(has_text="Accepted").wait_for()
    auth.locator("[data-auth-input=evse_id]").select_option("2")
    auth.locator("[data-auth-input=id_token]").fill("04A1B2C3")
    auth.locator('button[data-auth-command="present_id_token"]').click()
    auth.locator('[data-auth-cache] tr[data-id-token="04A1B2C3"]').wait_for()
    card = page.locator('[data-evse-cards] [data-evse="2"]')
    card.locator("[data-field=id_token]").filter(has_text="04A1B2C3").wait_for()
    auth.locator('button[data-auth-command="present_id_token"]').click()
    auth.locator("[data-auth-outcome]").filter(has_text="Stopped").wait_for()
