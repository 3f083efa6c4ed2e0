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

export function evseControls({ embedded }) {
  const token = el("input", {
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
  return el(
    "div",
    { class: "controls", "data-controls": "evse" },
    el("span", { class: "btn-group token-group" }, token, button(PRESENT, "btn-quiet")),
    group(EVSE_GROUPS[0]),
    group(EVSE_GROUPS[1], "btn-quiet"),
    embedded ? group(CSMS_GROUP, "btn-csms") : null,
    outcomeSlot("evse"),
  );
}

export function stationControls() {
  return el("div", { class: "controls", "data-controls": "station" }, group(STATION_GROUP, "btn-quiet"), outcomeSlot("station"));
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

async function run(command, scope, stationId, evseId, token, rowFor) {
  if (scope === "fleet") {
    const result = await api.fleet(command);
    if (result.ok && typeof result.count === "number") {
      return { ok: true, text: `Accepted: ${result.count} station${result.count === 1 ? "" : "s"}` };
    }
    return { ok: !!result.ok, text: outcomeText(result) };
  }
  let result;
  if (command === "remote_start") {
    if (!token) return { ok: false, text: "Rejected: enter an idToken" };
    result = await api.remoteStart({ station_id: stationId, evse_id: evseId, id_token: token });
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
      if (!token) return { ok: false, text: "Rejected: enter an idToken" };
      body.id_token = token;
    }
    result = await api.command(stationId, body);
  }
  return { ok: !!result.ok, text: outcomeText(result) };
}

// rowFor(stationId) gives the latest station row, for the running transaction id.
export function bindControls(root, { rowFor }) {
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
    const command = btn.dataset.command;

    btn.disabled = true;
    showOutcome(slot, `${btn.textContent}…`, "pending");
    try {
      const { ok, text } = await run(command, scope, stationId, evseId, token, rowFor);
      showOutcome(slot, text, ok ? "ok" : "error");
    } catch (error) {
      showOutcome(slot, `Error: ${error.message}`, "error");
    } finally {
      btn.disabled = false;
    }
  });
}
