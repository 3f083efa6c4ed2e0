"""A load-test report as JSON, CSV, text for the terminal, one self-contained HTML file,
and JUnit XML for CI systems; and two reports side by side."""

from __future__ import annotations

import csv
import html
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from django.conf import settings

PERCENTILES = ("p50", "p90", "p95", "p99", "max", "mean")
UPLOT = Path(settings.BASE_DIR) / "static" / "vendor" / "uplot"


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True, default=str)


def action_rows(report: dict) -> list[dict]:
    rows = []
    for action, row in sorted(report["summary"]["actions"].items()):
        latency = row["latency_ms"]
        rows.append({
            "action": action, "requests": row["requests"], "responses": row["responses"],
            "errors": sum(row["errors"].values()),
            "error_codes": " ".join(f"{c}={n}" for c, n in sorted(row["errors"].items())),
            "timeouts": row["timeouts"],
            # Sent, but the run ended before an answer came.
            "unanswered": row["requests"] - row["responses"] - sum(row["errors"].values())
            - row["timeouts"],
            **{f"{p}_ms": latency[p] for p in PERCENTILES},
        })
    return rows


def to_csv(report: dict) -> str:
    """The per-action table; after a blank line, the verdict's table."""
    out = io.StringIO()
    fields = ["action", "requests", "responses", "errors", "error_codes", "timeouts",
              "unanswered",
              *(f"{p}_ms" for p in PERCENTILES)]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    writer.writerows(action_rows(report))
    out.write("\r\n")
    checks = csv.DictWriter(out, fieldnames=["threshold", "limit", "measured", "passed",
                                             "detail"])
    checks.writeheader()
    for check in verdict_of(report)["checks"]:
        checks.writerow({"threshold": check["name"], "limit": check["limit"],
                         "measured": "" if check["measured"] is None else check["measured"],
                         "passed": "yes" if check["passed"] else "no",
                         "detail": check["detail"]})
    return out.getvalue()


def counts(values: dict | None) -> str:
    """{'Accepted': 200, 'Pending': 3} as "Accepted 200, Pending 3"; {} as "none"."""
    if not values:
        return "none"
    return ", ".join(f"{key} {n}" for key, n in sorted(values.items(),
                                                       key=lambda kv: (-kv[1], kv[0])))


def seconds(value) -> str:
    return "—" if value is None else f"{value:.1f} s"


END_REASONS = {"duration": "its duration was over", "stopped": "stopped before its end",
               "error": "it failed"}


def ran(report: dict) -> str:
    """What really ran, phase by phase, and why it ended."""
    run = report["run"]
    t = run.get("timings") or {}
    if not t:
        return f"{run['duration_s']:g} s planned (ramp included)"
    text = (f"{t['ramp_s'] + t['scenario_s']:.1f} s of {run['duration_s']:g} s "
            f"(ramp {seconds(t['ramp_s'])}, then scenario {seconds(t['scenario_s'])}), "
            f"then drain {seconds(t['drain_s'])} (at most {t['drain_limit_s']:g} s)")
    if t.get("stations_started", t.get("stations")) != t.get("stations"):
        text += f"; {t['stations_started']} of {t['stations']} stations started"
    if t.get("unanswered"):
        text += f"; {t['unanswered']} stations' calls were unanswered when the drain ended"
    if t.get("queued"):
        text += f"; {t['queued']} transaction messages were still queued, never sent"
    reason = END_REASONS.get(t.get("end_reason"), t.get("end_reason") or "unknown")
    return f"{text}; ended because {reason}"


def verdict_of(report: dict) -> dict:
    # Reports stored before verdicts existed have none: no thresholds, nothing failed.
    return report.get("verdict") or {"passed": True, "checks": []}


def figure(value) -> str:
    """A limit or measured value as people write it: 500, 0.01, 8.72; "—" for none."""
    return "—" if value is None else f"{value:.4g}"


def verdict_line(report: dict) -> str:
    checks = verdict_of(report)["checks"]
    if not checks:
        return "no thresholds"
    failed = [c for c in checks if not c["passed"]]
    if not failed:
        return f"passed: all {len(checks)} thresholds met"
    return f"failed: {len(failed)} of {len(checks)} thresholds not met"


def headline(report: dict) -> list[tuple[str, str]]:
    run, summary = report["run"], report["summary"]
    connections, tx = summary["connections"], summary["transactions"]
    failed = dict(connections.get("failed", {}))
    refusals = counts(connections.get("http_status"))
    return [
        ("CSMS", run["csms_url"]), ("stations", str(run["stations"])),
        ("scenario", f"{run['scenario']} (seed {run['seed']})"),
        ("status", run["status"]), ("ran", ran(report)), ("version", run["version"]),
        ("connections", f"{connections.get('attempts', 0)} attempts, "
                        f"{connections.get('succeeded', 0)} succeeded, "
                        f"failed: {counts(failed)}"
                        + (f" (HTTP statuses: {refusals})" if failed.get("http_status")
                           else "")),
        ("BootNotification", counts(summary["boot"])),
        ("transactions", f"{tx['started']} started, {tx['completed']} completed, "
                         f"{tx['rejected']} rejected"),
        ("messages", f"{summary['messages']['in']} in, {summary['messages']['out']} out"),
        ("verdict", verdict_line(report)),
    ]


def to_text(report: dict) -> str:
    lines = [f"{label:18} {value}" for label, value in headline(report)]
    for check in verdict_of(report)["checks"]:
        lines.append(f"{'':18} {'PASS' if check['passed'] else 'FAIL'}  {check['name']}: "
                     f"{check['detail']}")
    lines.append("")
    lines.append(f"{'action':28} {'req':>7} {'resp':>7} {'err':>5} {'t/o':>5} "
                 f"{'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  (ms)")
    for row in action_rows(report):
        lines.append(
            f"{row['action']:28} {row['requests']:>7} {row['responses']:>7} "
            f"{row['errors']:>5} {row['timeouts']:>5} "
            + " ".join(f"{_ms(row[f'{p}_ms']):>8}" for p in ("p50", "p95", "p99", "max")))
    return "\n".join(lines) + "\n"


def _ms(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def to_junit(report: dict) -> str:
    """JUnit XML: one testcase for the run itself, one per threshold; a failed threshold is
    a failure carrying its limit and measured value, a run that failed an error."""
    run = report["run"]
    checks = verdict_of(report)["checks"]
    timings = run.get("timings") or {}
    name = f"loadtest run {run['id']}: {run['scenario']}"
    classname = f"loadtest.{run['scenario']}"
    suite = ET.Element("testsuite", name=name, tests=str(len(checks) + 1),
                       time=f"{timings.get('elapsed_s', 0):.3f}")
    properties = ET.SubElement(suite, "properties")
    for key in ("csms_url", "stations", "duration_s", "seed", "version"):
        ET.SubElement(properties, "property", name=key, value=str(run.get(key)))
    case = ET.SubElement(suite, "testcase", classname=classname, name="run")
    failures = errors = 0
    if run["status"] == "failed":
        errors += 1
        ET.SubElement(case, "error", message=f"the run failed: {run.get('error') or ''}",
                      type="run").text = ran(report)
    elif run["status"] != "completed":
        failures += 1
        ET.SubElement(case, "failure", message=f"the run {run['status']} before its end",
                      type="run").text = ran(report)
    else:
        ET.SubElement(case, "system-out").text = ran(report)
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname=f"{classname}.thresholds",
                             name=check["name"])
        if not check["passed"]:
            failures += 1
            measured = "none" if check["measured"] is None else f"{check['measured']:g}"
            ET.SubElement(case, "failure", message=check["detail"], type="threshold").text = (
                f"limit={check['limit']:g} measured={measured}")
        else:
            ET.SubElement(case, "system-out").text = check["detail"]
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suites = ET.Element("testsuites", name="loadtest", tests=suite.get("tests"),
                        failures=str(failures), errors=str(errors))
    suites.append(suite)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def to_html(report: dict) -> str:
    """One file, no network: uPlot and the data are inlined."""
    script = (UPLOT / "uPlot.iife.min.js").read_text()
    style = (UPLOT / "uPlot.min.css").read_text()
    facts = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                    for k, v in headline(report))
    header = "".join(f"<th>{html.escape(h)}</th>" for h in (
        "action", "requests", "responses", "errors", "timeouts", "p50", "p95", "p99", "max"))
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            row["action"], row["requests"], row["responses"],
            f"{row['errors']} {row['error_codes']}".strip(), row["timeouts"],
            *(_ms(row[f"{p}_ms"]) for p in ("p50", "p95", "p99", "max")))) + "</tr>"
        for row in action_rows(report))
    checks = "".join(
        f"<tr class=\"{'pass' if c['passed'] else 'fail'}\"><td>"
        f"{'PASS' if c['passed'] else 'FAIL'}</td>"
        + "".join(f"<td>{html.escape(v)}</td>" for v in (
            c["name"], f"{c['limit']:g}",
            "—" if c["measured"] is None else f"{c['measured']:g}", c["detail"]))
        + "</tr>" for c in verdict_of(report)["checks"])
    verdict_html = (f"<h2>Verdict: {html.escape(verdict_line(report))}</h2>"
                    + (f"<table><thead><tr><th></th><th>threshold</th><th>limit</th>"
                       f"<th>measured</th><th>detail</th></tr></thead><tbody>{checks}"
                       "</tbody></table>" if checks else ""))
    data = json.dumps({"timeline": report["summary"]["timeline"],
                       "latency": report["summary"]["latency_timeline"]})
    title = f"Load test {report['run']['id']}: {report['run']['scenario']}"
    return _PAGE.format(title=html.escape(title), style=style, script=script, facts=facts,
                        verdict=verdict_html, header=header, body=body,
                        data=data.replace("</", "<\\/"))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{style}
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ padding: .25rem .6rem; border-bottom: 1px solid #ddd; text-align: left; }}
td {{ font-variant-numeric: tabular-nums; }}
tr.fail td:first-child {{ color: #b42318; font-weight: 600; }}
tr.pass td:first-child {{ color: #1e7a43; font-weight: 600; }}
</style></head><body>
<h1>{title}</h1>
<table>{facts}</table>
{verdict}
<h2>Per action (latency in ms)</h2>
<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>
<h2>Over time</h2><div id="rate"></div><div id="latency"></div>
<script>{script}</script>
<script>
const data = {data};
const t = data.timeline.map(r => r.t);
new uPlot({{title: "Messages per second and connected stations", width: 900, height: 260,
  series: [{{}}, {{label: "in/s", stroke: "#2563eb"}}, {{label: "out/s", stroke: "#16a34a"}},
           {{label: "connected", stroke: "#9333ea", scale: "n"}},
           {{label: "errors", stroke: "#dc2626"}}],
  axes: [{{}}, {{}}, {{scale: "n", side: 1}}]}},
  [t, data.timeline.map(r => r.msgs_in), data.timeline.map(r => r.msgs_out),
   data.timeline.map(r => r.connected), data.timeline.map(r => r.errors)],
  document.getElementById("rate"));
const lt = data.latency.map(r => r.t);
new uPlot({{title: "Latency (ms)", width: 900, height: 260,
  series: [{{}}, {{label: "p50", stroke: "#16a34a"}}, {{label: "p95", stroke: "#f59e0b"}},
           {{label: "p99", stroke: "#dc2626"}}]}},
  [lt, data.latency.map(r => r.p50), data.latency.map(r => r.p95),
   data.latency.map(r => r.p99)], document.getElementById("latency"));
</script></body></html>
"""


COMPARED = (("requests", "Requests", False), ("errors", "Errors", False),
            ("timeouts", "Timeouts", False), ("p95_ms", "p95 ms", True),
            ("p99_ms", "p99 ms", True))


def _number(value) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _delta(a, b, relative: bool) -> str:
    """B against A: "+12", "−3.5 (−20%)", "0"; "—" when either is missing."""
    if a is None or b is None:
        return "—"
    change = b - a
    if change == 0:
        return "0"
    sign = "+" if change > 0 else "−"
    text = f"{sign}{_number(abs(change))}"
    if relative and a:
        text += f" ({sign}{abs(change) / a:.0%})"
    return text


def compare(a: dict, b: dict) -> list[dict]:
    """Per action, side by side: A, B and what changed from A to B, ready to show."""
    rows_a = {r["action"]: r for r in action_rows(a)}
    rows_b = {r["action"]: r for r in action_rows(b)}
    out = []
    for action in sorted(set(rows_a) | set(rows_b)):
        ra, rb = rows_a.get(action, {}), rows_b.get(action, {})
        out.append({"action": action, "cells": [
            {"key": key, "a": _number(ra.get(key)), "b": _number(rb.get(key)),
             "delta": _delta(ra.get(key), rb.get(key), relative)}
            for key, _label, relative in COMPARED]})
    return out
