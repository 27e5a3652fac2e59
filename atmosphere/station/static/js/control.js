// Schedules (pause, resume, run now) and the dispatchers (leader and standbys).
import { h, replace, pill, panel, empty, table, clock, ago, until, toast, svg } from "./dom.js";

function scheduleSpec(s) {
  if (s.describe) return h("span", null, h("code", null, s.describe));
  if (s.cron) return h("span", null, h("code", null, s.cron), s.tz ? h("span", { class: "muted" }, ` ${s.tz}`) : null);
  if (s.every !== null && s.every !== undefined) return h("span", null, `every ${s.every}s`);
  return h("span", { class: "faint" }, "—");
}

export function schedulesView({ el, store, api, setTitle }) {
  setTitle("Schedules", "Periodic jobs fired by the leading dispatcher");
  const body = h("div", { id: "schedules" });
  el.append(panel("Schedules", null, body));
  let ticks = [];
  const ticker = setInterval(() => {
    const now = store.serverNow();
    for (const [cell, when, fn] of ticks) cell.textContent = fn((when - now) / 1000);
  }, 1000);

  async function act(name, verb, label, button) {
    button.disabled = true;
    try {
      await api.post(`/api/schedules/${encodeURIComponent(name)}/${verb}`);
      toast(`${label}: ${name}`);
    } catch (err) {
      toast(`${label} failed: ${err.message}`, true);
      button.disabled = false;
    }
  }

  function render(s) {
    ticks = [];
    if (!s.schedules.length) {
      replace(body, empty("No schedules", "Add one with `atmosphere schedules add` or @cloud.periodic(...)."));
      return;
    }
    const now = store.serverNow();
    replace(body, table([{ title: "Name" }, { title: "When" }, { title: "Submits" }, { title: "Status" },
      { title: "Next fire" }, { title: "Last fire" }, { title: "" }], s.schedules, (sc) => {
      const next = h("span", null, sc.paused ? "paused" : sc.next ? until((sc.next - now) / 1000) : "—");
      // The latest fire, scheduled or run by hand ("Run now" records last_manual).
      const manual = sc.last_manual && (!sc.last || sc.last_manual > sc.last);
      const lastAt = manual ? sc.last_manual : sc.last;
      const last = h("span", { class: "muted" }, lastAt ? ago((now - lastAt) / 1000) : "never");
      if (sc.next && !sc.paused) ticks.push([next, sc.next, until]);
      if (lastAt) ticks.push([last, lastAt, (d) => ago(-d)]);
      const toggle = h("button", { class: "btn small", type: "button", dataset: { action: sc.paused ? "resume" : "pause" } },
        sc.paused ? "Resume" : "Pause");
      toggle.addEventListener("click", () => act(sc.name, sc.paused ? "resume" : "pause", sc.paused ? "Resumed" : "Paused", toggle));
      const run = h("button", { class: "btn small primary", type: "button", dataset: { action: "run" } }, "Run now");
      run.addEventListener("click", () => act(sc.name, "run", "Fire requested", run));
      return h("tr", { dataset: { schedule: sc.name } },
        h("td", null, h("b", null, sc.name)),
        h("td", null, scheduleSpec(sc)),
        h("td", null, h("span", { class: "chip" }, sc.job.type ?? "?"), " ", h("span", { class: "muted" }, sc.job.name ?? "")),
        h("td", { class: "schedule-status nowrap" }, sc.paused ? pill("paused") : pill("active"),
          sc.run_now ? [" ", pill("run requested", "accent")] : null),
        h("td", { class: "nowrap", title: clock(sc.next) }, next),
        h("td", { class: "nowrap", title: clock(lastAt) }, sc.last_job && !manual
          ? h("a", { href: `#/job/${encodeURIComponent(sc.last_job)}` }, last) : last,
          manual ? h("span", { class: "faint" }, " · by hand") : null),
        h("td", { class: "num" }, h("span", { class: "btns" }, toggle, run)));
    }, { id: "schedules-table" }));
  }
  return { live: render, destroy() { clearInterval(ticker); } };
}

const CROWN = "M3 8l4.5 3.5L12 5l4.5 6.5L21 8l-2 10H5z";

export function dispatchersView({ el, store, setTitle }) {
  setTitle("Dispatchers", "One leader holds the lease; standbys take over when it lapses");
  const lease = h("div", { class: "panel" });
  const list = h("div");
  el.append(lease, panel("Dispatchers", "announced in live/dispatchers", list));

  function render(s) {
    const { lease: l, dispatchers } = s.leadership;
    const now = store.serverNow();
    replace(lease, h("div", { class: "lease", id: "lease" },
      h("div", { class: `crown ${l.valid ? "" : "none"}` }, svg(CROWN)),
      h("div", null, h("div", { class: "muted" }, "Leader"), h("div", { class: "big" }, l.valid ? String(l.owner) : "No leader")),
      h("div", null, h("div", { class: "muted" }, "Epoch"), h("div", { class: "big" }, l.epoch ?? "—")),
      h("div", null, h("div", { class: "muted" }, "Lease"), h("div", { class: "big" },
        l.expires ? (l.valid ? until((l.expires - now) / 1000).replace("in ", "expires in ") : `lapsed ${ago((now - l.expires) / 1000)}`) : "—")),
      h("div", null, h("div", { class: "muted" }, "Standbys"), h("div", { class: "big" }, String(dispatchers.filter((d) => !d.leader).length)))));
    replace(list, dispatchers.length ? table([{ title: "Dispatcher" }, { title: "Role" }, { title: "Host" }, { title: "Started" }, { title: "Heartbeat" }],
      dispatchers, (d) => h("tr", null,
        h("td", null, h("b", { class: "mono" }, d.id)),
        h("td", null, d.leader ? pill("leader", "good") : pill(d.role || "standby", "info")),
        h("td", { class: "muted" }, `${d.host ?? "?"}${d.pid ? ` · pid ${d.pid}` : ""}`),
        h("td", { class: "muted nowrap" }, clock(d.started)),
        h("td", { class: d.heartbeat_age > s.dead_after ? "age-bad" : "" }, ago(d.heartbeat_age))), { id: "dispatchers-table" })
      : empty("No dispatcher announced", "Run `atmosphere dispatcher`: without one, jobs wait in the queue."));
  }
  return { live: render };
}
