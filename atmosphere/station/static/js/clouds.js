// Clouds: every worker with its capacity, load, current job and heartbeat; dead ones in red.
import { h, replace, num, pill, panel, empty, ago } from "./dom.js";

const COLUMNS = ["Cloud", "State", "Types", "Slots", "Load", "Current job", "Heartbeat", "Done", "Failed"];

export function cloudsView({ el, store, setTitle }) {
  setTitle("Clouds", "Workers registered in the database, refreshed live");
  let filter = "";
  let stateFilter = "";
  const summary = h("div", { class: "tiles" });
  const search = h("input", { class: "field grow", type: "search", placeholder: "Filter by name, host or type…", id: "cloud-filter" });
  const states = h("select", { class: "field", id: "cloud-state" },
    ["", "busy", "idle", "draining", "dead"].map((s) => h("option", { value: s }, s || "Any state")));
  const count = h("span", { class: "muted" });
  const tbody = h("tbody");
  const table = h("div", { class: "table-wrap" }, h("table", { class: "data", id: "clouds-table" },
    h("thead", null, h("tr", null, COLUMNS.map((c, i) => h("th", { class: i >= 7 ? "num" : null }, c)))), tbody));
  const emptyNote = h("div");
  const fleet = h("div", { class: "fleet", id: "fleet" });
  el.append(summary, panel("Fleet", "one square per cloud · click to find it", h("div", { class: "panel-body" }, fleet)),
    panel("Registered clouds", null, h("div", { class: "toolbar" }, search, states, count), table, emptyNote));
  fleet.addEventListener("click", (ev) => {
    const cell = ev.target.closest("[data-cloud]");
    if (!cell) return;
    search.value = cell.dataset.cloud;
    filter = cell.dataset.cloud.toLowerCase();
    render(store.live);
  });
  search.addEventListener("input", () => { filter = search.value.trim().toLowerCase(); render(store.live); });
  states.addEventListener("change", () => { stateFilter = states.value; render(store.live); });

  let ageCells = [];
  let rowCache = new Map();
  const ticker = setInterval(tickAges, 1000);

  function tickAges() {
    if (!store.live) return;
    const drift = (store.serverNow() - store.live.now) / 1000;
    for (const [cell, row] of ageCells) cell.textContent = ageText(row, drift);
  }

  function render(s) {
    if (!s) return;
    const c = s.cloud_summary;
    replace(summary,
      miniTile("Up", num(c.up), "good"), miniTile("Dead", num(c.dead), c.dead ? "bad" : ""),
      miniTile("Busy", num(c.busy), "warn"), miniTile("Idle", num(c.idle), "info"),
      miniTile("Slots in use", `${num(c.slots_used)} / ${num(c.slots)}`, ""),
      miniTile("Draining", num(c.draining), ""));
    renderFleet(fleet, s.clouds);
    const rows = s.clouds.filter((r) => matches(r, filter, stateFilter));
    count.textContent = `${num(rows.length)} of ${num(s.clouds.length)}`;
    // Rows are keyed by cloud and rebuilt only when something shown changed; heartbeats
    // alone (every cloud, every few seconds) only touch the age cell.
    const next = new Map();
    ageCells = [];
    const frag = document.createDocumentFragment();
    for (const r of rows) {
      const { heartbeat, heartbeat_age: age, ...shown } = r;
      const key = JSON.stringify(shown) + (age !== null && age > s.dead_after / 2 ? "!" : "");
      let entry = rowCache.get(r.id);
      if (!entry || entry.key !== key) {
        const cells = [];
        entry = { key, tr: cloudRow(r, s.dead_after, cells), age: cells[0][0] };
      }
      entry.row = r;
      entry.age.textContent = ageText(r, 0);
      ageCells.push([entry.age, r]);
      next.set(r.id, entry);
      frag.appendChild(entry.tr);
    }
    rowCache = next;
    tbody.replaceChildren(frag);
    replace(emptyNote, s.clouds.length ? (rows.length ? null : empty("No cloud matches", "Clear the filter to see them all."))
      : empty("No clouds registered", "Start one with `atmosphere cloud your.module` and it appears here."));
  }

  return { live: render, destroy() { clearInterval(ticker); } };
}

// The whole fleet at a glance: a square per cloud, coloured by state (dead first).
function renderFleet(el, clouds) {
  const frag = document.createDocumentFragment();
  for (const r of clouds) {
    frag.appendChild(h("i", { class: `cell ${r.state}`, title: `${r.name} · ${r.state}`, dataset: { cloud: r.id } }));
  }
  el.replaceChildren(frag);
}

function miniTile(label, value, tone) {
  return h("div", { class: `panel tile ${tone}` }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));
}

function matches(r, text, state) {
  if (state && r.state !== state) return false;
  if (!text) return true;
  return [r.name, r.id, r.host, ...r.types].some((v) => String(v ?? "").toLowerCase().includes(text));
}

function ageText(row, drift) {
  if (row.heartbeat_age === null) return "never";
  return ago(row.heartbeat_age + Math.max(0, drift));
}

function cloudRow(r, deadAfter, ageCells) {
  const used = Math.min(r.held, r.capacity);
  const fill = h("i");
  fill.style.width = `${r.capacity ? Math.round((used / r.capacity) * 100) : 0}%`;
  const age = h("span", { class: r.dead ? "age-bad" : r.heartbeat_age > deadAfter / 2 ? "age-warn" : "" }, ageText(r, 0));
  ageCells.push([age, r]);
  const current = r.current.length
    ? h("a", { href: `#/job/${encodeURIComponent(r.current[0].id)}` },
      h("span", { class: "chip" }, r.current[0].type), " ", h("span", { class: "ellipsis" }, r.current[0].name),
      r.current.length > 1 ? h("span", { class: "muted" }, ` +${r.held - 1}`) : null)
    : h("span", { class: "faint" }, "—");
  return h("tr", { class: r.dead ? "dead" : "", dataset: { cloud: r.id } },
    h("td", null, h("div", null, h("b", null, r.name)),
      h("div", { class: "muted mono" }, r.host ? `${r.host}${r.pid ? `:${r.pid}` : ""}` : r.id)),
    h("td", null, r.dead ? pill("DEAD", "dead") : pill(r.state)),
    h("td", { class: "types" }, r.types.map((t) => h("span", { class: "chip" }, t))),
    h("td", { class: "nowrap" }, h("span", { class: `bar ${used >= r.capacity ? "full" : ""}` }, fill),
      `${used}/${r.capacity}`, r.lent ? h("span", { class: "muted" }, ` (+${r.lent} lent)`) : null),
    h("td", { class: "nowrap" }, num(r.load, 2)),
    h("td", { class: "nowrap" }, current),
    h("td", { class: "nowrap" }, age),
    h("td", { class: "num" }, num(r.done)),
    h("td", { class: `num ${r.failed > 0.05 * (r.done + r.failed) ? "age-warn" : ""}` }, num(r.failed)));
}
