// The live OCPP message log of one station: newest first, capped, filterable by action.
// Frames arrive live from the websocket and again from the database (the detail API),
// so they are de-duplicated on their identity and inserted by time rather than trusted
// to come in order. The identity is given once, where the frame is seen, and both copies
// carry it: a timestamp taken twice differed in its 7th decimal and showed frames twice.
import { el } from "./render.js";
import { frameBatcher } from "./socket.js";

const MAX_ROWS = 500;
const PREVIEW_CHARS = 140;

function frameKey(f) {
  return String(f.id);
}

function clock(seconds) {
  const d = new Date(seconds * 1000);
  const ms = String(d.getMilliseconds()).padStart(3, "0");
  return `${d.toLocaleTimeString([], { hour12: false })}.${ms}`;
}

export function messageLog({ body, filter, count }) {
  const seen = new Set();
  const actions = new Set();
  // unique_id → action of the CALL, so a CALLRESULT or CALLERROR can be labelled.
  const callActions = new Map();
  const queue = [];

  function buildRow(f) {
    const action = f.action || callActions.get(f.unique_id) || "";
    const isIn = f.direction === "in";
    const preview = JSON.stringify(f.payload ?? null);
    const details = el("details", {}, el("summary", {
      text: preview.length > PREVIEW_CHARS ? `${preview.slice(0, PREVIEW_CHARS)}…` : preview,
    }));
    const tr = el(
      "tr",
      {
        "data-frame": true,
        "data-action": action,
        "data-direction": f.direction,
        "data-type": f.type,
        "data-unique-id": f.unique_id,
        "data-frame-id": f.id,
      },
      el("td", { class: "t", text: clock(f.at), title: new Date(f.at * 1000).toISOString() }),
      el("td", {
        class: `dir dir-${isIn ? "in" : "out"}`,
        text: isIn ? "← in" : "→ out",
        title: isIn ? "Received from the CSMS" : "Sent to the CSMS",
      }),
      el("td", { class: `ty-${f.type}`, text: f.type }),
      el("td", { text: action || "—", class: f.action ? "" : "sub" }),
      el("td", { class: "num", text: f.latency_ms == null ? "" : Number(f.latency_ms).toFixed(1) }),
      el("td", {}, details),
    );
    tr._order = f.id;
    tr._key = frameKey(f);
    tr._payload = f.payload;
    const current = filter.value;
    if (current && current !== action) tr.hidden = true;
    return tr;
  }

  function insert(tr) {
    const first = body.firstElementChild;
    if (!first || tr._order >= first._order) {
      body.prepend(tr);
      return;
    }
    let node = first;
    while (node && node._order > tr._order) node = node.nextElementSibling;
    body.insertBefore(tr, node);
  }

  function addAction(action) {
    if (!action || actions.has(action)) return;
    actions.add(action);
    // Options stay sorted so the select is easy to scan.
    const option = el("option", { value: action, text: action });
    const next = [...filter.options].find((o) => o.value && o.value.localeCompare(action) > 0);
    filter.insertBefore(option, next || null);
  }

  const flush = frameBatcher(() => {
    const batch = queue.splice(0).sort((a, b) => a.id - b.id);
    for (const f of batch) {
      const key = frameKey(f);
      if (seen.has(key)) continue;
      seen.add(key);
      if (f.type === "CALL" && f.action) callActions.set(f.unique_id, f.action);
      const tr = buildRow(f);
      addAction(tr.dataset.action);
      insert(tr);
    }
    while (body.children.length > MAX_ROWS) {
      const last = body.lastElementChild;
      seen.delete(last._key);
      callActions.delete(last.dataset.uniqueId);
      last.remove();
    }
    if (count) count.textContent = `${body.children.length} shown`;
  });

  filter.addEventListener("change", () => {
    const current = filter.value;
    for (const tr of body.children) tr.hidden = !!current && tr.dataset.action !== current;
  });

  // Pretty JSON is built on first open only: most payloads are never looked at.
  body.addEventListener("click", (event) => {
    const summary = event.target.closest("summary");
    if (!summary) return;
    const details = summary.parentElement;
    if (details.querySelector("pre")) return;
    const tr = details.closest("tr");
    details.append(el("pre", { text: JSON.stringify(tr._payload, null, 2) }));
  });

  return {
    add(frames) {
      if (!frames || !frames.length) return;
      queue.push(...frames);
      flush();
    },
  };
}
