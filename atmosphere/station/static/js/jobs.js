// Jobs: search and page through history, one job in full, and the failed (dead-letter) list.
import { h, replace, num, secs, pill, panel, empty, table, clock, ago, jsonBlock, toast } from "./dom.js";

const STATES = ["", "queued", "delayed", "assigned", "retrying", "succeeded", "failed", "discarded"];

// Re-run `fn` after live changes, at most once per `gap` ms (history is not streamed itself:
// every job transition touches live/, so a live change is the cue to look again).
function throttled(fn, gap = 1200) {
  let last = 0;
  let timer = null;
  return () => {
    if (timer) return;
    const wait = Math.max(0, last + gap - Date.now());
    timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, wait);
  };
}

// Clouds register under push ids; show their names while they are alive (ids after).
let cloudNames = new Map();

export function learnCloudNames(snapshot) {
  cloudNames = new Map(snapshot.clouds.map((c) => [c.id, c.name]));
}

function cloudLabel(id) {
  if (!id) return "—";
  const name = cloudNames.get(id);
  return name ? h("span", { title: id }, name) : h("span", { class: "mono faint", title: "no longer registered" }, id);
}

function jobLink(id, ...children) {
  return h("a", { href: `#/job/${encodeURIComponent(id)}` }, ...children);
}

function historyRow(j) {
  return h("tr", { class: "clickable", dataset: { job: j.id }, on: { click: (ev) => {
    if (ev.target.closest("a, button")) return;
    location.hash = `#/job/${encodeURIComponent(j.id)}`;
  } } },
    h("td", { class: "nowrap" }, h("span", { class: "chip" }, j.type), " ", h("span", { class: "ellipsis job-name" }, j.name)),
    h("td", { class: "mono muted" }, jobLink(j.id, j.id)),
    h("td", null, pill(j.state)),
    h("td", { class: "muted nowrap" }, cloudLabel(j.cloud)),
    h("td", { class: "num" }, num(j.attempts)),
    h("td", { class: "nowrap muted" }, clock(j.submitted)),
    h("td", { class: "num nowrap" }, secs(j.duration)),
    h("td", { class: "fill-cell" }, j.error ? h("span", { class: "ellipsis err", title: j.error }, j.error) : null));
}

const HISTORY_COLUMNS = [
  { title: "Job" }, { title: "Id" }, { title: "State" }, { title: "Cloud" }, { title: "Attempts", num: true },
  { title: "Submitted" }, { title: "Ran for", num: true }, { title: "Error" },
];

export function jobsView({ el, store, api, setTitle }) {
  setTitle("Jobs", "Search the history; jobs in flight update live");
  const field = (id, placeholder) => h("input", { class: "field", id, placeholder, type: "search", autocomplete: "off" });
  const inputs = { id: field("job-id", "Job id"), type: field("job-type", "Type"), name: field("job-name", "Name") };
  const known = h("datalist", { id: "known-types" });
  inputs.type.setAttribute("list", "known-types");
  let knownKey = "";
  const state = h("select", { class: "field", id: "job-state" }, STATES.map((s) => h("option", { value: s }, s || "Any state")));
  const form = h("form", { class: "toolbar", id: "job-search" }, inputs.id, inputs.type, known, inputs.name, state,
    h("button", { class: "btn primary", type: "submit" }, "Search"),
    h("button", { class: "btn", type: "button", on: { click: () => { form.reset(); search(); } } }, "Clear"));
  const flying = h("div", { id: "in-flight", class: "scroll" });
  const history = h("div", { id: "history" });
  const pager = h("div", { class: "pager" });
  el.append(panel("Search", null, form), panel("In flight", "live", flying), panel("History", "newest first", history, pager));

  let stack = [""]; // cursors of the pages we walked through, for "Newer"
  let shown = ""; // what the history shows now, so unchanged refreshes leave the DOM alone
  let loading = false;
  let again = false; // asked for while a load was in flight: load once more when it ends
  const params = () => {
    const q = new URLSearchParams();
    for (const [k, input] of Object.entries(inputs)) if (input.value.trim()) q.set(k, input.value.trim());
    if (state.value) q.set("state", state.value);
    return q;
  };

  async function load() {
    // A click or search made while a page is loading must not be dropped: the answer in
    // flight is for the old cursor or filters, so load again once it has arrived.
    if (loading) { again = true; return; }
    loading = true;
    again = false;
    const q = params();
    const cursor = stack[stack.length - 1];
    if (cursor) q.set("cursor", cursor);
    try {
      if (!q.has("limit")) q.set("limit", "30");
      const page = await api.get(`/api/jobs?${q}`);
      const signature = JSON.stringify(page) + q;
      if (signature === shown) return;
      shown = signature;
      replace(history, page.jobs.length ? table(HISTORY_COLUMNS, page.jobs, historyRow, { id: "jobs-table" })
        : empty("No jobs found", q.toString() ? "Nothing matches this search." : "Submitted jobs appear here."));
      replace(pager,
        h("span", null, `Page ${stack.length}${page.truncated ? " · search limited to the newest 5,000 matches" : ""}`),
        h("span", { class: "btns" },
          h("button", { class: "btn small", type: "button", disabled: stack.length === 1 || null,
            on: { click: () => { stack.pop(); load(); } } }, "← Newer"),
          h("button", { class: "btn small", type: "button", id: "older", disabled: !page.next || null,
            on: { click: () => { stack.push(page.next); load(); } } }, "Older →")));
    } catch (err) {
      replace(history, empty("Search failed", err.message));
    } finally {
      loading = false;
      if (again) load();
    }
  }

  function search() { stack = [""]; load(); }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); search(); });
  const refresh = throttled(() => { if (stack.length === 1) load(); });
  load();

  return {
    live(s) {
      renderFlying(flying, s.in_flight, store);
      const types = [...new Set([...Object.keys(s.queues), ...s.clouds.flatMap((c) => c.types)])].sort();
      if (types.join("|") !== knownKey) {
        knownKey = types.join("|");
        replace(known, types.map((t) => h("option", { value: t })));
      }
      refresh();
    },
  };
}

function renderFlying(el, jobs, store) {
  if (!jobs.length) {
    replace(el, empty("Nothing in flight", "Queued, delayed and running jobs show here as they happen."));
    return;
  }
  const now = store.serverNow();
  replace(el, table([{ title: "Job" }, { title: "Id" }, { title: "State" }, { title: "Cloud" }, { title: "Waiting", num: true }],
    jobs, (j) => h("tr", { dataset: { job: j.id } },
      h("td", { class: "nowrap" }, h("span", { class: "chip" }, j.type), " ", h("span", { class: "ellipsis job-name" }, j.name)),
      h("td", { class: "mono" }, jobLink(j.id, j.id)),
      h("td", null, pill(j.state)),
      h("td", { class: "muted nowrap" }, cloudLabel(j.cloud)),
      h("td", { class: "num muted" }, j.submitted ? ago((now - j.submitted) / 1000).replace(" ago", "") : "–")),
    { id: "flight-table" }));
}

// ---- one job ----------------------------------------------------------------------------

export function jobView({ el, param, api, setTitle }) {
  setTitle("Job", param);
  const body = h("div", { class: "view" });
  el.append(body);
  let finished = false;

  async function load() {
    try {
      const job = await api.get(`/api/jobs/${encodeURIComponent(param)}`);
      finished = ["succeeded", "failed", "discarded"].includes(job.state);
      renderJob(body, job, api, load);
      setTitle(`${job.type} · ${job.name}`, job.id);
    } catch (err) {
      replace(body, panel("Not found", null, empty("No such job", err.message)));
    }
  }
  const refresh = throttled(() => { if (!finished) load(); });
  load();
  return { live: refresh };
}

function actionButtons(job, api, after) {
  const act = (verb, label, cls) => button(api, job, verb, label, cls, after, { id: `job-${verb}` });
  return h("span", { class: "btns" },
    job.actions.includes("retry") ? act("retry", "Retry", "primary") : null,
    job.actions.includes("discard") ? act("discard", "Discard", "danger") : null);
}

function renderJob(el, job, api, reload) {
  const kv = (label, value) => h("div", null, h("dt", null, label), h("dd", null, value ?? "—"));
  const head = h("div", { class: "panel" },
    h("div", { class: "detail-head" }, h("h2", { class: "job-title" }, h("span", { class: "chip" }, job.type), " ", job.name),
      pill(job.state), h("span", { class: "grow" }), actionButtons(job, api, reload)),
    h("dl", { class: "kv" },
      kv("Id", h("span", { class: "mono" }, job.id)), kv("Cloud", job.cloud ? cloudLabel(job.cloud) : null), kv("Attempts", `${num(job.attempts)} of ${num(1 + (job.retries || 0))}`),
      kv("Timeout", secs(job.timeout)), kv("Reply to", job.reply_to ? h("span", { class: "mono" }, job.reply_to) : "fire-and-forget"),
      kv("Parent", job.parent ? jobLink(job.parent, job.parent) : null),
      kv("Chain", job.chain ? `${job.chain.id} · step ${job.chain.step}` : null), kv("Late outcome", job.late ? "yes" : null)),
    h("div", { class: "timeline" },
      stamp("Submitted", clock(job.submitted)), stamp("Assigned", clock(job.assigned), job.queue_wait !== null ? `waited ${secs(job.queue_wait)}` : ""),
      stamp("Started", clock(job.started)), stamp("Finished", clock(job.finished), job.duration !== null ? `ran ${secs(job.duration)}` : ""),
      stamp("Latency", secs(job.latency))));
  el.replaceChildren(head);
  el.append(h("div", { class: "grid-2" },
    panel("Data", "as submitted", h("div", { class: "panel-body" }, jsonBlock(job.data))),
    job.error
      ? panel("Error", job.error.type || job.error.kind || null, h("div", { class: "panel-body" },
        h("p", { class: "age-bad" }, job.error.message || ""),
        job.error.traceback ? h("pre", { class: "code error", id: "traceback" }, job.error.traceback) : null))
      : panel("Result", null, h("div", { class: "panel-body" }, job.state === "succeeded" ? jsonBlock(job.result) : empty("No result yet", `The job is ${job.state}.`)))));
  if (job.outcomes.length) {
    el.append(panel("Earlier attempts", null, table([{ title: "Attempt" }, { title: "Cloud" }, { title: "Error" }], job.outcomes, (o) =>
      h("tr", null, h("td", null, num(o.attempt)), h("td", null, cloudLabel(o.cloud)),
        h("td", null, h("span", { class: "age-bad" }, o.error?.message ?? o.message ?? JSON.stringify(o)))))));
  }
  if (job.chain_jobs.length) {
    el.append(panel("Chain", job.chain.id, h("div", { class: "panel-body" }, h("div", { class: "steps" },
      job.chain_jobs.flatMap((s, i) => [i ? h("span", { class: "step-arrow" }, "→") : null,
        h("a", { class: `step ${s.id === job.id ? "current" : ""}`, href: `#/job/${encodeURIComponent(s.id)}` },
          h("span", { class: "chip" }, s.type), pill(s.state))])))));
  }
  if (job.children.length) {
    el.append(panel("Sub-jobs", "submitted by this job's handler", table(HISTORY_COLUMNS, job.children, historyRow)));
  }
}

function stamp(label, value, note) {
  return h("div", null, h("b", null, label), h("span", null, value), note ? h("div", { class: "muted" }, note) : null);
}

// ---- failed jobs ------------------------------------------------------------------------

export function failedView({ el, api, setTitle }) {
  setTitle("Failed jobs", "Dead letters: jobs that used up their attempts. Retry or discard them.");
  const list = h("div", { id: "failed-list" });
  const pager = h("div", { class: "pager" });
  el.append(panel("Failed", "newest first", list, pager));
  let stack = [""];
  let shown = "";

  async function load() {
    const cursor = stack[stack.length - 1];
    const page = await api.get(`/api/failed${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`);
    // Live refreshes must not swap rows under the operator's pointer when nothing changed.
    const signature = JSON.stringify(page) + stack.length;
    if (signature === shown) return;
    shown = signature;
    replace(list, page.jobs.length ? table([{ title: "Job" }, { title: "Id" }, { title: "Error" }, { title: "Attempts", num: true },
      { title: "Failed at" }, { title: "" }], page.jobs, (j) => h("tr", { dataset: { job: j.id } },
      h("td", { class: "nowrap" }, h("span", { class: "chip" }, j.type), " ", h("span", { class: "ellipsis job-name" }, j.name)),
      h("td", { class: "mono" }, jobLink(j.id, j.id)),
      h("td", { class: "fill-cell" }, h("span", { class: "ellipsis err", title: j.error ?? "" }, j.error ?? "")),
      h("td", { class: "num" }, num(j.attempts)),
      h("td", { class: "nowrap muted" }, clock(j.finished)),
      h("td", { class: "num" }, h("span", { class: "btns" },
        button(api, j, "retry", "Retry", "primary small", load), button(api, j, "discard", "Discard", "danger small", load)))),
    { id: "failed-table" }) : empty("No failed jobs", "Everything that ran either succeeded or is still retrying. ☀"));
    replace(pager, h("span", null, `Page ${stack.length}`), h("span", { class: "btns" },
      h("button", { class: "btn small", type: "button", disabled: stack.length === 1 || null, on: { click: () => { stack.pop(); load(); } } }, "← Newer"),
      h("button", { class: "btn small", type: "button", disabled: !page.next || null, on: { click: () => { stack.push(page.next); load(); } } }, "Older →")));
  }
  const refresh = throttled(() => { if (stack.length === 1) load(); }, 2000);
  load();
  return { live: refresh };
}

// A button that POSTs one action on a job; attrs tell tests and the page which one it is.
function button(api, job, verb, label, cls, after, attrs = { dataset: { action: verb } }) {
  return h("button", { ...attrs, class: `btn ${cls}`, type: "button", on: { click: async (ev) => {
    ev.target.disabled = true;
    try {
      await api.post(`/api/jobs/${encodeURIComponent(job.id)}/${verb}`);
      toast(`${label}: ${job.type} · ${job.name}`);
      window.dispatchEvent(new Event("atmosphere:failed-changed"));
      after();
    } catch (err) {
      toast(`${label} failed: ${err.message}`, true);
      ev.target.disabled = false;
    }
  } } }, label);
}
