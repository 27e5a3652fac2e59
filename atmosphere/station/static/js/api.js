// Talking to the station: JSON GETs, CSRF-protected POSTs, and the live event stream.

let csrf = null;

export async function session() {
  const data = await get("/api/session");
  csrf = data.csrf;
  return data;
}

export async function get(url) {
  const res = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
  return body;
}

export async function post(url, retried = false) {
  const res = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "x-csrf-token": csrf ?? "", accept: "application/json" },
  });
  if (res.status === 403 && !retried) {
    // A restarted station has a new CSRF token (without a configured token it is random).
    await session();
    return post(url, true);
  }
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = { error: text }; }
  if (!res.ok || body.ok === false) throw new Error(body.error || `${res.status} ${res.statusText}`);
  return body;
}

// EventSource reconnects by itself; we only report the state and hand over frames.
export function stream(windowMinutes, handlers) {
  const es = new EventSource(`/api/events?window=${windowMinutes}`);
  es.addEventListener("live", (ev) => handlers.live(JSON.parse(ev.data)));
  es.addEventListener("stats", (ev) => handlers.stats(JSON.parse(ev.data)));
  es.addEventListener("open", () => handlers.status(true));
  es.addEventListener("error", () => handlers.status(false));
  return es;
}
