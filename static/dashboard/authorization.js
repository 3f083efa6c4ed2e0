// Station page, authorization panel: what the running station holds (its authorization
// cache, local list and master pass) and what a driver presents to it (a card, a PIN, a
// contract, a card payment, the start button). Read from the station through the shard,
// like the device model: after each action and every few seconds while the page is seen.
import { getJSON, outcomeText, postJSON } from "./api.js";
import { el, setText } from "./render.js";

const REFRESH_MS = 5000;

const panel = document.querySelector("[data-authorization]");
const stationId = document.querySelector("[data-page=station]").dataset.stationId;
const url = (path) => `/api/stations/${encodeURIComponent(stationId)}/${path}/`;
const input = (name) => panel.querySelector(`[data-auth-input=${name}]`);
const evseSelect = input("evse_id");
const outcome = panel.querySelector("[data-auth-outcome]");
const refreshButton = panel.querySelector("[data-refresh=authorization]");
let evseIds = [];

const dash = (value) => (value == null || value === "" ? "—" : String(value));

function rows(body, items, columns, empty) {
  if (!items.length) {
    body.replaceChildren(el("tr", { class: "muted-row" }, el("td", { colspan: columns.length, text: empty })));
    return;
  }
  body.replaceChildren(
    ...items.map((item) =>
      el("tr", { "data-id-token": item.id_token }, ...columns.map(([cls, value]) => el("td", { class: cls, text: dash(value(item)) }))),
    ),
  );
}

function lapses(seconds) {
  if (seconds == null) return "never";
  const left = Math.round(seconds - Date.now() / 1000);
  return left <= 0 ? "now" : left < 3600 ? `in ${left} s` : new Date(seconds * 1000).toLocaleString();
}

function setEvses(ids) {
  if (ids.join() === evseIds.join()) return;
  evseIds = ids;
  const chosen = evseSelect.value;
  evseSelect.replaceChildren(...ids.map((id) => el("option", { value: id, text: `EVSE ${id}` })));
  if (ids.map(String).includes(chosen)) evseSelect.value = chosen;
}

function render(data) {
  setEvses(data.evses || []);
  const on = (key) => (data.settings || {})[key];
  setText(
    panel.querySelector("[data-auth-settings]"),
    [
      on("AuthCtrlr.Enabled") ? "authorizes idTokens" : "no authorization (start button)",
      on("AuthCtrlr.LocalPreAuthorize") ? "local pre-authorize" : null,
      on("AuthCtrlr.LocalAuthorizeOffline") ? "local authorize offline" : null,
      on("AuthCtrlr.OfflineTxForUnknownIdEnabled") ? "unknown ids offline" : null,
      on("AuthCtrlr.DisableRemoteAuthorization") ? "no Authorize requests" : null,
    ].filter(Boolean).join(" · "),
  );
  const cache = data.cache;
  setText(
    panel.querySelector("[data-auth-cache-summary]"),
    cache.enabled ? `${cache.entries.length} idTokens · ${cache.bytes} bytes · ${cache.policy}` : "disabled (AuthCacheCtrlr.Enabled)",
  );
  rows(panel.querySelector("[data-auth-cache]"), cache.entries, [
    ["", (e) => e.id_token], ["", (e) => e.type], ["", (e) => e.status], ["", (e) => e.group],
    ["", (e) => lapses(e.lapses_at)], ["num", (e) => e.uses],
  ], "No idTokens cached.");
  const list = data.local_list;
  setText(
    panel.querySelector("[data-auth-list-summary]"),
    `${list.enabled ? "" : "disabled · "}version ${list.version} · ${list.entries.length} of ${list.max_entries} idTokens`,
  );
  rows(panel.querySelector("[data-auth-list]"), list.entries, [
    ["", (e) => e.id_token], ["", (e) => e.type], ["", (e) => e.status], ["", (e) => e.group], ["", (e) => e.expires],
  ], list.version ? "The list is empty." : "No list installed (GetLocalListVersion says 0).");
  const master = data.master_pass;
  setText(
    panel.querySelector("[data-auth-master]"),
    master.group
      ? `Master pass group ${master.group}: a master pass would stop ${master.would_stop.length ? master.would_stop.map((t) => `EVSE ${t.evse_id} (${t.transaction_id})`).join(", ") : "nothing (no transaction runs)"} and starts none.`
      : "No master pass group (AuthCtrlr.MasterPassGroupId is empty).",
  );
}

async function refresh() {
  refreshButton.disabled = true;
  try {
    const data = await getJSON(url("authorization"));
    if (!data.ok) {
      setText(panel.querySelector("[data-auth-cache-summary]"), `station is not running: ${data.detail}`);
      return;
    }
    render(data);
  } catch (error) {
    setText(panel.querySelector("[data-auth-cache-summary]"), `could not read it: ${error.message}`);
  } finally {
    refreshButton.disabled = false;
  }
}

const FIELDS = { present_id_token: ["id_token", "token_type"], enter_pin: ["pin"], present_contract: ["emaid"] };

// A driver's action at the chosen EVSE, or (embedded demo) the sandbox CSMS's.
function request(button) {
  if (button.dataset.authCsms) return postJSON(`/api/sandbox/${button.dataset.authCsms}/`, { station_id: stationId });
  const command = button.dataset.authCommand;
  const body = { command, evse_id: Number(evseSelect.value) };
  for (const name of FIELDS[command] || []) body[name] = input(name).value.trim();
  return postJSON(url("command"), body);
}

panel.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-auth-command], button[data-auth-csms]");
  if (!button) return;
  button.disabled = true;
  outcome.dataset.state = "pending";
  outcome.textContent = `${button.textContent}…`;
  const result = await request(button);
  outcome.dataset.state = result.ok ? "ok" : "error";
  outcome.textContent = outcomeText(result);
  button.disabled = false;
  refresh();
});

refreshButton.addEventListener("click", refresh);
setInterval(() => {
  if (!document.hidden) refresh();
}, REFRESH_MS);
refresh();
