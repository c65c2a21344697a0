/**
 * The operator dashboard at `GET /` on the scheduler port: one self-contained page (no CDN, no external fonts or
 * scripts) that refreshes itself every 5 s from `/dashboard.json` and the first page of `/queue.json` (its
 * totals per pool count every waiting job, so the page stays truthful however long the queue). Every value goes into the
 * page through `textContent` or an attribute, never as markup, and only http(s) URLs become links.
 */
export const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>riscv-runner dashboard</title>
<style>
  :root { --ok: #15803d; --warn: #b45309; --bad: #b91c1c; --muted: #6b7280; --line: #e5e7eb; --accent: #2563eb; }
  body { font-family: system-ui, sans-serif; margin: 1.5em; color: #111; background: #fff; }
  h1 { font-size: 1.4em; margin: 0 0 .2em; }
  h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
  nav a { margin-right: 1em; }
  a { color: var(--accent); }
  table { border-collapse: collapse; font-size: 14px; }
  th, td { text-align: left; padding: .25em .8em .25em 0; border-bottom: 1px solid var(--line); }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .muted { color: var(--muted); }
  .ok { color: var(--ok); font-weight: 600; }
  .warn { color: var(--warn); font-weight: 600; }
  .bad { color: var(--bad); font-weight: 600; }
  #error { color: var(--bad); }
  details { margin: .3em 0; }
  summary { cursor: pointer; }
  pre { font-size: 12px; background: #f9fafb; padding: .6em; overflow-x: auto; max-width: 100%; }
  .legend span { margin-right: 1.2em; }
</style>
</head>
<body>
<h1>riscv-runner scheduler <span id="deployment" class="muted"></span></h1>
<nav><a href="/usage">usage</a><a href="/jobs">jobs</a><a href="/workers">workers</a><a href="/stats/weekly-usage">weekly usage</a><a href="/queue.json">queue.json</a><a href="/dashboard.json">dashboard.json</a><a href="/metrics">metrics</a><a href="/docs">API docs</a></nav>
<p class="muted">Updated <span id="updated">never</span>, every 5 s. <span id="error"></span></p>

<h2>Boards per pool</h2>
<table id="pools"><thead><tr><th>pool</th><th class="num">total</th><th class="num">usable</th><th class="num">busy</th><th class="num">free</th></tr></thead><tbody></tbody></table>
<p id="pools-empty" class="muted" hidden>No pool has a node or a runner pod.</p>
<h2>Boards</h2>
<table id="boards"><thead><tr><th>node</th><th>pool</th><th>cluster</th><th class="num">slots</th><th class="num">busy</th><th>usable</th></tr></thead><tbody></tbody></table>
<p id="boards-empty" class="muted" hidden>No board node.</p>

<h2>Entities and label sets</h2>
<table id="groups"><thead><tr><th>entity</th><th>labels</th><th>pool</th><th class="num">pending</th><th class="num">active workers</th><th class="num">cap</th><th class="num">oldest wait</th></tr></thead><tbody></tbody></table>
<p id="groups-empty" class="muted" hidden>No active jobs or workers.</p>

<h2>Queue</h2>
<table id="queue-pools"><thead><tr><th>pool</th><th class="num">waiting</th><th class="num">provisioning</th><th class="num">no free board</th><th class="num">cap reached</th><th class="num">backing off</th></tr></thead><tbody></tbody></table>
<p id="queue-pools-empty" class="muted" hidden>No pool has a waiting job.</p>
<p id="queue-shown" class="muted"></p>
<table id="queue"><thead><tr><th>pool</th><th class="num">#</th><th>job</th><th>entity</th><th>reason</th><th>estimated start</th></tr></thead><tbody></tbody></table>
<p id="queue-empty" class="muted" hidden>Nothing waits.</p>

<h2>Last hour</h2>
<p class="legend"><span style="color:#2563eb">&#9632; jobs waiting</span><span style="color:#ea580c">&#9632; oldest wait (min)</span></p>
<svg id="chart" width="720" height="200" viewBox="0 0 720 200" role="img" aria-label="queue depth and oldest wait over the last hour"></svg>

<h2>Recent failures</h2>
<div id="failures"></div>
<p id="failures-empty" class="muted" hidden>No failed workers in the last hours.</p>

<script>
"use strict";
const $ = (id) => document.getElementById(id);
const el = (tag, attrs, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
};
const cell = (text, cls) => el("td", cls ? { class: cls } : {}, text);
const duration = (s) => {
  if (s === null || s === undefined) return "-";
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
};
const time = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").replace(/\\.\\d+Z$/, " UTC") : "-");
const REASON_CLASS = { provisioning: "ok", no_free_board: "warn", cap_reached: "warn", backoff_after_failure: "bad" };
const fill = (id, rows) => {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(...rows);
  $(id + "-empty").hidden = rows.length > 0;
};

const renderPools = (pools) => fill("pools", pools.map((p) => {
  const tr = el("tr", { "data-pool": p.pool });
  tr.append(cell(p.pool), cell(p.total, "num total"), cell(p.usable, "num usable"), cell(p.busy, "num busy"),
    cell(p.free, "num free " + (p.free > 0 ? "ok" : p.free === 0 ? "warn" : "bad")));
  return tr;
}));

const renderBoards = (boards) => fill("boards", boards.map((b) => {
  const tr = el("tr", { "data-node": b.node, "data-pool": b.pool, "data-cluster": b.cluster });
  tr.append(cell(b.node), cell(b.pool), cell(b.cluster, "cluster"), cell(b.slots, "num slots"), cell(b.busy, "num busy"),
    cell(b.why_unusable === null ? "yes" : "no: " + b.why_unusable, "why " + (b.why_unusable === null ? "ok" : "bad")));
  return tr;
}));

const renderGroups = (groups) => fill("groups", groups.map((g) => {
  const tr = el("tr", { "data-entity": g.entity_name, "data-entity-id": g.entity_id, "data-labels": g.job_labels.join(","), "data-pool": g.k8s_pool });
  const atCap = g.cap !== null && g.active_workers >= g.cap;
  tr.append(cell(g.entity_name), cell("[" + g.job_labels.join(", ") + "]"), cell(g.k8s_pool),
    cell(g.pending_jobs, "num pending" + (g.pending_jobs > 0 ? " warn" : "")),
    cell(g.active_workers, "num active"),
    cell(g.cap === null ? "none" : g.cap, "num cap" + (atCap ? " bad" : "")),
    cell(duration(g.oldest_wait_seconds), "num wait"));
  return tr;
}));

const QUEUE_PAGE = 100;
const renderQueuePools = (pools) => fill("queue-pools", pools.map((p) => {
  const tr = el("tr", { "data-pool": p.pool });
  tr.append(cell(p.pool), cell(p.pending, "num pending"), cell(p.provisioning, "num provisioning"),
    cell(p.no_free_board, "num no-free-board"), cell(p.cap_reached, "num cap-reached"), cell(p.backoff_after_failure, "num backoff"));
  return tr;
}));
const renderQueue = (page) => {
  renderQueuePools(page.pools);
  $("queue-shown").textContent = page.total > page.jobs.length
    ? "The first " + page.jobs.length + " of " + page.total + " waiting jobs; the next ones: /queue.json?offset=" + page.jobs.length
    : "";
  renderQueueRows(page.jobs);
};
const renderQueueRows = (queue) => fill("queue", queue.map((q) => {
  const tr = el("tr", { "data-job": q.job_id });
  const job = el("td");
  if (typeof q.html_url === "string" && /^https?:\\/\\//.test(q.html_url)) job.append(el("a", { href: q.html_url }, q.job_id));
  else job.textContent = String(q.job_id);
  tr.append(cell(q.k8s_pool), cell(q.position, "num position"), job, cell(q.entity_name),
    cell(q.reason.replace(/_/g, " "), "reason " + (REASON_CLASS[q.reason] || "")), cell(time(q.estimated_start)));
  return tr;
}));

const NS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs, text) => {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
};
const renderChart = (points) => {
  const chart = $("chart");
  const W = 720, H = 200, L = 40, R = 40, T = 10, B = 25;
  const depthMax = Math.max(1, ...points.map((p) => p.depth));
  const waitMax = Math.max(1, ...points.map((p) => p.oldest_wait_seconds / 60));
  const x = (i) => L + (i * (W - L - R)) / Math.max(1, points.length - 1);
  const yd = (v) => H - B - (v * (H - T - B)) / depthMax;
  const yw = (v) => H - B - (v * (H - T - B)) / waitMax;
  const parts = [
    svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#9ca3af" }),
    svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#9ca3af" }),
    svg("text", { x: L - 6, y: T + 10, "text-anchor": "end", "font-size": 11, fill: "#2563eb" }, depthMax),
    svg("text", { x: W - R + 6, y: T + 10, "font-size": 11, fill: "#ea580c" }, Math.ceil(waitMax)),
    svg("text", { x: L, y: H - 6, "font-size": 11, fill: "#6b7280" }, "-60 min"),
    svg("text", { x: W - R, y: H - 6, "font-size": 11, fill: "#6b7280", "text-anchor": "end" }, "now"),
    svg("polyline", { id: "depth-line", fill: "none", stroke: "#2563eb", "stroke-width": 2, points: points.map((p, i) => x(i) + "," + yd(p.depth)).join(" ") }),
    svg("polyline", { id: "wait-line", fill: "none", stroke: "#ea580c", "stroke-width": 2, points: points.map((p, i) => x(i) + "," + yw(p.oldest_wait_seconds / 60)).join(" ") })
  ];
  chart.replaceChildren(...parts);
};

const renderFailures = (failures) => {
  const box = $("failures");
  box.replaceChildren(...failures.map((f) => {
    const d = el("details", { "data-pod": f.pod_name });
    const s = el("summary");
    s.append(el("span", { class: "muted" }, time(f.at) + "  "), el("span", { class: "bad" }, f.summary), el("span", {}, "  " + f.pod_name + " (" + f.entity_name + ", " + f.k8s_pool + ")"));
    d.append(s, el("pre", {}, JSON.stringify(f.failure_info, null, 2)));
    return d;
  }));
  $("failures-empty").hidden = failures.length > 0;
};

const getJson = async (path) => {
  const res = await fetch(path, { headers: { accept: "application/json" }, cache: "no-store" });
  if (!res.ok) throw new Error(path + ": HTTP " + res.status);
  return res.json();
};

let renders = 0;
const refresh = async () => {
  try {
    const [dash, queue] = await Promise.all([getJson("/dashboard.json"), getJson("/queue.json?limit=" + QUEUE_PAGE)]);
    $("deployment").textContent = "(" + dash.deployment + ")";
    document.title = "riscv-runner dashboard - " + dash.deployment;
    renderPools(dash.pools);
    renderBoards(dash.boards);
    renderGroups(dash.groups);
    renderQueue(queue);
    renderChart(dash.history);
    renderFailures(dash.failures);
    $("updated").textContent = time(dash.generated_at);
    $("error").textContent = dash.capacity_error || "";
    document.body.dataset.renders = String(++renders);
  } catch (e) {
    $("error").textContent = "refresh failed: " + e.message;
  } finally {
    setTimeout(refresh, 5000);
  }
};
refresh();
</script>
</body>
</html>
`
