// A load-test run: live progress and charts while it runs (polled once a second, from the
// server's own timeline, so a reload keeps the history), the report's charts once done.
const main = document.querySelector("main[data-run-id]");
const runId = main.dataset.runId;
const active = main.dataset.active === "true";
const line = document.querySelector("[data-live-line]");
const progressBar = document.querySelector("[data-progress-bar]");
const progressText = document.querySelector("[data-progress-text]");
const statusBadge = document.querySelector("[data-run-status]");
const POLL_MS = 1000;
const PHASES = { pending: "starting", ramp: "ramp-up", scenario: "scenario",
                 drain: "draining", done: "done" };

// Seconds and latency windows by their start time: a poll replaces the last ones, which
// were still filling when they were last sent.
const seconds = new Map();
const windows = new Map();
let newest = null;

function chartWidth() {
  const box = document.querySelector(".run-charts");
  return Math.max(280, Math.min(900, (box && box.clientWidth) || 900));
}

function makeCharts() {
  const width = chartWidth();
  const rate = new uPlot({ title: "Messages per second and connected stations", width, height: 240,
    series: [{}, { label: "in/s", stroke: "#2563eb", width: 2 },
             { label: "out/s", stroke: "#16a34a", width: 2 },
             { label: "connected", stroke: "#9333ea", width: 2, scale: "n" }],
    axes: [{}, {}, { scale: "n", side: 1, grid: { show: false } }] },
    [[], [], [], []], document.querySelector("#rate-chart"));
  const latency = new uPlot({ title: "Latency (ms)", width, height: 240,
    series: [{}, { label: "p50", stroke: "#16a34a", width: 2 },
             { label: "p95", stroke: "#f59e0b", width: 2 },
             { label: "p99", stroke: "#dc2626", width: 2 }] },
    [[], [], [], []], document.querySelector("#latency-chart"));
  return { rate, latency };
}

const charts = makeCharts();
// For whoever looks at the page from a script (and the browser tests).
window.runCharts = charts;
window.addEventListener("resize", () => {
  const width = chartWidth();
  for (const chart of Object.values(charts)) chart.setSize({ width, height: 240 });
});

function add(timeline, latencyTimeline) {
  for (const row of timeline) seconds.set(row.t, row);
  for (const row of latencyTimeline) windows.set(row.t, row);
  if (timeline.length) newest = timeline[timeline.length - 1].t;
}

function draw() {
  const rows = [...seconds.values()].sort((a, b) => a.t - b.t);
  charts.rate.setData([rows.map(r => r.t), rows.map(r => r.msgs_in), rows.map(r => r.msgs_out),
                       rows.map(r => r.connected)]);
  const lat = [...windows.values()].sort((a, b) => a.t - b.t);
  charts.latency.setData([lat.map(r => r.t), lat.map(r => r.p50), lat.map(r => r.p95),
                          lat.map(r => r.p99)]);
  document.querySelector("[data-no-chart]").hidden = rows.length > 0 || active;
}

function showProgress(progress, live) {
  if (!progress || !progressBar) return;
  const ran = Math.min(progress.ramp_s + progress.scenario_s, progress.duration_s);
  progressBar.value = ran;
  let text = `${ran.toFixed(0)} of ${progress.duration_s} s · ${PHASES[progress.phase] || progress.phase}`;
  if (progress.phase === "drain") text += ` (up to ${progress.drain_limit_s} s)`;
  progressText.textContent = text;
  line.textContent = `${live.connected} of ${progress.stations} stations connected · ` +
    `${live.msgs_in_per_s.toFixed(0)} msgs/s in · ${live.msgs_out_per_s.toFixed(0)} out · ` +
    `p95 ${live.latency_ms.p95 == null ? "—" : live.latency_ms.p95.toFixed(1) + " ms"} · ` +
    `errors ${live.errors} · timeouts ${live.timeouts}`;
}

async function poll() {
  let data;
  try {
    const query = newest === null ? "" : `?since=${newest}`;
    const response = await fetch(`/runs/${runId}/live.json${query}`,
                                 { credentials: "same-origin" });
    data = await response.json();
  } catch (err) {
    setTimeout(poll, POLL_MS * 2);
    return;
  }
  if (!data.running) {
    // The report is stored: show it.
    location.reload();
    return;
  }
  statusBadge.textContent = data.status;
  add(data.recent.timeline, data.recent.latency_timeline);
  showProgress(data.progress, data.live);
  draw();
  setTimeout(poll, POLL_MS);
}

const report = JSON.parse(document.getElementById("report-data").textContent);
if (report) {
  add(report.timeline, report.latency_timeline);
  draw();
}
if (active) poll();
