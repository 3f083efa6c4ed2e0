// A load-test run: live figures while it runs (polled), charts of the report once done.
const main = document.querySelector("main[data-run-id]");
const runId = main.dataset.runId;
const line = document.querySelector("[data-live-line]");
const statusBadge = document.querySelector("[data-run-status]");
const series = { t: [], in: [], out: [], connected: [], p50: [], p95: [], p99: [] };
let rateChart = null;
let latencyChart = null;

function charts() {
  const width = Math.min(900, document.querySelector("#rate-chart").clientWidth || 900);
  rateChart = new uPlot({ title: "Messages per second and connected stations", width, height: 240,
    series: [{}, { label: "in/s", stroke: "#2563eb" }, { label: "out/s", stroke: "#16a34a" },
             { label: "connected", stroke: "#9333ea", scale: "n" }],
    axes: [{}, {}, { scale: "n", side: 1 }] },
    [[], [], [], []], document.querySelector("#rate-chart"));
  latencyChart = new uPlot({ title: "Latency (ms)", width, height: 240,
    series: [{}, { label: "p50", stroke: "#16a34a" }, { label: "p95", stroke: "#f59e0b" },
             { label: "p99", stroke: "#dc2626" }] },
    [[], [], [], []], document.querySelector("#latency-chart"));
}

function draw() {
  rateChart.setData([series.t, series.in, series.out, series.connected]);
  latencyChart.setData([series.t, series.p50, series.p95, series.p99]);
}

function fromReport(summary) {
  for (const row of summary.timeline) {
    series.t.push(row.t); series.in.push(row.msgs_in); series.out.push(row.msgs_out);
    series.connected.push(row.connected);
  }
  const latency = { t: [], p50: [], p95: [], p99: [] };
  for (const row of summary.latency_timeline) {
    latency.t.push(row.t); latency.p50.push(row.p50); latency.p95.push(row.p95);
    latency.p99.push(row.p99);
  }
  rateChart.setData([series.t, series.in, series.out, series.connected]);
  latencyChart.setData([latency.t, latency.p50, latency.p95, latency.p99]);
}

async function poll() {
  const response = await fetch(`/runs/${runId}/live.json`, { credentials: "same-origin" });
  const data = await response.json();
  if (!data.running) {
    // The report is written: reload once to show it.
    if (main.dataset.active === "true") location.reload();
    return;
  }
  const live = data.live;
  const now = Date.now() / 1000;
  series.t.push(now); series.in.push(live.msgs_in_per_s); series.out.push(live.msgs_out_per_s);
  series.connected.push(live.connected);
  series.p50.push(live.latency_ms.p50); series.p95.push(live.latency_ms.p95);
  series.p99.push(live.latency_ms.p99);
  line.textContent = `${live.connected} connected · ${live.msgs_in_per_s.toFixed(0)} in/s · ` +
    `${live.msgs_out_per_s.toFixed(0)} out/s · errors ${live.errors} · timeouts ${live.timeouts}`;
  statusBadge.textContent = data.status;
  draw();
  setTimeout(poll, 1000);
}

charts();
const report = JSON.parse(document.getElementById("report-data").textContent);
if (report) fromReport(report);
if (main.dataset.active === "true") poll();
