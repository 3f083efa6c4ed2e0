// DOM building and the per-cell updates both pages use. Updates compare before they
// write, so an unchanged value never touches the DOM.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

export function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

export function setAttr(node, name, value) {
  if (node && node.getAttribute(name) !== value) node.setAttribute(name, value);
}

// Status words map to one colour family each (see dashboard.css, .s-*).
export function setBadge(node, word) {
  if (!node) return;
  setText(node, word);
  const cls = `badge s-${String(word).toLowerCase().replace(/[^a-z]/g, "")}`;
  if (node.className !== cls) node.className = cls;
}

export function connectorStatus(evse) {
  const states = Object.values(evse.connectors || {});
  if (!states.length) return "Unknown";
  const unique = [...new Set(states)];
  return unique.join(" / ");
}

// The worst connector state decides the badge colour when connectors disagree.
function badgeWord(evse) {
  const states = Object.values(evse.connectors || {});
  for (const word of ["Faulted", "Unavailable", "Occupied", "Reserved", "Available"]) {
    if (states.includes(word)) return word;
  }
  return states[0] || "Unknown";
}

export const fmt = {
  kw: (watts, digits = 1) => (watts == null ? "—" : (watts / 1000).toFixed(digits)),
  kwh: (wh, digits = 2) => (wh == null ? "—" : (wh / 1000).toFixed(digits)),
  soc: (soc) => (soc == null ? "—" : String(Math.round(soc))),
  time: (seconds) => (seconds == null ? "—" : new Date(seconds * 1000).toLocaleTimeString()),
  dateTime: (iso) => (iso ? new Date(iso).toLocaleString() : "—"),
};

// Value cells of one EVSE, keyed by data-field. `labels` names them for the stacked
// (narrow) layout, where the column headers are gone.
export const EVSE_FIELDS = [
  ["status", "Connector"],
  ["charging_state", "State"],
  ["power", "kW"],
  ["energy", "kWh"],
  ["soc", "SoC %"],
];

export function evseCells() {
  const cells = {};
  const nodes = EVSE_FIELDS.map(([field, label]) => {
    const value = el("span", { "data-field": field, class: field === "status" ? "badge" : "" });
    cells[field] = value;
    const numeric = ["power", "energy", "soc"].includes(field);
    return el("span", { class: `cell${numeric ? " num" : ""}`, "data-label": label }, value);
  });
  return { cells, nodes };
}

export function applyEvse(cells, evse, digits = { kw: 1, kwh: 2 }) {
  const status = connectorStatus(evse);
  setText(cells.status, status);
  const cls = `badge s-${badgeWord(evse).toLowerCase()}`;
  if (cells.status.className !== cls) cells.status.className = cls;
  setAttr(cells.status, "data-value", status);

  const state = evse.charging_state || "Idle";
  setText(cells.charging_state, state);
  const stateCls = `state s-${state.toLowerCase()}`;
  if (cells.charging_state.className !== stateCls) cells.charging_state.className = stateCls;

  setText(cells.power, fmt.kw(evse.power_w, digits.kw));
  const inTx = evse.tx_energy_wh != null;
  setText(cells.energy, fmt.kwh(inTx ? evse.tx_energy_wh : evse.energy_wh, digits.kwh));
  setAttr(cells.energy, "title", inTx ? `Transaction ${evse.transaction_id || ""}`.trim() : "Meter register");
  setText(cells.soc, fmt.soc(evse.soc));
  if (cells.transaction) setText(cells.transaction, evse.transaction_id || "—");
  if (cells.id_token) setText(cells.id_token, evse.id_token || "—");
}

export function sameEvses(row, evseIds) {
  const ids = (row.evses || []).map((e) => e.evse_id);
  return ids.length === evseIds.length && ids.every((id, i) => id === evseIds[i]);
}
