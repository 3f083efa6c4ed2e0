"""A person at the load-test pages: start a run from the form, watch it live, read its report."""

import re

# Coloured pixels on a chart's canvas: its series (axes, grid and labels are grey or black).
COLOURED_PIXELS = """(selector) => {
  const canvas = document.querySelector(selector + " canvas");
  if (!canvas) return 0;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 80) count++;
  }
  return count;
}"""


def points(page, chart):
    return page.evaluate(f"window.runCharts.{chart}.data[0].length")


def progress_seconds(page) -> float:
    text = page.locator("[data-progress-text]").inner_text()
    return float(re.match(r"(\d+) of", text).group(1)) if re.match(r"\d+ of", text) else -1


def test_a_run_started_from_the_form_shows_live_progress_and_charts_then_its_report(page, demo):
    page.goto(f"{demo.url}/runs/")
    page.fill("input[name=csms_url]", f"ws://127.0.0.1:{demo.csms_port}")
    page.fill("input[name=stations]", "0")
    page.fill("input[name=ramp]", "5")
    page.fill("input[name=duration]", "14")
    page.select_option("select[name=scenario]", "steady.toml")
    page.click("[data-run-form] button[type=submit]")
    # A bad value comes back marked, with what was typed kept.
    page.locator('[data-field-error="stations"]').wait_for()
    assert page.input_value("input[name=duration]") == "14"
    assert page.input_value("select[name=scenario]") == "steady.toml"
    page.fill("input[name=stations]", "5")
    page.fill("input[name=response_timeout]", "5")
    page.click("[data-run-form] button[type=submit]")
    page.wait_for_url(re.compile(r".*/runs/\d+/$"))
    run_url = page.url

    # Live: the progress line and the numbers move, the charts fill.
    page.locator("[data-live-line]").filter(has_text="of 5 stations connected").wait_for()
    page.wait_for_function(
        "document.querySelector('[data-live-line]').textContent.startsWith('5 of 5')",
        timeout=15000)
    first = progress_seconds(page)
    page.wait_for_function(
        f"parseInt(document.querySelector('[data-progress-text]').textContent) > {first}")
    assert progress_seconds(page) > first
    page.wait_for_function("window.runCharts.rate.data[0].length >= 3")
    assert page.evaluate(COLOURED_PIXELS, "#rate-chart") > 50, "lines drawn on the chart"
    assert page.locator("#latency-chart canvas").count() == 1

    # A reload in the middle keeps the history: it comes from the server.
    seen = points(page, "rate")
    page.reload()
    page.wait_for_function(f"window.runCharts.rate.data[0].length >= {seen}", timeout=5000)

    # At the end the page reloads itself and shows the report, charts drawn from it.
    page.locator("[data-report-actions]").wait_for(timeout=40000)
    assert page.locator("[data-run-status]").inner_text() == "completed"
    assert page.locator("[data-progress]").count() == 0
    page.wait_for_function("window.runCharts.rate.data[0].length >= 10")
    assert page.evaluate(COLOURED_PIXELS, "#rate-chart") > 50
    assert page.evaluate(COLOURED_PIXELS, "#latency-chart") > 0
    assert page.locator("[data-verdict-line]").inner_text() == "no thresholds"
    assert page.locator('[data-report-actions] [data-action="BootNotification"]').count() == 1
    facts = page.locator(".facts-table").inner_text()
    assert "Accepted 5" in facts and "{" not in facts

    # A finished run's page, opened afresh, draws its charts too.
    page.goto(run_url)
    page.wait_for_function("window.runCharts.rate.data[0].length >= 10")
    assert page.evaluate(COLOURED_PIXELS, "#rate-chart") > 50
    page.goto(f"{demo.url}/runs/")
    assert page.locator("[data-run] [data-result]").first.inner_text() == "completed"
