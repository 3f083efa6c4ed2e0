// Station detail: facts, live EVSEs with per-transaction charts, recent transactions,
// the OCPP message log and the device model. The charts and the recent list start from
// what the server kept and follow the socket from there, so a reload loses nothing.
import { api } from "./api.js";
import { transactionChart } from "./chart.js";
import { bindControls, evseControls, stationControls } from "./controls.js";
import { messageLog } from "./frames.js";
import { applyEvse, el, evseCells, fmt, sameEvses, setBadge, setText } from "./render.js";
import { frameBatcher, openSocket } from "./socket.js";

const root = document.querySelector("[data-page=station]");
const stationId = root.dataset.stationId;
const embedded = root.dataset.embedded === "true";
const stationEl = root.querySelector("[data-station]");
const cardsEl = root.querySelector("[data-evse-cards]");
const txBody = root.querySelector("[data-transactions]");
const errorEl = root.querySelector("[data-station-error]");
// The server's chart grid (stations/series.py): a point per STEP seconds, thinned by
// halves to at most MAX_POINTS. Live points go on the same grid, so a reload finds them.
const STEP = Number(root.dataset.chartStep) || 5;
const MAX_POINTS = Number(root.dataset.chartMaxPoints) || 240;
const MAX_TRANSACTIONS = 20;

let latestRow = null;
let pendingRow = null;
// evse_id → { cells, chart, chartBox, caption, tx: { id, first, last, points } }
const evses = new Map();
let evseIds = [];

const log = messageLog({
  body: root.querySelector("[data-log]"),
  filter: root.querySelector("[data-log-filter]"),
  count: root.querySelector("[data-log-count]"),
});

// --- facts and EVSE cards -----------------------------------------------------------

function setFacts(facts) {
  for (const node of root.querySelectorAll("[data-fact]")) {
    const key = node.dataset.fact;
    if (!(key in facts)) continue;
    let value = facts[key];
    if (key === "online") value = value ? "Connected" : "Offline";
    if (key === "shard") value = value == null || value === "" || value === "all" ? "this process" : `shard ${value}`;
    setText(node, value == null || value === "" ? "—" : String(value));
  }
}

function buildCards(row) {
  evses.clear();
  evseIds = (row.evses || []).map((e) => e.evse_id);
  const cards = (row.evses || []).map((evse) => {
    const { cells, nodes } = evseCells();
    const [statusNode, stateNode, ...valueNodes] = nodes;
    cells.transaction = el("span", { "data-field": "transaction_id" });
    cells.id_token = el("span", { "data-field": "id_token" });
    const chartBox = el("div", { class: "chart", "data-chart": `evse-${evse.evse_id}` });
    const caption = el("div", { class: "tx-caption", "data-tx-caption": true, text: "No transaction yet" });
    const card = el(
      "article",
      { class: "evse-card", "data-evse": evse.evse_id },
      el("div", { class: "evse-card-head" }, el("h2", { text: `EVSE ${evse.evse_id}` }), statusNode, stateNode),
      el(
        "div",
        { class: "evse-values" },
        ...valueNodes,
        el("span", { class: "cell", "data-label": "Transaction" }, cells.transaction),
        el("span", { class: "cell", "data-label": "idToken" }, cells.id_token),
      ),
      evseControls({ embedded }),
      el("div", { class: "tx-chart" }, caption, chartBox),
    );
    evses.set(evse.evse_id, { cells, chartBox, caption, chart: null, tx: null });
    return card;
  });
  cardsEl.replaceChildren(...(cards.length ? cards : [el("p", { class: "sub", text: "This station has no EVSEs." })]));
  // Charts are created once the cards are in the document and have a width.
  for (const entry of evses.values()) entry.chart = transactionChart(entry.chartBox);
  for (const [txId, points] of Object.entries(serverSeries)) chartHistory(txId, points);
}

// --- transaction charts -------------------------------------------------------------

function txLevel(first, cell) {
  let level = 0;
  while (cell - first >= MAX_POINTS * 2 ** level) level += 1;
  return level;
}

function thin(tx, level) {
  for (const cell of [...tx.points.keys()]) if ((cell - tx.first) % 2 ** level) tx.points.delete(cell);
}

function drawChart(entry) {
  const tx = entry.tx;
  const cells = [...tx.points.keys()].sort((a, b) => a - b);
  entry.chart.load(cells.map((c) => tx.points.get(c)));
  const row = txRows.get(tx.id);
  const since = row && row.started_at ? new Date(row.started_at).toLocaleTimeString() : null;
  const ended = row && row.ended_at;
  setText(entry.caption, `Transaction ${tx.id}${ended ? " ended" : since ? ` · since ${since}` : ""}`);
}

function chartFor(entry, txId) {
  if (!entry.tx || entry.tx.id !== txId) entry.tx = { id: txId, first: null, last: null, points: new Map() };
  return entry.tx;
}

// The server's points of a transaction: [time, W, Wh].
function chartHistory(txId, points) {
  const row = txRows.get(txId);
  const entry = row && evses.get(row.evse_id);
  if (!entry || !entry.chart || !points.length) return;
  // A newer transaction drawn live on this EVSE wins over an older one from the database.
  if (entry.tx && entry.tx.id !== txId && entry.tx.points.size) return;
  const tx = chartFor(entry, txId);
  for (const [t, w, wh] of points) tx.points.set(Math.round(t / STEP), [t, w / 1000, wh / 1000]);
  const cells = [...tx.points.keys()];
  tx.first = Math.min(...cells);
  tx.last = Math.max(tx.last ?? -Infinity, ...cells);
  thin(tx, txLevel(tx.first, tx.last));
  drawChart(entry);
}

// A live EVSE report, seen by the engine at `updated` (the server's clock).
function chartLive(entry, evse, updated) {
  if (!evse.transaction_id || updated == null || evse.tx_energy_wh == null) return;
  const tx = chartFor(entry, evse.transaction_id);
  const cell = Math.floor(updated / STEP);
  if (tx.first == null) tx.first = cell;
  if (tx.last != null && cell <= tx.last) return;
  const level = txLevel(tx.first, cell);
  if ((cell - tx.first) % 2 ** level) return;
  if (tx.last != null && level > txLevel(tx.first, tx.last)) thin(tx, level);
  tx.points.set(cell, [cell * STEP, (evse.power_w || 0) / 1000, evse.tx_energy_wh / 1000]);
  tx.last = cell;
  drawChart(entry);
}

function chartEnded(summary) {
  for (const entry of evses.values()) {
    const tx = entry.tx;
    if (!tx || tx.id !== summary.transactionId || summary.energy_wh == null) continue;
    const cell = Math.floor(Date.parse(summary.timestamp) / 1000 / STEP);
    if (tx.last != null && cell < tx.last) continue;
    tx.points.set(cell, [cell * STEP, 0, summary.energy_wh / 1000]);
    tx.last = cell;
    drawChart(entry);
  }
}

let serverSeries = {};

function applyStation(row) {
  latestRow = row;
  setBadge(stationEl.querySelector("[data-field=station_status]"), row.status);
  setFacts(row);
  if (!evses.size || !sameEvses(row, evseIds)) buildCards(row);
  for (const evse of row.evses || []) {
    const entry = evses.get(evse.evse_id);
    if (!entry) continue;
    applyEvse(entry.cells, evse, { kw: 2, kwh: 3 });
    chartLive(entry, evse, row.updated);
    if (evse.transaction_id) {
      liveTransaction(evse.transaction_id, {
        evse_id: evse.evse_id,
        id_token: evse.id_token || undefined,
        energy_wh: evse.tx_energy_wh ?? undefined,
        charging_state: evse.charging_state,
      });
    }
  }
}

const flushStation = frameBatcher(() => {
  if (pendingRow) applyStation(pendingRow);
  pendingRow = null;
});

// --- recent transactions --------------------------------------------------------------

// transaction_id → the row the table shows: the database's, kept current by the socket
// (TransactionEvents as the station makes them, kWh from its EVSE reports).
const txRows = new Map();
const txNodes = new Map();

function mergeTransaction(id, fields, { live }) {
  const row = txRows.get(id) || { transaction_id: id };
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (!live) {
      // The database is up to a second behind the socket: it never takes back an end,
      // a stop reason or kWh the page has already seen.
      if ((key === "ended_at" || key === "stopped_reason") && row[key]) continue;
      if (key === "energy_wh" && row.energy_wh != null && value != null && value < row.energy_wh) continue;
      if (key === "charging_state" && row._liveAt && Date.now() - row._liveAt < 5000) continue;
      if (key === "started_at" && row.started_at) continue;
    }
    row[key] = value;
  }
  if (live) row._liveAt = Date.now();
  txRows.set(id, row);
  renderTransactions();
  // Seen live before the database had it (the page opened just after it started): the
  // database fills in when it started.
  if (!row.started_at && (row._asked = (row._asked || 0) + 1) <= 10) scheduleDetailReload(1500);
}

function liveTransaction(id, fields) {
  mergeTransaction(id, fields, { live: true });
}

function onTransactionEvent(t) {
  const fields = { evse_id: t.evse_id, charging_state: t.chargingState || undefined, energy_wh: t.energy_wh ?? undefined };
  if (t.idToken) fields.id_token = t.idToken;
  if (t.eventType === "Started") fields.started_at = t.timestamp;
  if (t.eventType === "Ended") {
    fields.ended_at = t.timestamp;
    fields.stopped_reason = t.stoppedReason || "";
  }
  liveTransaction(t.transactionId, fields);
  if (t.eventType === "Ended") chartEnded(t);
}

const renderTransactions = frameBatcher(() => {
  const rows = [...txRows.values()].sort((a, b) => (Date.parse(b.started_at) || Infinity) - (Date.parse(a.started_at) || Infinity));
  const shown = rows.slice(0, MAX_TRANSACTIONS);
  if (!shown.length) {
    txBody.replaceChildren(el("tr", { class: "muted-row" }, el("td", { colspan: 7, text: "No transactions yet." })));
    txNodes.clear();
    return;
  }
  const trs = shown.map((t) => {
    let node = txNodes.get(t.transaction_id);
    if (!node) {
      const cell = (field, cls) => el("td", { "data-field": field, class: cls });
      node = el("tr", { "data-transaction": t.transaction_id }, el("td", { text: t.transaction_id }),
        cell("evse_id"), cell("id_token"), cell("started_at"), cell("ended_at"), cell("energy", "num"), cell("state"));
      txNodes.set(t.transaction_id, node);
    }
    const field = (name) => node.querySelector(`[data-field=${name}]`);
    setText(field("evse_id"), t.evse_id == null ? "—" : String(t.evse_id));
    setText(field("id_token"), t.id_token || "—");
    setText(field("started_at"), fmt.dateTime(t.started_at));
    setText(field("ended_at"), t.ended_at ? fmt.dateTime(t.ended_at) : "running");
    setText(field("energy"), fmt.kwh(t.energy_wh, 3));
    setText(field("state"), t.ended_at ? t.stopped_reason || "—" : t.charging_state || "—");
    return node;
  });
  for (const id of [...txNodes.keys()]) if (!shown.some((t) => t.transaction_id === id)) txNodes.delete(id);
  const current = [...txBody.children];
  if (current.length !== trs.length || current.some((n, i) => n !== trs[i])) txBody.replaceChildren(...trs);
});

async function loadDetail() {
  try {
    const data = await api.station(stationId);
    errorEl.hidden = true;
    setFacts(data.station || {});
    for (const t of data.transactions || []) mergeTransaction(t.transaction_id, t, { live: false });
    if (!(data.transactions || []).length) renderTransactions();
    serverSeries = data.series || {};
    if (data.station && !pendingRow && !latestRow) applyStation(data.station);
    for (const [txId, points] of Object.entries(serverSeries)) chartHistory(txId, points);
    log.add(data.frames || []);
  } catch (error) {
    errorEl.textContent = `Could not load the station: ${error.message}`;
    errorEl.hidden = false;
    if (!latestRow) cardsEl.replaceChildren(el("p", { class: "sub", text: "No data." }));
  }
}

let reloadTimer = null;
function scheduleDetailReload(delay = 1000) {
  if (reloadTimer) return;
  reloadTimer = setTimeout(() => {
    reloadTimer = null;
    loadDetail();
  }, delay);
}

// --- device model -------------------------------------------------------------------

const varBody = root.querySelector("[data-variables]");
const varMessage = root.querySelector("[data-variables-message]");
const varFilter = root.querySelector("[data-variables-filter]");
const varRefresh = root.querySelector("[data-refresh=variables]");

function filterVariables() {
  const needle = varFilter.value.trim().toLowerCase();
  for (const tr of varBody.children) tr.hidden = !!needle && !tr._text.includes(needle);
}

async function loadVariables() {
  varRefresh.disabled = true;
  setText(varMessage, "Loading…");
  try {
    const data = await api.variables(stationId);
    if (!data.ok) {
      varBody.replaceChildren();
      setText(varMessage, `Station is not running: ${data.detail || "no device model available"}`);
      return;
    }
    const dash = (v) => (v == null || v === "" ? "—" : String(v));
    varBody.replaceChildren(
      ...data.variables.map((v) => {
        const tr = el(
          "tr",
          { "data-component": v.component, "data-variable": v.variable },
          ...[v.component, v.evse, v.connector, v.variable, v.instance].map((x) => el("td", { text: dash(x) })),
          el("td", { class: "wrap", text: dash(v.value) }),
          ...[v.mutability, v.data_type, v.unit].map((x) => el("td", { text: dash(x) })),
        );
        tr._text = `${v.component} ${v.variable} ${v.instance || ""}`.toLowerCase();
        return tr;
      }),
    );
    setText(varMessage, `${data.variables.length} variables · read ${new Date().toLocaleTimeString()}`);
    filterVariables();
  } catch (error) {
    setText(varMessage, `Could not read the device model: ${error.message}`);
  } finally {
    varRefresh.disabled = false;
  }
}

varRefresh.addEventListener("click", loadVariables);
varFilter.addEventListener("input", filterVariables);

// --- wiring -------------------------------------------------------------------------

root.querySelector("[data-station-controls]").append(stationControls());
bindControls(root, { rowFor: () => latestRow });

openSocket(`/ws/stations/${encodeURIComponent(stationId)}/`, {
  onMessage(message) {
    if (message.station) {
      pendingRow = message.station;
      flushStation();
    }
    for (const t of message.transactions || []) onTransactionEvent(t);
    if (message.frames) log.add(message.frames);
  },
});

loadDetail();
loadVariables();
