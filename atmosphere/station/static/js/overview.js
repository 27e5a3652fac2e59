// Overview: headline tiles, four charts over the chosen window, and the queues right now.
import { h, replace, num, rate, ms, secs, pill, panel, empty, table, ago } from "./dom.js";
import { TimeChart, colorFor, legend, paintSwatches } from "./charts.js";

function tile(label, tone) {
  const value = h("div", { class: "value" }, "–");
  const foot = h("div", { class: "foot" }, "\u00a0");
  const el = h("div", { class: `panel tile ${tone ?? ""}` }, h("div", { class: "label" }, label), value, foot);
  return { el, set(v, unit, footText, newTone) {
    replace(value, v, unit ? h("small", null, unit) : null);
    value.title = String(v);
    foot.textContent = footText || "\u00a0";
    if (newTone !== undefined) {
      const long = el.classList.contains("long");
      el.className = `panel tile ${newTone}${long ? " long" : ""}`;
    }
  } };
}

function chartPanel(title, hint, options) {
  const area = h("div", { class: "chart" });
  const leg = h("div");
  const el = panel(title, hint, h("div", { class: "panel-body flush" }, area), leg);
  return { el, chart: new TimeChart(area, options), leg };
}

export function overviewView({ el, store, setTitle }) {
  setTitle("Overview", "Throughput, latency, failures and queues across every job type");
  const tiles = {
    rate: tile("Throughput", "info"),
    latency: tile("Latency p50 / p95"),
    queued: tile("Queued"),
    clouds: tile("Clouds", "good"),
    failed: tile("Failures"),
    leader: tile("Leader"),
  };
  const charts = {
    throughput: chartPanel("Jobs per second", "finished per minute, by type", { format: rate, area: true }),
    latency: chartPanel("Latency", "submit to finish, p50 and p95", { format: (v) => ms(v) }),
    failures: chartPanel("Failures", "per minute, stacked by type", { format: (v) => num(v), stacked: true, integer: true }),
    queue: chartPanel("Queue depth", "largest per minute, by type", { format: (v) => num(v), area: true, integer: true }),
  };
  const queues = h("div");
  const flying = h("div");
  const healthBar = h("div", { class: "health", id: "health" });
  let lastSummary = null;
  append(el,
    healthBar,
    h("div", { class: "tiles" }, Object.values(tiles).map((t) => t.el)),
    h("div", { class: "grid-2" }, Object.values(charts).map((c) => c.el)),
    h("div", { class: "grid-3" },
      panel("Queues now", "pending jobs per type", queues),
      panel("In flight", "newest queued and running jobs", flying)));

  return {
    live(s) {
      tiles.queued.set(num(s.queued), null,
        `${num(s.assigned)} running · ${num(s.delayed)} delayed`, s.queued > 0 ? "warn" : "");
      const c = s.cloud_summary;
      tiles.clouds.set(num(c.up), c.dead ? `/ ${num(c.total)}` : null,
        c.total ? `${num(c.busy)} busy · ${num(c.idle)} idle${c.dead ? ` · ${c.dead} dead` : ""}` : "none registered yet",
        c.dead ? "bad" : c.up ? "good" : "warn");
      const lease = s.leadership.lease;
      const standbys = s.leadership.dispatchers.filter((d) => !d.leader).length;
      const owner = lease.valid ? String(lease.owner) : "none";
      tiles.leader.el.classList.toggle("long", owner.length > 9);
      tiles.leader.set(owner, null,
        lease.valid ? `epoch ${lease.epoch} · ${standbys} standby` : "no dispatcher holds the lease",
        lease.valid ? "good" : "bad");
      renderQueues(queues, s.queues);
      renderFlying(flying, s.in_flight, store);
      renderHealth(healthBar, s, lastSummary);
    },
    stats(series) {
      const sum = series.summary;
      lastSummary = sum;
      if (store.live) renderHealth(healthBar, store.live, sum);
      tiles.rate.set(rate(sum.rate), "jobs/s", `${compact(sum.succeeded_window)} done in window`);
      tiles.latency.set(sum.p50 === null ? "–" : ms(sum.p50), null,
        sum.p95 === null ? "none finished lately" : `p95 ${ms(sum.p95)} · last 5 min`);
      tiles.failed.set(num(sum.failed_window), null, `${num(sum.failed_recent)} in the last 5 min`,
        sum.failed_window > 0 ? "bad" : "good");
      const types = series.types;
      const colors = types.map((_, i) => colorFor(i));
      const xs = series.minutes;
      const perType = (key) => [xs, ...types.map((t) => series[key][t])];
      draw(charts.throughput, types, colors, perType("throughput"));
      draw(charts.failures, types, colors, perType("failures"));
      draw(charts.queue, types, colors, perType("queue"));
      draw(charts.latency, ["p50", "p95"], ["#38bdf8", "#f472b6"], [xs, series.p50, series.p95]);
    },
  };
}

// One line that answers "is everything all right?" before any chart is read.
export function healthIssues(s, summary) {
  const issues = [];
  if (!s.connected) issues.push(["bad", "the station cannot reach the database"]);
  if (!s.leadership.lease.valid) issues.push(["bad", "no dispatcher holds the lease: jobs are not being assigned"]);
  const c = s.cloud_summary;
  if (c.dead) issues.push(["bad", `${c.dead} cloud${c.dead > 1 ? "s" : ""} not heard from in over ${secs(s.dead_after)}`]);
  const typesServed = new Set(s.clouds.filter((r) => !r.dead).flatMap((r) => r.types));
  const orphans = Object.keys(s.queues).filter((t) => !typesServed.has(t));
  if (orphans.length) issues.push(["warn", `no live cloud runs ${orphans.join(", ")}`]);
  if (summary && summary.failed_recent) issues.push(["warn", `${summary.failed_recent} job${summary.failed_recent > 1 ? "s" : ""} failed in the last 5 minutes`]);
  return issues;
}

function renderHealth(el, s, summary) {
  const issues = healthIssues(s, summary);
  const worst = issues.some(([tone]) => tone === "bad") ? "bad" : issues.length ? "warn" : "good";
  el.className = `health ${worst}`;
  replace(el, h("i"), issues.length
    ? h("span", null, issues.map(([, text], i) => [i ? " · " : "", text]))
    : h("span", null, "All clear: a leader is dispatching, every cloud is beating and nothing failed in the last 5 minutes."));
}

function compact(n) {
  return Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 }).format(n ?? 0);
}

function append(el, ...children) {
  for (const c of children) el.appendChild(c);
}

function draw(panelChart, names, colors, data) {
  panelChart.chart.update(names, colors, data);
  const key = names.join("|");
  if (panelChart.leg.dataset.key !== key) {
    panelChart.leg.dataset.key = key;
    replace(panelChart.leg, legend(names, colors));
    paintSwatches(panelChart.leg);
  }
}

function renderQueues(el, queues) {
  const entries = Object.entries(queues).sort((a, b) => b[1] - a[1]);
  if (!entries.length) {
    replace(el, empty("All queues are empty", "Jobs appear here the moment they are submitted."));
    return;
  }
  const max = Math.max(1, ...entries.map((e) => e[1]));
  replace(el, table([{ title: "Type" }, { title: "Depth", num: true }, { title: "" }], entries, ([type, depth]) => {
    const bar = h("i", { class: "fill", "data-pct": String(Math.round((depth / max) * 100)) });
    const row = h("tr", null,
      h("td", null, h("span", { class: "chip" }, type)),
      h("td", { class: "num" }, num(depth)),
      h("td", { style: null }, h("span", { class: "bar" }, bar)));
    bar.style.width = `${bar.dataset.pct}%`;
    return row;
  }));
}

function renderFlying(el, jobs, store) {
  if (!jobs.length) {
    replace(el, empty("Nothing in flight", "The queue and every inbox are empty."));
    return;
  }
  const now = store.serverNow();
  replace(el, table([{ title: "Job" }, { title: "State" }, { title: "Age", num: true }], jobs.slice(0, 8), (j) =>
    h("tr", { class: "clickable", on: { click: () => { location.hash = `#/job/${encodeURIComponent(j.id)}`; } } },
      h("td", null, h("span", { class: "chip" }, j.type), " ", h("span", { class: "ellipsis" }, j.name)),
      h("td", null, pill(j.state)),
      h("td", { class: "num muted nowrap" }, j.submitted ? ago((now - j.submitted) / 1000) : "–"))));
}
