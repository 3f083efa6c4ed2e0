// Fetch helpers shared by the dashboard pages. Every POST carries Django's CSRF token.

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

// The cookie is preferred because Django rotates the token at login; the rendered input
// is the fallback for deployments that make the cookie HttpOnly.
export function csrfToken() {
  const fromCookie = cookie("csrftoken");
  if (fromCookie) return fromCookie;
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

async function readJSON(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return null;
  }
}

// An expired session turns API calls into redirects to the login page (HTML).
function signedOut(response) {
  return response.redirected && new URL(response.url).pathname.includes("login");
}
const SIGNED_OUT = "signed out: reload the page to log in again";

export async function getJSON(url, { signal } = {}) {
  const response = await fetch(url, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
    signal,
  });
  const body = await readJSON(response);
  if (signedOut(response)) throw new Error(SIGNED_OUT);
  if (!response.ok || body === null) {
    const detail = (body && body.detail) || `HTTP ${response.status}`;
    throw new Error(detail);
  }
  return body;
}

// Never throws: the caller shows whatever comes back as the outcome of a click, so a
// network failure or a Django error page becomes {ok: false, status, detail} too.
export async function postJSON(url, payload) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: JSON.stringify(payload),
    });
  } catch (error) {
    return { ok: false, status: "Error", detail: `network: ${error.message}` };
  }
  if (signedOut(response)) return { ok: false, status: "Error", detail: SIGNED_OUT };
  const body = await readJSON(response);
  if (body && typeof body === "object" && "ok" in body) return body;
  const reasons = { 403: "forbidden (logged out or CSRF)", 404: "not found" };
  return {
    ok: false,
    status: "Error",
    detail: (body && body.detail) || reasons[response.status] || `HTTP ${response.status}`,
  };
}

// "Accepted", "Rejected: idToken not accepted", "Offline: station is not connected".
export function outcomeText(result) {
  const status = result.status || (result.ok ? "Accepted" : "Failed");
  return result.detail ? `${status}: ${result.detail}` : status;
}

export const api = {
  stations: (params, opts) => getJSON(`/api/stations/?${new URLSearchParams(params)}`, opts),
  station: (id) => getJSON(`/api/stations/${encodeURIComponent(id)}/`),
  variables: (id) => getJSON(`/api/stations/${encodeURIComponent(id)}/variables/`),
  command: (id, body) => postJSON(`/api/stations/${encodeURIComponent(id)}/command/`, body),
  fleet: (command) => postJSON("/api/fleet/command/", { command }),
  remoteStart: (body) => postJSON("/api/sandbox/remote-start/", body),
  remoteStop: (body) => postJSON("/api/sandbox/remote-stop/", body),
};
