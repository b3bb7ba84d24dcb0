// switchyard dashboard. Reads the JSON admin API (the same endpoints scripts use) and polls it.
// Filters and the opened request come from this page's URL query, so every view is a link.
// All data is written with textContent; the only markup inserted is the SVG the gateway draws
// with plotters (which escapes its text).
"use strict";

const params = new URLSearchParams(location.search);
const REFRESH_MS = Math.max(1000, Number(params.get("refresh") || 5000));
const FILTERS = ["key", "model", "status", "feature", "cache"];
const GROUPINGS = ["key", "feature", "model", "provider"];
let olderCursor = null;

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function getJSON(path) {
  const r = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (r.status === 401) { location.href = "/ui"; throw new Error("signed out"); }
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  return { status: r.status, body };
}

function qs(obj) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== null && v !== undefined && v !== "") p.set(k, v);
  return p.toString();
}

function usd(v) {
  if (v === null || v === undefined) return "unknown";
  return String(v);
}

function time(ms) {
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").slice(0, 19);
}

function selfLink(extra) {
  const p = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(extra)) { if (v === null) p.delete(k); else p.set(k, v); }
  const s = p.toString();
  return "/ui" + (s ? "?" + s : "");
}

// ---- spend -------------------------------------------------------------------------------

async function loadSpend() {
  const since = params.get("since") || "24h";
  const r = await getJSON("/admin/spend/series?" + qs({ since, buckets: 24, charts: "svg" }));
  const box = $("charts");
  if (r.status !== 200) { box.textContent = (r.body && r.body.error) || "spend unavailable"; return; }
  const s = r.body;
  $("total-cost").textContent = "$" + s.total.total_cost_usd;
  $("total-saved").textContent = "$" + s.total.total_saved_usd;
  $("total-requests").textContent = s.total.total_requests;
  box.replaceChildren();
  for (const g of GROUPINGS) {
    const card = el("div", null, "chart");
    card.id = "chart-" + g;
    card.dataset.groups = String((s.by[g] || []).length);
    const svg = el("div");
    svg.innerHTML = (s.charts && s.charts[g]) || "";
    card.appendChild(svg);
    const t = el("table");
    const head = el("tr");
    for (const h of [g, "requests", "spend USD", "cache savings USD"]) head.appendChild(el("th", h));
    t.appendChild(head);
    for (const row of s.by[g] || []) {
      const tr = el("tr");
      tr.appendChild(el("td", row.group));
      tr.appendChild(el("td", row.total_requests, "num"));
      tr.appendChild(el("td", row.total_cost_usd, "num"));
      tr.appendChild(el("td", row.total_saved_usd, "num"));
      t.appendChild(tr);
    }
    card.appendChild(t);
    box.appendChild(card);
  }
}

// ---- requests ----------------------------------------------------------------------------

function requestRow(r) {
  const tr = el("tr");
  tr.dataset.id = r.request_id;
  if (r.status === 0 || r.status >= 400 || r.error_class) tr.className = "error";
  tr.appendChild(el("td", time(r.ts_ms)));
  const idCell = el("td");
  const a = el("a", r.request_id);
  a.href = selfLink({ request: r.request_id });
  idCell.appendChild(a);
  tr.appendChild(idCell);
  tr.appendChild(el("td", r.gateway_key || "–"));
  tr.appendChild(el("td", r.feature || "–"));
  const model = r.provider ? r.provider + "/" + (r.model || "?") : (r.requested_model || "–");
  tr.appendChild(el("td", model));
  tr.appendChild(el("td", r.status + (r.error_class ? " " + r.error_class : ""), "num"));
  tr.appendChild(el("td", r.attempt_count, "num"));
  const ttft = r.ttft_ms === null || r.ttft_ms === undefined ? "" : " (ttft " + r.ttft_ms.toFixed(0) + ")";
  tr.appendChild(el("td", Number(r.total_ms).toFixed(0) + ttft, "num"));
  const u = r.usage || {};
  tr.appendChild(el("td", (u.input || 0) + " / " + (u.output || 0), "num"));
  tr.appendChild(el("td", r.cost_unknown ? "unknown" : usd(r.cost_usd), "num"));
  tr.appendChild(el("td", r.cache_hit ? "hit" : "miss"));
  return tr;
}

async function loadRequests(before) {
  const q = { limit: 50 };
  for (const f of FILTERS) if (params.get(f)) q[f] = params.get(f);
  if (before) q.before = before;
  const r = await getJSON("/admin/requests?" + qs(q));
  const body = $("requests-table").tBodies[0];
  $("requests-error").textContent = r.status === 200 ? "" : ((r.body && r.body.error) || "error " + r.status);
  if (r.status !== 200) return;
  if (!before) body.replaceChildren();
  for (const row of r.body.requests) body.appendChild(requestRow(row));
  olderCursor = r.body.next_before;
  $("older").hidden = !olderCursor;
  $("requests-count").textContent = body.rows.length + " shown";
}

// ---- one request -------------------------------------------------------------------------

function field(dl, name, value) {
  dl.appendChild(el("dt", name));
  dl.appendChild(el("dd", value === null || value === undefined ? "–" : value));
}

function cell(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

async function loadDetail(id) {
  $("detail").hidden = false;
  $("detail-id").textContent = id;
  $("detail-close").href = selfLink({ request: null });
  const r = await getJSON("/admin/requests/" + encodeURIComponent(id));
  if (r.status !== 200) { $("detail-error").textContent = (r.body && r.body.error) || "error " + r.status; return; }
  const d = r.body;
  const f = $("detail-fields");
  f.replaceChildren();
  for (const k of ["ts_ms", "gateway_key", "feature", "route", "endpoint", "requested_model", "provider",
    "model", "status", "error_class", "cache_hit", "stream", "ttft_ms", "total_ms", "estimated"]) {
    field(f, k, k === "ts_ms" ? time(d.ts_ms) : cell(d[k]));
  }
  field(f, "tokens", cell(d.usage));
  const c = $("detail-cost");
  c.replaceChildren();
  field(c, "actual cost USD", d.cost_unknown ? "unknown (unpriced model)" : usd(d.cost_usd));
  const reserved = d.reserved_usd === null || d.reserved_usd === undefined
    ? "none (no limit or budget applied, or the model is unpriced)" : usd(d.reserved_usd);
  field(c, "reserved cost USD", reserved);
  c.lastChild.id = "detail-reserved";
  if (d.reserved_usd && d.cost_usd !== null && d.cost_usd !== undefined && Number(d.reserved_usd) > 0) {
    // A ratio for reading only; the amounts above are the exact decimals.
    field(c, "actual / reserved", (100 * Number(d.cost_usd) / Number(d.reserved_usd)).toFixed(1) + " %");
  }
  field(c, "cache savings USD", usd(d.saved_usd));
  renderRoute(d.route_plan, d.route_reason);
  const w = $("detail-waterfall");
  w.replaceChildren();
  const img = el("img");
  img.alt = "attempts waterfall";
  img.src = "/ui/waterfall.svg?id=" + encodeURIComponent(id);
  w.appendChild(img);
  const attempts = Array.isArray(d.attempts) ? d.attempts : [];
  const cols = [];
  for (const a of attempts) for (const k of Object.keys(a)) if (!cols.includes(k)) cols.push(k);
  const t = $("detail-attempts");
  const head = el("tr");
  head.appendChild(el("th", "#"));
  for (const k of cols) head.appendChild(el("th", k));
  t.tHead.replaceChildren(head);
  t.tBodies[0].replaceChildren();
  attempts.forEach((a, i) => {
    const tr = el("tr");
    tr.appendChild(el("td", i + 1));
    for (const k of cols) tr.appendChild(el("td", cell(a[k])));
    t.tBodies[0].appendChild(tr);
  });
  const b = $("detail-bodies");
  b.replaceChildren();
  if (!d.bodies) {
    b.appendChild(el("p", "Not kept (the logging rules for this key and route keep no bodies).", "muted"));
  } else {
    b.appendChild(el("p", "mode: " + d.bodies.mode + (d.bodies.truncated ? " (truncated)" : ""), "muted"));
    b.appendChild(el("h4", "request"));
    b.appendChild(el("pre", d.bodies.request || "(none)"));
    b.appendChild(el("h4", "response (" + d.bodies.response_form + ")"));
    b.appendChild(el("pre", d.bodies.response || "(none)"));
  }
}

// The routing waterfall: each candidate in the strategy's order with its score and the
// attempts made at it, the candidates filters removed, then the other legs (race, hedge,
// judge, shadow).
function renderRoute(p, text) {
  const s = $("detail-route-summary");
  const body = $("detail-route").tBodies[0];
  body.replaceChildren();
  if (!p) { s.textContent = "no routing record"; return; }
  const parts = [];
  for (const r of p.rules || []) parts.push("rules: " + r);
  parts.push("strategy: " + (p.strategy || "unknown") + (p.note ? " (" + p.note + ")" : ""));
  if (p.legs) parts.push(p.legs);
  for (const u of p.unparsed || []) parts.push(u);
  s.textContent = parts.join(" → ") + (text ? "" : " (no route reason recorded)");
  const row = (cls, cells) => {
    const tr = el("tr", null, cls);
    for (const v of cells) tr.appendChild(el("td", v === null || v === undefined ? "–" : v));
    body.appendChild(tr);
  };
  const legCells = (a) => [a.attempt, a.role, a.status === null ? (a.error_class || "–") : a.status,
    a.ms === null || a.ms === undefined ? "–" : Number(a.ms).toFixed(0),
    a.cost_unknown ? "unknown" : usd(a.cost_usd)];
  for (const c of p.candidates || []) {
    const legs = c.attempts || [];
    if (!legs.length) row("candidate", [c.order, c.target, c.score, "passed", "not tried", "–", "–", "–", "–"]);
    for (const a of legs) row("candidate role-" + a.role, [c.order, c.target, c.score, "passed"].concat(legCells(a)));
  }
  for (const r of p.removed || []) row("removed", ["–", r.target, "–", "removed: " + r.filter, "–", "–", "–", "–", "–"]);
  for (const a of p.other_attempts || []) row("leg role-" + a.role, ["–", a.target, "–", "–"].concat(legCells(a)));
}

// ---- targets -----------------------------------------------------------------------------

function flatten(prefix, v, out) {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(prefix ? prefix + "." + k : k, x, out);
  } else {
    out[prefix] = v;
  }
  return out;
}

function fillTable(t, rows) {
  const cols = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const head = el("tr");
  for (const k of cols) head.appendChild(el("th", k));
  t.tHead.replaceChildren(head);
  t.tBodies[0].replaceChildren();
  for (const r of rows) {
    const tr = el("tr");
    for (const k of cols) {
      const v = r[k];
      tr.appendChild(el("td", typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : cell(v),
        typeof v === "number" ? "num" : undefined));
    }
    t.tBodies[0].appendChild(tr);
  }
}

async function loadTargets() {
  const r = await getJSON("/admin/targets");
  if (r.status !== 200) { $("targets-error").textContent = (r.body && r.body.error) || "error " + r.status; return; }
  const rows = [];
  for (const route of r.body.routes || []) {
    for (const t of route.targets || []) {
      const row = { route: route.route || route.name };
      if (typeof t === "string") row.target = t; else Object.assign(row, flatten("", t, {}));
      rows.push(row);
    }
  }
  fillTable($("targets-table"), rows);
  const breakers = (r.body.health && r.body.health.breakers) || r.body.breakers || {};
  const bt = $("breakers-table").tBodies[0];
  bt.replaceChildren();
  for (const [name, state] of Object.entries(breakers)) {
    const tr = el("tr");
    tr.appendChild(el("td", name));
    tr.appendChild(el("td", cell(state)));
    bt.appendChild(tr);
  }
  if (!Object.keys(breakers).length) {
    const tr = el("tr");
    tr.appendChild(el("td", "no breaker has state yet", "muted"));
    bt.appendChild(tr);
  }
}

// ---- experiments -------------------------------------------------------------------------

async function loadExperiments() {
  const r = await getJSON("/admin/experiments");
  const status = $("experiments-status");
  const t = $("experiments-table");
  if (r.status === 404) {
    status.textContent = "Experiments are not built in this gateway yet: it has no /admin/experiments endpoint. " +
      "This section shows each variant's score, interval, cost and latency once it does.";
    t.hidden = true;
    return;
  }
  if (r.status !== 200 || !r.body) { status.textContent = "experiments unavailable (" + r.status + ")"; return; }
  const rows = [];
  // Each experiment's intervals, drawn by the gateway (plotters): one error bar per variant.
  const charts = $("experiment-charts");
  charts.replaceChildren();
  for (const ex of r.body.experiments || []) {
    const img = el("img", null, "interval-chart");
    img.alt = "score intervals of " + (ex.name || ex.id);
    img.dataset.experiment = ex.name || ex.id;
    img.src = "/ui/experiment.svg?" + qs({ name: ex.name || ex.id, t: Date.now() });
    charts.appendChild(img);
  }
  for (const ex of r.body.experiments || []) {
    for (const v of ex.variants || [{}]) {
      rows.push(Object.assign({ experiment: ex.name || ex.id, decision: cell(ex.decision) }, flatten("", v, {})));
    }
  }
  status.textContent = rows.length ? "" : "No experiments configured.";
  t.hidden = !rows.length;
  fillTable(t, rows);
}

// ---- wiring ------------------------------------------------------------------------------

async function refresh() {
  const jobs = [loadSpend(), loadRequests(null), loadTargets(), loadExperiments()];
  const id = params.get("request");
  if (id) jobs.push(loadDetail(id));
  const results = await Promise.allSettled(jobs);
  const failed = results.filter((x) => x.status === "rejected");
  $("updated").textContent = (failed.length ? "partly failed: " + failed[0].reason + "; " : "") +
    "updated " + new Date().toLocaleTimeString() + ", every " + REFRESH_MS / 1000 + " s";
  document.body.dataset.ready = "1";
}

function init() {
  for (const f of FILTERS) { const input = $("f-" + f); if (input && params.get(f)) input.value = params.get(f); }
  if (params.get("since")) $("since").value = params.get("since");
  // Keep the other filters when one form is submitted.
  for (const form of [$("filters"), $("period-form")]) {
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const p = new URLSearchParams(location.search);
      p.delete("request");
      for (const [k, v] of new FormData(form).entries()) { if (v) p.set(k, v); else p.delete(k); }
      location.search = p.toString();
    });
  }
  $("older").addEventListener("click", (ev) => { ev.preventDefault(); if (olderCursor) loadRequests(olderCursor); });
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", init);
