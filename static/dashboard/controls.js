// EVSE, station and fleet controls shared by both pages. Clicks are handled by one
// delegated listener per page, so a 50-row table does not carry hundreds of listeners
// and rows can be rebuilt without rebinding anything.
import { api, outcomeText } from "./api.js";
import { el } from "./render.js";

const FADE_AFTER_MS = 8000;
const FADE_DURATION_MS = 1000;

const PRESENT = ["present_id_token", "Present token", "Present the idToken: authorizes, or stops a session it started"];
const EVSE_GROUPS = [
  [
    ["plug_in", "Plug in", "Connect an EV cable"],
    ["start_charging", "Start", "Plug in if needed and present the idToken"],
    ["stop_charging", "Stop", "Stop the running transaction"],
    ["unplug", "Unplug", "Disconnect the EV cable"],
  ],
  [
    ["set_fault", "Fault", "Report the connector as Faulted"],
    ["clear_fault", "Clear fault", "Clear the fault"],
  ],
];
const CSMS_GROUP = [
  ["remote_start", "CSMS start", "The sandbox CSMS sends RequestStartTransaction"],
  ["remote_stop", "CSMS stop", "The sandbox CSMS sends RequestStopTransaction"],
];
const STATION_GROUP = [
  ["connect", "Connect", "Open the websocket to the CSMS"],
  ["disconnect", "Disconnect", "Drop the websocket"],
  ["reboot", "Reboot", "Restart the station (new BootNotification)"],
];
const FLEET_GROUP = [
  ["connect_all", "Connect all", "Connect every enabled station"],
  ["disconnect_all", "Disconnect all", "Disconnect every station"],
];

function button([command, label, title], extra = "") {
  return el("button", { type: "button", class: `btn ${extra}`.trim(), "data-command": command, title, text: label });
}

function group(items, extra) {
  return el("span", { class: "btn-group" }, ...items.map((item) => button(item, extra)));
}

function outcomeSlot(scope) {
  return el("span", { class: "outcome", "data-outcome": scope, role: "status", "aria-live": "polite" });
}

export function defaultToken() {
  const option = document.querySelector("#id-tokens option");
  return option ? option.value : "";
}

// The idToken types the server knows, with its default selected: a <select> in a
// <template> the page renders, cloned for each EVSE.
function tokenTypePicker() {
  const template = document.getElementById("id-token-types");
  if (!template) return null;
  return template.content.firstElementChild.cloneNode(true);
}

function tokenInput() {
  return el("input", {
    class: "token-input",
    type: "text",
    name: "id_token",
    "data-input": "id_token",
    list: "id-tokens",
    value: defaultToken(),
    placeholder: "idToken",
    autocomplete: "off",
    spellcheck: "false",
    "aria-label": "idToken",
  });
}

// A menu of actions, opened on demand: <details> needs no script to open and close, and
// keeps its buttons out of the page's tab order until it is open.
function menu(label, title, attr, ...children) {
  return el(
    "details",
    { class: "menu", [attr]: true },
    el("summary", { class: "menu-toggle", title, "aria-label": title, text: label }),
    el("div", { class: "menu-panel" }, ...children),
  );
}

// Full controls (the station page has room for them) or, in the fleet table, one primary
// action that follows the EVSE's state and a menu with the rest.
export function evseControls({ embedded, compact = false }) {
  const tokens = el("span", { class: "btn-group token-group" }, tokenTypePicker(), tokenInput(), button(PRESENT, "btn-quiet"));
  const actions = [
    tokens,
    group(EVSE_GROUPS[0]),
    group(EVSE_GROUPS[1], "btn-quiet"),
    embedded ? group(CSMS_GROUP, "btn-csms") : null,
  ];
  if (!compact) {
    return el("div", { class: "controls", "data-controls": "evse" }, ...actions, outcomeSlot("evse"));
  }
  const primary = button(PRIMARY.start_charging, "btn-primary-action");
  primary.dataset.primary = "";
  return el(
    "div",
    { class: "controls controls-compact", "data-controls": "evse" },
    primary,
    outcomeSlot("evse"),
    menu("⋯", "More actions: idToken, plug, fault, CSMS", "data-menu", ...actions),
  );
}

// What the one button of an EVSE does now: clear a fault, stop a transaction, or start.
const PRIMARY = {
  clear_fault: ["clear_fault", "Clear fault", "Clear the fault"],
  stop_charging: ["stop_charging", "Stop", "Stop the running transaction"],
  start_charging: ["start_charging", "Start", "Plug in if needed and present the idToken (pick it in ⋯)"],
};

export function primaryCommand(evse) {
  const states = Object.values(evse.connectors || {});
  if (states.includes("Faulted")) return "clear_fault";
  if (evse.transaction_id) return "stop_charging";
  return "start_charging";
}

export function setPrimary(box, evse) {
  const btn = box && box.querySelector("[data-primary]");
  if (!btn) return;
  const [command, label, title] = PRIMARY[primaryCommand(evse)];
  if (btn.dataset.command === command) return;
  btn.dataset.command = command;
  btn.textContent = label;
  btn.title = title;
}

export function stationControls({ compact = false } = {}) {
  if (!compact) {
    return el("div", { class: "controls", "data-controls": "station" }, group(STATION_GROUP, "btn-quiet"), outcomeSlot("station"));
  }
  return el(
    "div",
    { class: "controls controls-compact", "data-controls": "station" },
    menu("Station ▾", "Connect, disconnect or reboot the station", "data-station-menu", group(STATION_GROUP, "btn-quiet")),
    outcomeSlot("station"),
  );
}

// One menu open at a time; Escape or a click elsewhere closes it.
export function bindMenus(root) {
  const closeAll = (except) => {
    for (const open of root.querySelectorAll("details.menu[open]")) if (open !== except) open.open = false;
  };
  root.addEventListener("toggle", (event) => {
    if (event.target.matches && event.target.matches("details.menu") && event.target.open) closeAll(event.target);
  }, true);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeAll(null);
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest || !event.target.closest("details.menu")) closeAll(null);
  });
}

export function fleetControls() {
  return el("div", { class: "controls", "data-controls": "fleet" }, group(FLEET_GROUP), outcomeSlot("fleet"));
}

export function showOutcome(slot, text, state) {
  clearTimeout(slot._fade);
  clearTimeout(slot._clear);
  slot.textContent = text;
  slot.dataset.state = state;
  slot.title = text;
  slot.classList.remove("is-faded");
  if (state === "pending") return;
  slot._fade = setTimeout(() => slot.classList.add("is-faded"), FADE_AFTER_MS);
  slot._clear = setTimeout(() => {
    slot.textContent = "";
    slot.dataset.state = "";
    slot.title = "";
  }, FADE_AFTER_MS + FADE_DURATION_MS);
}

async function run(command, scope, stationId, evseId, token, tokenType, rowFor) {
  // NoAuthorization carries no value; every other type needs one.
  const needsToken = tokenType !== "NoAuthorization";
  if (scope === "fleet") {
    const result = await api.fleet(command);
    if (result.ok && typeof result.count === "number") {
      return { ok: true, text: `Accepted: ${result.count} station${result.count === 1 ? "" : "s"}` };
    }
    return { ok: !!result.ok, text: outcomeText(result) };
  }
  let result;
  if (command === "remote_start") {
    if (!token && needsToken) return { ok: false, text: "Rejected: enter an idToken", field: "id_token" };
    result = await api.remoteStart({ station_id: stationId, evse_id: evseId, id_token: token, token_type: tokenType });
  } else if (command === "remote_stop") {
    const row = rowFor(stationId);
    const evse = row && (row.evses || []).find((e) => e.evse_id === evseId);
    const transactionId = evse && evse.transaction_id;
    if (!transactionId) return { ok: false, text: "Rejected: no running transaction on this EVSE" };
    result = await api.remoteStop({ station_id: stationId, transaction_id: transactionId });
  } else {
    const body = { command };
    if (scope === "evse") body.evse_id = evseId;
    if (command === "present_id_token" || command === "start_charging") {
      if (!token && needsToken) return { ok: false, text: "Rejected: enter an idToken", field: "id_token" };
      body.id_token = token;
      if (tokenType) body.token_type = tokenType;
    }
    result = await api.command(stationId, body);
  }
  return { ok: !!result.ok, text: outcomeText(result), field: result.field };
}

// A value of the wrong format for its type is marked on the field until it is edited.
function markToken(input, invalid, text) {
  if (!input) return;
  if (invalid) {
    input.setAttribute("aria-invalid", "true");
    input.title = text;
  } else {
    input.removeAttribute("aria-invalid");
    input.title = "";
  }
}

// rowFor(stationId) gives the latest station row, for the running transaction id.
export function bindControls(root, { rowFor }) {
  root.addEventListener("input", (event) => {
    if (event.target.matches && event.target.matches("[data-input=id_token]")) markToken(event.target, false);
  });
  // NoAuthorization has no value to type: the field empties and waits for another type.
  root.addEventListener("change", (event) => {
    const picker = event.target;
    if (!picker.matches || !picker.matches("[data-input=token_type]")) return;
    const input = picker.closest(".token-group") && picker.closest(".token-group").querySelector("[data-input=id_token]");
    if (!input) return;
    const none = picker.value === "NoAuthorization";
    if (none) input.value = "";
    else if (!input.value) input.value = defaultToken();
    input.disabled = none;
    markToken(input, false);
  });
  root.addEventListener("click", async (event) => {
    const btn = event.target.closest("button[data-command]");
    const box = btn && btn.closest("[data-controls]");
    if (!box || !root.contains(box)) return;
    const scope = box.dataset.controls;
    const slot = box.querySelector("[data-outcome]");
    const stationEl = btn.closest("[data-station]");
    const evseEl = btn.closest("[data-evse]");
    const stationId = stationEl ? stationEl.dataset.station : null;
    const evseId = evseEl ? Number(evseEl.dataset.evse) : null;
    const tokenInput = box.querySelector("[data-input=id_token]");
    const token = tokenInput ? tokenInput.value.trim() : "";
    const typePicker = box.querySelector("[data-input=token_type]");
    const tokenType = typePicker ? typePicker.value : "";
    const command = btn.dataset.command;

    btn.disabled = true;
    showOutcome(slot, `${btn.textContent}…`, "pending");
    try {
      const { ok, text, field } = await run(command, scope, stationId, evseId, token, tokenType, rowFor);
      if (tokenInput && (field === "id_token" || ok)) markToken(tokenInput, field === "id_token", text);
      showOutcome(slot, text, ok ? "ok" : "error");
    } catch (error) {
      showOutcome(slot, `Error: ${error.message}`, "error");
    } finally {
      btn.disabled = false;
    }
  });
}
