// Station detail: facts, live EVSEs with per-transaction charts, recent transactions,
// the OCPP message log and the device model.
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

let latestRow = null;
let pendingRow = null;
// evse_id → { cells, chart, caption, txId, lastSampleAt }
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
    const caption = el("div", { class: "tx-caption", "data-tx-caption": true, text: "No running transaction" });
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
    evses.set(evse.evse_id, { cells, chartBox, caption, chart: null, txId: null, lastSampleAt: 0 });
    return card;
  });
  cardsEl.replaceChildren(...(cards.length ? cards : [el("p", { class: "sub", text: "This station has no EVSEs." })]));
  // Charts are created once the cards are in the document and have a width.
  for (const entry of evses.values()) entry.chart = transactionChart(entry.chartBox);
}

// One sample per second per EVSE is plenty for a charge curve and keeps long sessions light.
function chartSample(entry, evse) {
  const txId = evse.transaction_id || null;
  if (txId && txId !== entry.txId) {
    entry.chart.reset();
    entry.txId = txId;
    entry.lastSampleAt = 0;
    entry.startedSeen = new Date().toLocaleTimeString();
  }
  if (txId) {
    setText(entry.caption, `Transaction ${txId} · charted since ${entry.startedSeen}`);
    const now = Date.now();
    if (now - entry.lastSampleAt >= 1000) {
      entry.lastSampleAt = now;
      entry.chart.push(now / 1000, [(evse.power_w || 0) / 1000, (evse.tx_energy_wh || 0) / 1000]);
    }
  } else if (entry.txId) {
    setText(entry.caption, `Transaction ${entry.txId} ended`);
  }
}

let lastTxIds = "";

function applyStation(row) {
  latestRow = row;
  setBadge(stationEl.querySelector("[data-field=station_status]"), row.status);
  setFacts(row);
  if (!evses.size || !sameEvses(row, evseIds)) buildCards(row);
  for (const evse of row.evses || []) {
    const entry = evses.get(evse.evse_id);
    if (!entry) continue;
    applyEvse(entry.cells, evse, { kw: 2, kwh: 3 });
    chartSample(entry, evse);
  }
  // A transaction that started or ended changes the history table: reload it.
  const txIds = (row.evses || []).map((e) => e.transaction_id || "").join(",");
  if (lastTxIds && txIds !== lastTxIds) scheduleDetailReload();
  lastTxIds = txIds;
}

const flushStation = frameBatcher(() => {
  if (pendingRow) applyStation(pendingRow);
  pendingRow = null;
});

// --- history ------------------------------------------------------------------------

function renderTransactions(transactions) {
  if (!transactions.length) {
    txBody.replaceChildren(el("tr", { class: "muted-row" }, el("td", { colspan: 7, text: "No transactions yet." })));
    return;
  }
  txBody.replaceChildren(
    ...transactions.map((t) =>
      el(
        "tr",
        { "data-transaction": t.transaction_id },
        el("td", { text: t.transaction_id }),
        el("td", { text: t.evse_id ?? "—" }),
        el("td", { text: t.id_token || "—" }),
        el("td", { text: fmt.dateTime(t.started_at) }),
        el("td", { text: t.ended_at ? fmt.dateTime(t.ended_at) : "running" }),
        el("td", { class: "num", text: fmt.kwh(t.energy_wh, 3) }),
        el("td", { text: t.ended_at ? t.stopped_reason || "—" : t.charging_state || "—" }),
      ),
    ),
  );
}

async function loadDetail() {
  try {
    const data = await api.station(stationId);
    errorEl.hidden = true;
    setFacts(data.station || {});
    if (data.station && !pendingRow && !latestRow) applyStation(data.station);
    renderTransactions(data.transactions || []);
    log.add(data.frames || []);
  } catch (error) {
    errorEl.textContent = `Could not load the station: ${error.message}`;
    errorEl.hidden = false;
    if (!latestRow) cardsEl.replaceChildren(el("p", { class: "sub", text: "No data." }));
  }
}

let reloadTimer = null;
function scheduleDetailReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(loadDetail, 1000);
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
    if (message.frames) log.add(message.frames);
  },
});

loadDetail();
loadVariables();
