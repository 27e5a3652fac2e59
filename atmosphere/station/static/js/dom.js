// DOM building and formatting. Every piece of data becomes a text node: nothing from the
// database is ever parsed as HTML (no innerHTML anywhere in the station).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on")) throw new Error("use {on: {...}} for handlers");
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function svg(path, cls) {
  const ns = "http://www.w3.org/2000/svg";
  const el = document.createElementNS(ns, "svg");
  el.setAttribute("viewBox", "0 0 24 24");
  if (cls) el.setAttribute("class", cls);
  const p = document.createElementNS(ns, "path");
  p.setAttribute("d", path);
  el.appendChild(p);
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// ---- formatting --------------------------------------------------------------------------

export function num(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function rate(n) {
  if (n === null || n === undefined) return "–";
  if (n >= 100) return num(n, 0);
  if (n >= 10) return num(n, 1);
  return num(n, 2);
}

export function ms(v) {
  if (v === null || v === undefined) return "–";
  if (v < 1) return `${num(v, 2)} ms`;
  if (v < 1000) return `${num(v, 0)} ms`;
  if (v < 60000) return `${num(v / 1000, v < 10000 ? 2 : 1)} s`;
  return `${num(v / 60000, 1)} min`;
}

export function secs(v) {
  return v === null || v === undefined ? "–" : ms(v * 1000);
}

export function ago(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  if (!Number.isFinite(seconds)) return "never";
  if (seconds < 1) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${Math.floor(seconds % 60)}s ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

export function until(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 0) return ago(-seconds);
  if (seconds < 1) return "now";
  if (seconds < 60) return `in ${Math.ceil(seconds)}s`;
  if (seconds < 3600) return `in ${Math.floor(seconds / 60)}m ${Math.floor(seconds % 60)}s`;
  if (seconds < 86400) return `in ${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `in ${Math.floor(seconds / 86400)}d`;
}

export function clock(msEpoch) {
  if (!msEpoch) return "–";
  const d = new Date(msEpoch);
  const today = new Date();
  const time = d.toLocaleTimeString(undefined, { hour12: false });
  return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

const STATE_TONE = {
  queued: "info", delayed: "accent", assigned: "warn", retrying: "warn",
  succeeded: "good", failed: "bad", discarded: "", busy: "warn", idle: "good",
  dead: "dead", draining: "accent", up: "good", paused: "warn", active: "good",
};

export function pill(text, tone) {
  return h("span", { class: `pill ${tone ?? STATE_TONE[text] ?? ""}` }, text);
}

// JSON, pretty-printed and coloured with spans whose content is set as text.
export function jsonBlock(value, cls = "") {
  const pre = h("pre", { class: `code ${cls}` });
  const text = value === undefined ? "null" : JSON.stringify(value, null, 2);
  const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) pre.appendChild(document.createTextNode(text.slice(last, m.index)));
    let cls2 = "j-num";
    if (m[1]) cls2 = m[2] ? "j-key" : "j-str";
    else if (m[3]) cls2 = "j-lit";
    pre.appendChild(h("span", { class: cls2 }, m[1] ?? m[3] ?? m[4]));
    if (m[2]) pre.appendChild(document.createTextNode(m[2]));
    last = m.index + m[0].length;
  }
  if (last < text.length) pre.appendChild(document.createTextNode(text.slice(last)));
  return pre;
}

export function panel(title, hint, ...body) {
  return h("div", { class: "panel" },
    h("div", { class: "panel-head" }, h("h2", null, title), hint ? h("span", { class: "hint" }, hint) : null),
    ...body);
}

export function empty(title, text) {
  return h("div", { class: "empty" }, h("b", null, title), text);
}

export function table(columns, rows, rowFn, opts = {}) {
  const thead = h("thead", null, h("tr", null, columns.map((c) =>
    h("th", { class: c.num ? "num" : null }, c.title))));
  const tbody = h("tbody");
  const frag = document.createDocumentFragment();
  for (const row of rows) frag.appendChild(rowFn(row));
  tbody.appendChild(frag);
  return h("div", { class: "table-wrap" }, h("table", { class: "data", id: opts.id ?? null }, thead, tbody));
}

export function toast(text, bad = false) {
  const el = h("div", { class: `toast ${bad ? "bad" : ""}`, role: "status" }, text);
  document.getElementById("toasts").appendChild(el);
  setTimeout(() => el.remove(), 4000);
}
