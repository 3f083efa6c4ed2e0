// Fleet overview: totals, the chart of the last 10 minutes (points the server keeps, so a
// reload shows them again), and one page of the station table kept current from
// /ws/fleet/. Only the 50 rows on screen are subscribed, and updates are applied once per
// animation frame, cell by cell. Each EVSE shows one action; the rest are in its menu.
import { api } from "./api.js";
import { fleetChart } from "./chart.js";
import { bindControls, bindMenus, evseControls, fleetControls, setPrimary, stationControls } from "./controls.js";
import { applyEvse, el, evseCells, fmt, sameEvses, setAttr, setBadge, setText } from "./render.js";
import { frameBatcher, openSocket } from "./socket.js";

const PAGE_SIZE = 50;
const SEARCH_DEBOUNCE_MS = 300;
const FLOAT_TOTALS = new Set(["power_kw", "energy_kwh", "msgs_per_s"]);

const root = document.querySelector("[data-page=fleet]");
const embedded = root.dataset.embedded === "true";
const tbody = root.querySelector("[data-table-body]");
const statusSelect = root.querySelector("[data-filter=status]");
const searchInput = root.querySelector("[data-filter=q]");
const pager = {
  prev: root.querySelector("[data-pager=prev]"),
  next: root.querySelector("[data-pager=next]"),
  info: root.querySelector("[data-pager=info]"),
  count: root.querySelector("[data-pager=count]"),
};
const totalNodes = new Map([...root.querySelectorAll("[data-total]")].map((n) => [n.dataset.total, n]));

const query = new URLSearchParams(location.search);
const view = {
  page: Math.max(1, Number(query.get("page")) || 1),
  pages: 1,
  status: query.get("status") || "",
  q: query.get("q") || "",
};
statusSelect.value = view.status;
searchInput.value = view.q;

// The current page's rows by station id (latest data), and the built ones:
// station_id → { tr, row, evseIds, evses: Map(evse_id → cells) }
const pageData = new Map();
const records = new Map();
const pendingRows = new Map();
let pendingTotals = null;
// Shards no engine worker runs now (from the server), and the notice naming those that
// wait for a free worker slot.
let staleShards = new Set();
const waitingNotice = document.querySelector("[data-shards-waiting]");
const staleTile = root.querySelector("[data-stale-tile]");
let socket = null;

// --- rows ---------------------------------------------------------------------------

function buildRow(row) {
  const id = row.station_id;
  const evses = new Map();
  const link = el("a", { href: `/stations/${encodeURIComponent(id)}/`, class: "station-link", text: id });
  const meta = el("span", { class: "sub", "data-field": "meta" });
  const badge = el("span", { "data-field": "station_status" });
  const evseBlocks = (row.evses || []).map((evse) => {
    const { cells, nodes } = evseCells();
    const controls = evseControls({ embedded, compact: true });
    evses.set(evse.evse_id, { cells, controls });
    return el(
      "div",
      { class: "evse", "data-evse": evse.evse_id },
      el("span", { class: "evse-id", text: `#${evse.evse_id}`, title: `EVSE ${evse.evse_id}` }),
      ...nodes,
      controls,
    );
  });
  const tr = el(
    "tr",
    { "data-station": id },
    el("td", { class: "c-station" }, el("div", { class: "station-cell" }, link, meta, stationControls({ compact: true }))),
    el("td", { class: "c-status" }, badge),
    el("td", { class: "c-evses" }, ...(evseBlocks.length ? evseBlocks : [el("span", { class: "sub", text: "No EVSEs" })])),
  );
  const record = { tr, row, evseIds: (row.evses || []).map((e) => e.evse_id), evses, meta, badge };
  applyRow(record, row);
  return record;
}

function applyRow(record, row) {
  record.row = row;
  // A shard no engine runs: what the database last heard may no longer hold.
  const stale = row.shard != null && staleShards.has(Number(row.shard));
  setBadge(record.badge, stale ? "Stale" : row.status);
  const meta = stale
    ? `stale · shard ${row.shard} not running`
    : (row.online ? ["online", row.boot_status] : ["offline", row.error]).filter(Boolean).join(" · ");
  setText(record.meta, meta);
  setAttr(record.meta, "title", stale
    ? `No engine worker runs shard ${row.shard} now: this row shows what was last heard`
    : row.online ? `Connected; BootNotification ${row.boot_status || "not answered"}` : meta);
  const cls = stale ? "is-stale" : row.online ? "" : "is-offline";
  if (record.tr.className !== cls) record.tr.className = cls;
  for (const evse of row.evses || []) {
    const entry = record.evses.get(evse.evse_id);
    if (!entry) continue;
    applyEvse(entry.cells, evse);
    setPrimary(entry.controls, evse);
  }
}

// Rows go in a few per animation frame: laying out a whole page of controls at once is
// the single most expensive thing this page does.
const ROWS_PER_FRAME = 10;
let renderToken = 0;

function renderPage(stations) {
  const token = ++renderToken;
  records.clear();
  pendingRows.clear();
  pageData.clear();
  for (const row of stations) pageData.set(row.station_id, row);
  const ids = [...pageData.keys()];
  if (!ids.length) {
    const text = view.q || view.status ? "No stations match the filter." : "No stations configured yet.";
    tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 3, text })));
    return;
  }
  let next = 0;
  const step = () => {
    if (token !== renderToken) return;
    const fragment = document.createDocumentFragment();
    for (const id of ids.slice(next, next + ROWS_PER_FRAME)) {
      const record = buildRow(pageData.get(id));
      records.set(id, record);
      fragment.append(record.tr);
    }
    if (next === 0) tbody.replaceChildren(fragment);
    else tbody.append(fragment);
    next += ROWS_PER_FRAME;
    if (next < ids.length) requestAnimationFrame(step);
  };
  step();
}

// --- loading a page -----------------------------------------------------------------

let inflight = null;

async function loadPage() {
  if (inflight) inflight.abort();
  const controller = new AbortController();
  inflight = controller;
  tbody.setAttribute("aria-busy", "true");
  const params = { page: view.page, size: PAGE_SIZE, status: view.status, q: view.q };
  try {
    const data = await api.stations(params, { signal: controller.signal });
    if (controller !== inflight) return;
    view.page = data.page || 1;
    view.pages = Math.max(1, data.pages || 1);
    renderPage(data.stations || []);
    setText(pager.info, `page ${view.page} of ${view.pages}`);
    setText(pager.count, `${data.count} station${data.count === 1 ? "" : "s"}`);
    pager.prev.disabled = view.page <= 1;
    pager.next.disabled = view.page >= view.pages;
    subscribe();
    rememberView();
  } catch (error) {
    if (error.name === "AbortError") return;
    tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 3, class: "error-text", text: `Could not load stations: ${error.message}` })));
  } finally {
    if (controller === inflight) {
      inflight = null;
      tbody.removeAttribute("aria-busy");
    }
  }
}

function subscribe() {
  if (socket) socket.send({ type: "subscribe", stations: [...pageData.keys()] });
}

// Keeps page and filters in the address so a reload or a shared link shows the same rows.
function rememberView() {
  const params = new URLSearchParams();
  if (view.page > 1) params.set("page", view.page);
  if (view.status) params.set("status", view.status);
  if (view.q) params.set("q", view.q);
  const search = params.toString();
  history.replaceState(null, "", search ? `?${search}` : location.pathname);
}

statusSelect.addEventListener("change", () => {
  view.status = statusSelect.value;
  view.page = 1;
  loadPage();
});

let searchTimer = null;
searchInput.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    const q = searchInput.value.trim();
    if (q === view.q) return;
    view.q = q;
    view.page = 1;
    loadPage();
  }, SEARCH_DEBOUNCE_MS);
});

pager.prev.addEventListener("click", () => {
  if (view.page > 1) {
    view.page -= 1;
    loadPage();
  }
});
pager.next.addEventListener("click", () => {
  if (view.page < view.pages) {
    view.page += 1;
    loadPage();
  }
});

// --- live updates -------------------------------------------------------------------

// Created after the first paint, in a task of its own: building the chart measures the
// page, and doing that during module evaluation made one long task of the whole start.
// Points that arrive before it exists wait for it.
let chart = null;
let seriesHistory = [];
let pendingPoints = [];
requestAnimationFrame(() => setTimeout(() => {
  chart = fleetChart(root.querySelector("[data-chart=fleet]"));
  chart.load(seriesHistory);
  for (const point of pendingPoints) chart.push(point[0], point.slice(1));
  pendingPoints = [];
}));

// The server takes a point a second, whether or not a page is open: a socket that
// (re)connects gets them all, so the chart has no gap for the time it was away.
function chartHistory(points) {
  seriesHistory = points || [];
  pendingPoints = [];
  if (chart) chart.load(seriesHistory);
}

function chartPoints(points) {
  for (const point of points) {
    if (chart) chart.push(point[0], point.slice(1));
    else pendingPoints.push(point);
  }
}

function applyTotals(totals) {
  for (const [key, node] of totalNodes) {
    const value = totals[key];
    if (value == null) continue;
    setText(node, FLOAT_TOTALS.has(key) ? Number(value).toFixed(1) : String(value));
  }
}

const flush = frameBatcher(() => {
  if (pendingTotals) {
    applyTotals(pendingTotals);
    pendingTotals = null;
  }
  for (const [id, row] of pendingRows) {
    const record = records.get(id);
    if (!record) {
      // Not built yet: it will be built from the newest data.
      if (pageData.has(id)) pageData.set(id, row);
      continue;
    }
    if (sameEvses(row, record.evseIds)) {
      applyRow(record, row);
    } else {
      const fresh = buildRow(row);
      record.tr.replaceWith(fresh.tr);
      records.set(id, fresh);
    }
  }
  pendingRows.clear();
});

function applyShards(shards) {
  staleShards = new Set(shards.stale || []);
  const waiting = shards.waiting || [];
  waitingNotice.hidden = !waiting.length;
  setText(waitingNotice, waiting.map((w) =>
    `Shard ${w.shard} (${w.stations} station${w.stations === 1 ? "" : "s"}) waits for a free engine worker slot since ${fmt.dateTime(w.since)}.`).join(" "));
  staleTile.hidden = !staleShards.size;
  for (const record of records.values()) applyRow(record, record.row);
}

function onMessage(message) {
  if (message.shards) applyShards(message.shards);
  if (message.totals) pendingTotals = message.totals;
  if (message.type === "snapshot") chartHistory(message.series);
  else if (message.series) chartPoints(message.series);
  if (message.type === "update" && message.stations) {
    for (const [id, row] of Object.entries(message.stations)) {
      if (pageData.has(id)) pendingRows.set(id, { station_id: id, ...row });
    }
  }
  flush();
}

let loadedOnce = false;
socket = openSocket("/ws/fleet/", {
  onOpen() {
    // After a reconnect the rows may be stale: reload them, which subscribes again.
    if (loadedOnce) loadPage();
    else subscribe();
    loadedOnce = true;
  },
  onMessage,
});

bindControls(root, { rowFor: (id) => (records.has(id) ? records.get(id).row : pageData.get(id)) });
bindMenus(root);
root.querySelector("[data-fleet-controls]").append(fleetControls());
setAttr(root, "data-ready", "true");
loadPage();
