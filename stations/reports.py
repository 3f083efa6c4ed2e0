"""A load-test report as JSON, CSV, text for the terminal, and one self-contained HTML file."""

from __future__ import annotations

import csv
import html
import io
import json
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
    out = io.StringIO()
    fields = ["action", "requests", "responses", "errors", "error_codes", "timeouts",
              "unanswered",
              *(f"{p}_ms" for p in PERCENTILES)]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    writer.writerows(action_rows(report))
    return out.getvalue()


def headline(report: dict) -> list[tuple[str, str]]:
    run, summary = report["run"], report["summary"]
    connections, tx = summary["connections"], summary["transactions"]
    return [
        ("CSMS", run["csms_url"]), ("stations", str(run["stations"])),
        ("scenario", f"{run['scenario']} (seed {run['seed']})"),
        ("status", run["status"]), ("version", run["version"]),
        ("connections", f"{connections.get('attempts', 0)} attempts, "
                        f"{connections.get('succeeded', 0)} succeeded, "
                        f"failed {connections.get('failed', {})}, "
                        f"HTTP {connections.get('http_status', {})}"),
        ("BootNotification", str(summary["boot"])),
        ("transactions", f"{tx['started']} started, {tx['completed']} completed, "
                         f"{tx['rejected']} rejected"),
        ("messages", f"{summary['messages']['in']} in, {summary['messages']['out']} out"),
    ]


def to_text(report: dict) -> str:
    lines = [f"{label:18} {value}" for label, value in headline(report)]
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
    data = json.dumps({"timeline": report["summary"]["timeline"],
                       "latency": report["summary"]["latency_timeline"]})
    title = f"Load test {report['run']['id']}: {report['run']['scenario']}"
    return _PAGE.format(title=html.escape(title), style=style, script=script, facts=facts,
                        header=header, body=body, data=data.replace("</", "<\\/"))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{style}
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ padding: .25rem .6rem; border-bottom: 1px solid #ddd; text-align: left; }}
td {{ font-variant-numeric: tabular-nums; }}
</style></head><body>
<h1>{title}</h1>
<table>{facts}</table>
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


def compare(a: dict, b: dict) -> list[dict]:
    """Per action, side by side: what changed between two runs."""
    rows_a = {r["action"]: r for r in action_rows(a)}
    rows_b = {r["action"]: r for r in action_rows(b)}
    out = []
    for action in sorted(set(rows_a) | set(rows_b)):
        ra, rb = rows_a.get(action, {}), rows_b.get(action, {})
        out.append({"action": action,
                    **{f"{k}_a": ra.get(k) for k in ("requests", "errors", "timeouts",
                                                       "p95_ms", "p99_ms")},
                    **{f"{k}_b": rb.get(k) for k in ("requests", "errors", "timeouts",
                                                       "p95_ms", "p99_ms")}})
    return out
