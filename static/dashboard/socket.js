// A websocket that comes back by itself. Browser tests wait for
// window.websocketConnected, so it mirrors the state of the current socket.

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
// A socket that stays open this long counts as healthy and resets the backoff; one that
// the server accepts and drops at once (e.g. a logged-out session) keeps backing off.
const HEALTHY_AFTER_MS = 5000;

window.websocketConnected = false;

function showState(state) {
  const el = document.querySelector("[data-connection]");
  if (!el) return;
  el.dataset.connection = state;
  el.textContent = { open: "Live", connecting: "Connecting…", closed: "Reconnecting…" }[state];
}

export function openSocket(path, { onOpen, onMessage } = {}) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}${path}`;
  let ws = null;
  let attempt = 0;
  let openedAt = 0;
  let retryTimer = null;
  let stopped = false;

  function connect() {
    retryTimer = null;
    showState("connecting");
    ws = new WebSocket(url);
    ws.addEventListener("open", () => {
      openedAt = Date.now();
      window.websocketConnected = true;
      showState("open");
      if (onOpen) onOpen();
    });
    ws.addEventListener("message", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (onMessage) onMessage(data);
    });
    ws.addEventListener("close", () => {
      window.websocketConnected = false;
      showState("closed");
      if (openedAt && Date.now() - openedAt > HEALTHY_AFTER_MS) attempt = 0;
      openedAt = 0;
      if (!stopped) schedule();
    });
    // An error is always followed by close, which does the reconnecting.
    ws.addEventListener("error", () => {});
  }

  function schedule() {
    const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** attempt);
    attempt += 1;
    // Jitter keeps many open tabs from reconnecting in lockstep after a server restart.
    const delay = base / 2 + Math.random() * (base / 2);
    retryTimer = setTimeout(connect, delay);
  }

  // Reconnect at once when the tab comes back, instead of waiting out a long backoff.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && retryTimer) {
      clearTimeout(retryTimer);
      attempt = 0;
      connect();
    }
  });

  connect();

  return {
    send(message) {
      if (ws && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify(message));
        return true;
      }
      return false;
    },
    close() {
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      if (ws) ws.close();
    },
  };
}

// Collects items between frames and hands them over once per animation frame, so a burst
// of messages costs one DOM pass. Background tabs get no frames; the timeout keeps the
// queue from growing unbounded there.
export function frameBatcher(apply) {
  let scheduled = false;
  const run = () => {
    if (!scheduled) return;
    scheduled = false;
    apply();
  };
  return function request() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(run);
    setTimeout(run, 1000);
  };
}
