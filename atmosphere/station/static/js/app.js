// The Weather Station page: hash routing, the live stream, and a tiny store the views read.
import * as api from "./api.js";
import { h, num, replace, toast } from "./dom.js";
import { overviewView } from "./overview.js";
import { cloudsView } from "./clouds.js";
import { jobsView, jobView, failedView, learnCloudNames } from "./jobs.js";
import { schedulesView, dispatchersView } from "./control.js";

const VIEWS = {
  overview: overviewView,
  clouds: cloudsView,
  jobs: jobsView,
  job: jobView,
  failed: failedView,
  schedules: schedulesView,
  dispatchers: dispatchersView,
};

// What every view can read; `offset` maps the server clock to ours for ages and countdowns.
export const store = {
  live: null,
  stats: null,
  session: null,
  offset: 0,
  window: Number(localStorage.getItem("atmosphere-window") || 60),
  serverNow() { return Date.now() + this.offset; },
};

let current = null; // { name, instance }
let source = null;

function route() {
  const hash = location.hash.replace(/^#\/?/, "") || "overview";
  const [name, ...rest] = hash.split("/");
  const param = rest.length ? decodeURIComponent(rest.join("/")) : null;
  return { name: VIEWS[name] ? name : "overview", param };
}

function mount() {
  const { name, param } = route();
  if (current?.instance?.destroy) current.instance.destroy();
  const el = document.getElementById("view");
  replace(el);
  const instance = VIEWS[name]({ el, param, store, api, setTitle });
  current = { name, instance };
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.view === (name === "job" ? "jobs" : name));
  }
  document.getElementById("window-picker").hidden = name !== "overview";
  if (store.live) instance.live?.(store.live);
  if (store.stats) instance.stats?.(store.stats);
  window.scrollTo(0, 0);
}

function setTitle(title, subtitle = "") {
  document.getElementById("title").textContent = title;
  document.getElementById("subtitle").textContent = subtitle;
  document.title = `${title} · Weather Station`;
}

function onLive(snapshot) {
  const t0 = performance.now();
  store.offset = snapshot.now - Date.now();
  store.live = snapshot;
  learnCloudNames(snapshot);
  badges(snapshot);
  connection(snapshot.connected ? "live" : "down",
    snapshot.connected ? "Live" : "Database unreachable, retrying…");
  current?.instance?.live?.(snapshot);
  // Exposed for the browser tests, which measure how long a frame takes to render.
  const stats = window.__station ?? { frames: 0, renders: [] };
  stats.frames += 1;
  stats.lastRenderMs = performance.now() - t0;
  stats.renders = [...stats.renders.slice(-49), { view: current?.name, ms: stats.lastRenderMs }];
  window.__station = stats;
}

function onStats(series) {
  store.stats = series;
  current?.instance?.stats?.(series);
}

function badges(s) {
  const clouds = s.cloud_summary;
  const cloudBadge = document.getElementById("badge-clouds");
  cloudBadge.textContent = clouds.total ? (clouds.dead ? `${clouds.dead} dead` : num(clouds.up)) : "";
  cloudBadge.classList.toggle("badge-bad", clouds.dead > 0);
  const flying = s.queued + s.assigned + s.delayed;
  document.getElementById("badge-jobs").textContent = flying ? num(flying) : "";
  document.getElementById("badge-schedules").textContent = s.schedules.length ? num(s.schedules.length) : "";
}

function connection(state, text) {
  const el = document.getElementById("conn");
  el.className = `conn ${state}`;
  el.querySelector("span").textContent = text;
}

function connect() {
  if (source) source.close();
  source = api.stream(store.window, {
    live: onLive,
    stats: onStats,
    status: (up) => { if (!up) connection("down", "Reconnecting…"); },
  });
}

function windowPicker() {
  const el = document.getElementById("window-picker");
  const options = [[15, "15m"], [60, "1h"], [360, "6h"], [1440, "24h"]];
  replace(el, options.map(([minutes, label]) => h("button", {
    type: "button",
    class: minutes === store.window ? "on" : "",
    on: {
      click: async () => {
        store.window = minutes;
        localStorage.setItem("atmosphere-window", String(minutes));
        windowPicker();
        onStats(await api.get(`/api/overview?window=${minutes}`));
        connect();
      },
    },
  }, label)));
}

function themeToggle() {
  document.getElementById("theme-toggle").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("atmosphere-theme", next);
    mount();
  });
}

// The failed count lives in jobs/ (not streamed): look every half minute, one small query.
async function failedBadge() {
  try {
    const page = await api.get("/api/failed?limit=99");
    document.getElementById("badge-failed").textContent = page.jobs.length ? `${page.jobs.length}${page.next ? "+" : ""}` : "";
  } catch { /* the connection indicator already says what is wrong */ }
}

async function main() {
  themeToggle();
  windowPicker();
  try {
    store.session = await api.session();
    document.getElementById("root-name").textContent = `/${store.session.root}`;
  } catch (err) {
    toast(`Cannot reach the station: ${err.message}`, true);
  }
  window.addEventListener("hashchange", mount);
  mount();
  connect();
  failedBadge();
  setInterval(failedBadge, 30_000);
  window.addEventListener("atmosphere:failed-changed", failedBadge);
}

main();
