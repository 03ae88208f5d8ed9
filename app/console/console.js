// The fetchrelay web console: a single page that calls the relay's /v1 API with the key the user
// signs in with (kept in sessionStorage only). No framework, no build step. Everything that comes
// from the API is put into the page as text (textContent), never as markup: job data is
// attacker-controlled.
"use strict";

const KEY = "fetchrelay.apiKey";
const TERMINAL = new Set(["delivered", "failed", "cancelled"]);
const STATUSES = ["scheduled", "active", "retrying", "delivered", "failed", "cancelled"];
const JOB_FILTERS = ["status", "queue", "schedule", "topic", "url_prefix"];

// ---------------------------------------------------------------------------------------------
// DOM helpers

const $ = (sel) => document.querySelector(sel);
const PROPS = new Set(["value", "disabled", "hidden", "checked", "selected", "min", "max"]);

/// h("tag", {attr: value, onclick: fn}, ...children): children are nodes or text (null skipped).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/// A link inside the console: followed with history.pushState (see the click handler below).
function link(href, text, attrs = {}) {
  return h("a", { href, "data-nav": true, ...attrs }, text);
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return append(el, children);
}

function fmtTime(iso) {
  if (!iso) return "—";
  const s = String(iso).replace("T", " ").replace(/\.\d+Z$/, "Z");
  return h("time", { datetime: iso, title: iso }, s);
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms >= 10000) return `${(ms / 1000).toFixed(1)} s`;
  return `${ms < 10 ? Math.round(ms * 10) / 10 : Math.round(ms)} ms`;
}

function badge(status) {
  const s = String(status ?? "unknown");
  return h("span", { class: `badge status-${s.replace(/[^a-z_]/g, "")}`, "data-testid": "status" }, s);
}

function yesNo(b) {
  return b ? "yes" : "no";
}

/// Bytes in base64 as text (UTF-8, bad bytes as U+FFFD).
function base64Text(b64) {
  try {
    const bin = atob(b64 || "");
    return new TextDecoder("utf-8").decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    return "(the body could not be decoded)";
  }
}

/// A two-column list of label/value pairs; values may be nodes. Rows with undefined values are left out.
function fields(pairs, testid) {
  const dl = h("dl", { class: "fields", "data-testid": testid });
  for (const [label, value] of pairs) {
    if (value === undefined) continue;
    dl.append(h("dt", null, label), h("dd", null, value === null || value === "" ? "—" : value));
  }
  return dl;
}

function headersTable(headers, testid) {
  const entries = Object.entries(headers || {});
  if (!entries.length) return h("p", { class: "muted", "data-testid": testid }, "No headers.");
  return h("table", { class: "list compact", "data-testid": testid },
    h("thead", null, h("tr", null, h("th", null, "Header"), h("th", null, "Value"))),
    h("tbody", null, entries.map(([k, v]) => h("tr", { "data-id": k }, h("td", null, k), h("td", { class: "mono" }, String(v))))));
}

// ---------------------------------------------------------------------------------------------
// Messages

function showError(text) {
  const m = $("#message");
  m.textContent = text;
  m.hidden = false;
}

function showNotice(text) {
  const n = $("#notice");
  n.textContent = text;
  n.hidden = false;
}

function clearMessages() {
  for (const el of [$("#message"), $("#notice")]) {
    el.textContent = "";
    el.hidden = true;
  }
}

/// Shows an error from the API (or anything thrown) in the message area; a 401 has sent the user
/// to the sign-in form already.
function report(err) {
  if (err instanceof ApiError) {
    if (err.status === 401) return;
    showError(err.status ? `${err.message} (${err.code}, HTTP ${err.status})` : err.message);
  } else {
    showError(`Something went wrong in the console: ${err && err.message ? err.message : err}`);
    console.error(err);
  }
}

/// Runs an async action, showing its error instead of throwing.
async function guard(fn) {
  try {
    return await fn();
  } catch (err) {
    report(err);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function request(key, method, path, body) {
  const init = { method, headers: { Authorization: `Bearer ${key}` }, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", `The relay could not be reached (${err.message}).`);
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const e = json && json.error;
    throw new ApiError(res.status, (e && e.code) || `http_${res.status}`, (e && e.message) || `The relay answered HTTP ${res.status}.`);
  }
  return json;
}

/// A /v1 call with the signed-in key; a 401 sends the user back to the sign-in form.
async function api(method, path, body) {
  const key = sessionStorage.getItem(KEY);
  if (!key) {
    showSignIn();
    throw new ApiError(401, "unauthorized", "Not signed in.");
  }
  try {
    return await request(key, method, path, body);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      sessionStorage.removeItem(KEY);
      showSignIn();
      showError("The relay refused the API key: sign in again.");
    }
    throw err;
  }
}

function query(params) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
  const s = qs.toString();
  return s ? `?${s}` : "";
}

// ---------------------------------------------------------------------------------------------
// Sign-in

function showSignIn() {
  stopView();
  $("#main").hidden = true;
  $("#main").replaceChildren();
  $("#nav").hidden = true;
  $("#signout").hidden = true;
  $("#signin").hidden = false;
  $("#api-key").value = "";
  document.title = "Sign in · fetchrelay";
  $("#api-key").focus();
}

function showApp() {
  $("#signin").hidden = true;
  $("#api-key").value = "";
  $("#nav").hidden = false;
  $("#signout").hidden = false;
  $("#main").hidden = false;
}

async function signIn(event) {
  event.preventDefault();
  clearMessages();
  const input = $("#api-key");
  const key = input.value.trim();
  if (!key) return;
  const button = $("#signin-button");
  button.disabled = true;
  try {
    await request(key, "GET", "/v1/jobs?limit=1");
    sessionStorage.setItem(KEY, key);
    showApp();
    render();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) showError("That API key was refused");
    else report(err);
    input.select();
  } finally {
    button.disabled = false;
  }
}

function signOut() {
  sessionStorage.removeItem(KEY);
  clearMessages();
  showSignIn();
}

// ---------------------------------------------------------------------------------------------
// Views: each page gets a fresh view; its timers stop when the user leaves the page.

let view = null;

function stopView() {
  if (!view) return;
  view.alive = false;
  for (const t of view.timers) clearTimeout(t);
  view = null;
}

function newView() {
  stopView();
  view = { alive: true, timers: [], refresh: null };
  return view;
}

/// Calls fn every `ms` while the view is alive and the page is visible (no overlapping calls).
function every(v, ms, fn) {
  v.refresh = fn;
  const tick = async () => {
    if (!v.alive) return;
    if (document.visibilityState === "visible") await guard(fn);
    if (v.alive) v.timers.push(setTimeout(tick, ms));
  };
  v.timers.push(setTimeout(tick, ms));
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && view && view.refresh) guard(view.refresh);
});

const ROUTES = [
  [/^\/(ui\/?)?$/, "overview", overviewPage],
  [/^\/ui\/jobs\/?$/, "jobs", jobsPage],
  [/^\/ui\/jobs\/([^/]+)\/?$/, "jobs", jobPage],
  [/^\/ui\/schedules\/?$/, "schedules", schedulesPage],
  [/^\/ui\/queues\/?$/, "queues", queuesPage],
  [/^\/ui\/topics\/?$/, "topics", topicsPage],
  [/^\/ui\/destinations\/?$/, "destinations", destinationsPage],
];

function navigate(url) {
  clearMessages();
  history.pushState(null, "", url);
  render();
}

function render() {
  if (!sessionStorage.getItem(KEY)) {
    showSignIn();
    return;
  }
  showApp();
  const v = newView();
  const main = $("#main");
  main.replaceChildren();
  const path = location.pathname;
  let found = null;
  for (const [re, nav, page] of ROUTES) {
    const m = re.exec(path);
    if (m) {
      found = [nav, page, m.slice(1).map((s) => (s === undefined ? s : decodeURIComponent(s)))];
      break;
    }
  }
  for (const a of document.querySelectorAll("#nav a")) a.removeAttribute("aria-current");
  if (!found) {
    document.title = "Not found · fetchrelay";
    main.append(h("h1", null, "Not found"), h("p", null, "The console has no page here. ", link("/ui", "Go to the overview")));
    return;
  }
  const [nav, page, params] = found;
  $(`#nav-${nav}`).setAttribute("aria-current", "page");
  page(main, v, ...params);
}

// ---------------------------------------------------------------------------------------------
// A paged table over a list endpoint ({<field>:[…], next_cursor}), with Previous/Next.

function pagedTable(v, { path, params = {}, field, columns, rowId, empty }) {
  const tbody = h("tbody");
  const table = h("table", { class: "list", "data-testid": `${field}-table` },
    h("thead", null, h("tr", null, columns.map((c) => h("th", null, c.label)))), tbody);
  const prev = h("button", { type: "button", id: "prev-page", disabled: true }, "Previous page");
  const next = h("button", { type: "button", id: "next-page", disabled: true }, "Next page");
  const where = h("span", { class: "muted", id: "page-number" });
  const stack = [];  // the cursors of the pages before this one (null: the first)
  let current = null;
  let nextCursor = null;

  async function load(cursor) {
    const data = await api("GET", path + query({ ...params, cursor }));
    if (!v.alive) return;
    current = cursor;
    nextCursor = data.next_cursor || null;
    const items = data[field] || [];
    tbody.replaceChildren(...items.map((it) => h("tr", { "data-id": rowId(it) }, columns.map((c) => h("td", { class: c.cls }, c.cell(it))))));
    if (!items.length) tbody.append(h("tr", { class: "empty" }, h("td", { colspan: columns.length }, nextCursor ? "Nothing on this page; there may be more on the next." : empty)));
    prev.disabled = stack.length === 0;
    next.disabled = !nextCursor;
    where.textContent = `Page ${stack.length + 1}`;
  }

  next.addEventListener("click", () => guard(async () => {
    const at = current;
    await load(nextCursor);
    stack.push(at);
    prev.disabled = false;
    where.textContent = `Page ${stack.length + 1}`;
  }));
  prev.addEventListener("click", () => guard(async () => {
    if (!stack.length) return;
    const back = stack[stack.length - 1];
    stack.pop();
    await load(back).catch((err) => { stack.push(back); throw err; });
  }));

  return {
    node: h("div", { class: "paged" }, h("div", { class: "table-wrap" }, table), h("div", { class: "pager" }, prev, where, next)),
    first: () => { stack.length = 0; return load(null); },
    reload: () => load(current),
  };
}

function actionButton(label, testid, fn) {
  const b = h("button", { type: "button", "data-testid": testid });
  b.textContent = label;
  b.addEventListener("click", () => guard(async () => {
    b.disabled = true;
    try {
      await fn();
    } finally {
      b.disabled = false;
    }
  }));
  return b;
}

// ---------------------------------------------------------------------------------------------
// Overview

function overviewPage(main, v) {
  document.title = "Overview · fetchrelay";
  const counts = h("div", { class: "cards", id: "job-counts" });
  const lateness = h("p", { id: "lateness" });
  const chart = h("div", { id: "chart", class: "chart" });
  main.append(
    h("h1", null, "Overview"),
    h("p", { class: "scope", id: "scope-note" }, "Relay-wide figures: every tenant's jobs and deliveries, not only those of this API key."),
    h("h2", null, "Jobs by status"), counts,
    h("h2", null, "Lateness"), lateness,
    h("h2", null, "Deliveries per minute, last 60 minutes"), chart,
  );
  const load = async () => {
    const s = await api("GET", "/v1/stats");
    if (!v.alive) return;
    const jobs = s.jobs || {};
    counts.replaceChildren(...STATUSES.map((st) =>
      h("div", { class: `card status-${st}`, "data-testid": `jobs-${st}` },
        h("div", { class: "card-number" }, String(jobs[st] ?? 0)), h("div", { class: "card-label" }, st))));
    lateness.replaceChildren("p99 lateness (how late attempts started against their due time): ",
      h("strong", { "data-testid": "lateness-p99" }, fmtMs(s.lateness_p99_ms)));
    chart.replaceChildren(minuteChart(s.minutes || []));
  };
  guard(load);
  every(v, 5000, load);
}

/// Stacked bars, one per minute: delivered (2xx) below, failed above. Placed by minute against
/// the newest minute the relay reported, so gaps stay gaps.
function minuteChart(minutes) {
  const W = 720, H = 200, left = 40, bottom = 24, top = 10, slots = 60;
  const plotW = W - left - 10, plotH = H - top - bottom, bw = plotW / slots;
  const times = minutes.map((m) => Date.parse(m.at)).filter((t) => !Number.isNaN(t));
  const newest = times.length ? Math.max(...times) : 0;
  const placed = [];
  for (const m of minutes) {
    const t = Date.parse(m.at);
    const slot = slots - 1 - Math.round((newest - t) / 60000);
    if (!Number.isNaN(t) && slot >= 0 && slot < slots) placed.push([slot, m]);
  }
  const max = Math.max(1, ...placed.map(([, m]) => (m.delivered || 0) + (m.failed || 0)));
  const y = (n) => top + plotH - (n / max) * plotH;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Deliveries and failures per minute", "data-testid": "minute-chart" });
  root.append(
    svg("line", { x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, class: "axis" }),
    svg("line", { x1: left, y1: top, x2: left, y2: top + plotH, class: "axis" }),
    svg("text", { x: left - 4, y: top + 8, class: "tick", "text-anchor": "end" }, String(max)),
    svg("text", { x: left - 4, y: top + plotH, class: "tick", "text-anchor": "end" }, "0"),
    svg("text", { x: left, y: H - 6, class: "tick" }, "60 min ago"),
    svg("text", { x: left + plotW, y: H - 6, class: "tick", "text-anchor": "end" }, newest ? "now" : "no data yet"),
  );
  for (const [slot, m] of placed) {
    const d = m.delivered || 0, f = m.failed || 0, x = left + slot * bw + 1, w = Math.max(1, bw - 2);
    const g = svg("g", { "data-at": m.at },
      svg("title", null, `${m.at}: ${d} delivered, ${f} failed, ${m.attempts ?? d + f} attempts, lateness p99 ${fmtMs(m.lateness_p99_ms)}`));
    if (d) g.append(svg("rect", { x, y: y(d), width: w, height: top + plotH - y(d), class: "bar-delivered" }));
    if (f) g.append(svg("rect", { x, y: y(d + f), width: w, height: y(d) - y(d + f), class: "bar-failed" }));
    root.append(g);
  }
  const legend = h("p", { class: "legend" },
    h("span", { class: "swatch bar-delivered" }), " delivered (2xx) ", h("span", { class: "swatch bar-failed" }), " failed (no 2xx)");
  return h("div", null, root, legend);
}

// ---------------------------------------------------------------------------------------------
// Jobs

function jobFiltersFromUrl() {
  const qs = new URLSearchParams(location.search);
  const f = {};
  for (const k of JOB_FILTERS) {
    const val = (qs.get(k) || "").trim();
    if (val) f[k] = val;
  }
  return f;
}

function describeFilters(f) {
  const parts = Object.entries(f).map(([k, val]) => `${k}=${val}`);
  return parts.length ? parts.join(", ") : "no filter (all jobs)";
}

function jobsPage(main, v) {
  document.title = "Jobs · fetchrelay";
  const filters = jobFiltersFromUrl();
  const input = (name, label, placeholder) => h("label", null, label,
    h("input", { id: `filter-${name.replace("_", "-")}`, name, type: "text", value: filters[name] || "", placeholder, spellcheck: "false" }));
  const status = h("select", { id: "filter-status", name: "status" },
    h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s }, s)));
  status.value = filters.status || "";
  const form = h("form", { id: "job-filters", class: "filters" },
    h("label", null, "Status", status),
    input("queue", "Queue", ""), input("schedule", "Schedule", ""), input("topic", "Topic", ""),
    input("url_prefix", "URL prefix", "https://api.example.com/"),
    h("button", { type: "submit", id: "filter-apply" }, "Apply"),
    h("button", { type: "button", id: "filter-clear", onclick: () => navigate("/ui/jobs") }, "Clear"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = {};
    for (const el of form.elements) if (el.name && el.value.trim()) f[el.name] = el.value.trim();
    navigate(`/ui/jobs${query(f)}`);
  });

  const table = pagedTable(v, {
    path: "/v1/jobs", params: { ...filters, limit: 50 }, field: "jobs", rowId: (j) => j.id,
    empty: "No jobs match.",
    columns: [
      { label: "ID", cls: "mono", cell: (j) => link(`/ui/jobs/${encodeURIComponent(j.id)}`, j.id, { "data-testid": "job-link" }) },
      { label: "Status", cell: (j) => badge(j.status) },
      { label: "Method", cell: (j) => j.method },
      { label: "URL", cls: "url", cell: (j) => j.url ?? "—" },
      { label: "Attempts", cls: "num", cell: (j) => String(j.attempt_count ?? 0) },
      { label: "Created", cell: (j) => fmtTime(j.created_at) },
      { label: "Next attempt", cell: (j) => fmtTime(j.next_attempt_at) },
    ],
  });

  const bulk = (verb, path, done) => actionButton(`${verb} all matching`, `bulk-${verb.toLowerCase()}`, async () => {
    if (!confirm(`${verb} every job matching ${describeFilters(filters)}?`)) return;
    clearMessages();
    let count = 0;
    let cursor = null;
    for (;;) {
      const body = { ...filters };
      if (cursor) body.cursor = cursor;
      const r = await api("POST", path, body);
      count += r.count || 0;
      if (!r.next_cursor || r.next_cursor === cursor) break;
      cursor = r.next_cursor;
    }
    if (!v.alive) return;
    showNotice(`${done} ${count} ${count === 1 ? "job" : "jobs"}`);
    await table.first();
  });
  const retry = bulk("Retry", "/v1/jobs/retry", "Retried");
  const cancel = bulk("Cancel", "/v1/jobs/cancel", "Cancelled");
  retry.id = "bulk-retry";
  cancel.id = "bulk-cancel";

  main.append(h("h1", null, "Jobs"), form,
    h("div", { class: "toolbar" }, h("span", { class: "muted" }, `Showing: ${describeFilters(filters)}. `), retry, cancel),
    table.node);
  guard(table.first);
}

function jobPage(main, v, id) {
  document.title = `${id} · fetchrelay`;
  const body = h("div", { id: "job" });
  main.append(h("p", null, link("/ui/jobs", "← Jobs")), h("h1", { class: "mono", id: "job-id" }, id), body);
  let timer = null;

  const act = (label, testid, method, suffix, confirmText) => actionButton(label, testid, async () => {
    if (confirmText && !confirm(confirmText)) return;
    clearMessages();
    await api(method, `/v1/jobs/${encodeURIComponent(id)}${suffix}`);
    if (v.alive) showNotice(`${label}: done.`);
    await load();
  });

  async function load() {
    clearTimeout(timer);
    let job;
    try {
      job = await api("GET", `/v1/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      // a failed refresh is tried again while the page is open, unless the job is gone
      if (v.alive && !(err instanceof ApiError && (err.status === 404 || err.status === 401))) {
        timer = setTimeout(() => guard(load), 2000);
        v.timers.push(timer);
      }
      throw err;
    }
    if (!v.alive) return;
    const terminal = TERMINAL.has(job.status);
    const actions = h("div", { class: "toolbar", id: "job-actions" });
    if (job.status === "failed" || job.status === "cancelled") actions.append(act("Replay", "job-replay", "POST", "/retry"));
    if (job.status === "scheduled" || job.status === "retrying") actions.append(act("Run now", "job-run", "POST", "/run"));
    if (!terminal) actions.append(act("Cancel", "job-cancel", "DELETE", "", "Cancel this job?"));
    for (const b of actions.children) b.id = b.dataset.testid;

    const parts = [
      h("p", null, "Status: ", badge(job.status), terminal ? "" : h("span", { class: "muted" }, " (refreshing every 2 s)")),
      actions,
      fields([
        ["URL", h("span", { class: "mono url" }, job.url ?? "—")],
        ["Method", job.method],
        ["Policy", job.policy],
        ["Queue", job.queue === undefined ? undefined : job.queue && link(`/ui/jobs${query({ queue: job.queue })}`, job.queue)],
        ["Topic", job.topic === undefined ? undefined : job.topic && link(`/ui/jobs${query({ topic: job.topic })}`, job.topic)],
        ["Endpoint", job.endpoint],
        ["Schedule", job.schedule_id === undefined ? undefined : job.schedule_id && link(`/ui/jobs${query({ schedule: job.schedule_id })}`, job.schedule_id)],
        ["Fire time", job.fire_time === undefined ? undefined : fmtTime(job.fire_time)],
        ["Parent job", job.parent_id === undefined ? undefined : job.parent_id && link(`/ui/jobs/${encodeURIComponent(job.parent_id)}`, job.parent_id)],
        ["Created", fmtTime(job.created_at)],
        ["Run at", fmtTime(job.run_at)],
        ["Next attempt", fmtTime(job.next_attempt_at)],
        ["Attempts", `${(job.attempts || []).length} of ${job.max_attempts ?? "?"} allowed`],
        ["Last error", job.last_error],
        ["Deferred by", job.defer_reason],
      ], "job-fields"),
    ];

    const req = job.request;
    if (req) {
      parts.push(h("h2", null, "Request"),
        h("p", { class: "mono url", "data-testid": "request-line" }, `${job.method} ${job.url}`),
        headersTable(req.headers, "request-headers"),
        h("h3", null, "Body"),
        req.body_bytes ? h("pre", { class: "body", "data-testid": "request-body" }, base64Text(req.body_base64)) : h("p", { class: "muted" }, "No body."),
        req.body_truncated ? h("p", { class: "note", "data-testid": "body-truncated" },
          `Only the start of the body is shown (${req.body_bytes} bytes in all).`) : null);
    }

    parts.push(h("h2", null, "Attempts"));
    const attempts = job.attempts || [];
    if (!attempts.length) parts.push(h("p", { class: "muted" }, "No attempt yet."));
    else {
      parts.push(h("table", { class: "list timeline", id: "attempts" },
        h("thead", null, h("tr", null, ["#", "Started", "Duration", "Status", "Error", "Response excerpt"].map((t) => h("th", null, t)))),
        h("tbody", null, attempts.map((a) => h("tr", { "data-id": a.n, class: a.status_code >= 200 && a.status_code < 300 ? "ok" : "bad" },
          h("td", { class: "num" }, String(a.n)),
          h("td", null, fmtTime(a.started_at)),
          h("td", { class: "num" }, fmtMs(a.duration_ms)),
          h("td", { class: "num", "data-testid": "attempt-status" }, a.status_code === null || a.status_code === undefined ? "—" : String(a.status_code)),
          h("td", null, a.error ?? "—"),
          h("td", null, a.response_excerpt ? h("pre", { class: "excerpt", "data-testid": "attempt-excerpt" }, a.response_excerpt) : "—"))))));
    }

    if (job.report) {
      const r = job.report;
      const resp = r.response;
      parts.push(h("h2", null, "Report"),
        fields([
          ["Status", badge(r.status)],
          ["Attempts", String(r.attempts ?? "—")],
          ["Last status code", r.last_status_code === null ? null : String(r.last_status_code)],
          ["Last error", r.last_error],
          ["Finished", fmtTime(r.finished_at)],
        ], "job-report"),
        resp ? [h("h3", null, `Response (HTTP ${resp.status})`), headersTable(resp.headers, "response-headers"),
          resp.body_base64 ? h("pre", { class: "body", "data-testid": "response-body" }, base64Text(resp.body_base64)) : h("p", { class: "muted" }, "No body.")] : null);
    }

    body.replaceChildren(...parts.flat().filter(Boolean));
    if (!terminal && v.alive) {
      timer = setTimeout(() => guard(load), 2000);
      v.timers.push(timer);
    }
  }
  guard(load);
}

// ---------------------------------------------------------------------------------------------
// Destinations, schedules, queues, topics

function destinationsPage(main, v) {
  document.title = "Destinations · fetchrelay";
  const table = pagedTable(v, {
    path: "/v1/destinations", field: "destinations", rowId: (d) => d.origin, empty: "No destination has been sent to since the relay started.",
    columns: [
      { label: "Origin", cls: "mono", cell: (d) => d.origin },
      { label: "Breaker", cell: (d) => d.breaker ? h("span", { class: `badge breaker-${String(d.breaker).replace(/[^a-z_]/g, "")}` }, d.breaker) : "—" },
      { label: "In flight", cls: "num", cell: (d) => String(d.in_flight ?? 0) },
      { label: "Attempts (recent)", cls: "num", cell: (d) => String(d.attempts_recent ?? 0) },
      { label: "Error rate", cls: "num", cell: (d) => `${Math.round((d.error_rate || 0) * 1000) / 10}%` },
      { label: "Rate-limit waits", cls: "num", cell: (d) => String(d.rate_limit_waits_recent ?? 0) },
      { label: "Last error", cell: (d) => d.last_error ? [d.last_error, " ", h("span", { class: "muted" }, fmtTime(d.last_error_at))] : "—" },
    ],
  });
  main.append(h("h1", null, "Destinations"),
    h("p", { class: "muted" }, "Origins this key's tenant has sent to since the relay started; “recent” is the last five minutes."),
    table.node);
  guard(table.first);
}

function schedulesPage(main, v) {
  document.title = "Schedules · fetchrelay";
  let table;
  const post = (s, what) => async () => {
    clearMessages();
    const r = await api("POST", `/v1/schedules/${encodeURIComponent(s.id)}/${what}`);
    if (!v.alive) return;
    if (what === "trigger") showNotice(`Triggered ${s.id}: job ${r.job_id}`);
    else showNotice(`${what === "pause" ? "Paused" : "Resumed"} ${s.id}`);
    await table.reload();
  };
  table = pagedTable(v, {
    path: "/v1/schedules", field: "schedules", rowId: (s) => s.id, empty: "No schedules.",
    columns: [
      { label: "ID", cls: "mono", cell: (s) => s.id },
      { label: "Cron", cls: "mono", cell: (s) => s.cron },
      { label: "Zone", cell: (s) => s.tz || "UTC" },
      { label: "Paused", cell: (s) => h("span", { "data-testid": "paused" }, yesNo(s.paused)) },
      { label: "Next run", cell: (s) => fmtTime(s.next_run_at) },
      { label: "Last run", cell: (s) => s.last_job_id ? [fmtTime(s.last_run_at), " ", link(`/ui/jobs/${encodeURIComponent(s.last_job_id)}`, "job")] : fmtTime(s.last_run_at) },
      { label: "URL", cls: "url", cell: (s) => (s.request && s.request.url) || "—" },
      { label: "", cls: "actions", cell: (s) => [
        s.paused ? actionButton("Resume", "schedule-resume", post(s, "resume")) : actionButton("Pause", "schedule-pause", post(s, "pause")),
        actionButton("Trigger", "schedule-trigger", post(s, "trigger")),
        link(`/ui/jobs${query({ schedule: s.id })}`, "jobs", { "data-testid": "schedule-jobs" })] },
    ],
  });
  main.append(h("h1", null, "Schedules"), table.node);
  guard(table.first);
}

function queuesPage(main, v) {
  document.title = "Queues · fetchrelay";
  let table;
  const change = (q, method, suffix, body, done) => async () => {
    clearMessages();
    await api(method, `/v1/queues/${encodeURIComponent(q.name)}${suffix}`, body);
    if (!v.alive) return;
    showNotice(`${done} ${q.name}`);
    await table.reload();
  };
  table = pagedTable(v, {
    path: "/v1/queues", field: "queues", rowId: (q) => q.name, empty: "No queues.",
    columns: [
      { label: "Name", cls: "mono", cell: (q) => q.name },
      { label: "Parallelism", cls: "num", cell: (q) => String(q.parallelism) },
      { label: "Paused", cell: (q) => h("span", { "data-testid": "paused" }, yesNo(q.paused)) },
      { label: "Waiting", cls: "num", cell: (q) => String(q.waiting ?? 0) },
      { label: "In progress", cls: "num", cell: (q) => String(q.in_progress ?? 0) },
      { label: "Lag", cls: "num", cell: (q) => `${((q.oldest_waiting_age_ms || 0) / 1000).toFixed(1)} s` },
      { label: "", cls: "actions", cell: (q) => {
        const n = h("input", { type: "number", min: 1, max: 1000, value: String(q.parallelism), "data-testid": "queue-parallelism", "aria-label": `Parallelism of ${q.name}` });
        const set = actionButton("Set", "queue-set", async () => {
          const p = Number(n.value);
          if (!Number.isInteger(p) || p < 1 || p > 1000) {
            showError("Parallelism is a whole number from 1 to 1000.");
            return;
          }
          await change(q, "PUT", "", { parallelism: p }, `Parallelism ${p} set for`)();
        });
        return [
          q.paused ? actionButton("Resume", "queue-resume", change(q, "POST", "/resume", undefined, "Resumed"))
            : actionButton("Pause", "queue-pause", change(q, "POST", "/pause", undefined, "Paused")),
          n, set, link(`/ui/jobs${query({ queue: q.name })}`, "jobs", { "data-testid": "queue-jobs" })];
      } },
    ],
  });
  main.append(h("h1", null, "Queues"), table.node);
  guard(table.first);
}

function topicsPage(main, v) {
  document.title = "Topics · fetchrelay";
  const table = pagedTable(v, {
    path: "/v1/topics", field: "topics", rowId: (t) => t.name, empty: "No topics.",
    columns: [
      { label: "Name", cls: "mono", cell: (t) => t.name },
      { label: "Endpoints", cell: (t) => h("ul", { class: "endpoints" }, (t.endpoints || []).map((e) =>
        h("li", null, h("strong", null, e.name ?? ""), " ", h("span", { class: "mono url" }, e.url ?? "")))) },
      { label: "Updated", cell: (t) => fmtTime(t.updated_at) },
      { label: "", cls: "actions", cell: (t) => link(`/ui/jobs${query({ topic: t.name })}`, "jobs", { "data-testid": "topic-jobs" }) },
    ],
  });
  main.append(h("h1", null, "Topics"), table.node);
  guard(table.first);
}

// ---------------------------------------------------------------------------------------------
// Start

document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a[data-nav]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener("popstate", () => {
  clearMessages();
  render();
});

$("#signin-form").addEventListener("submit", signIn);
$("#signout").addEventListener("click", signOut);
render();
