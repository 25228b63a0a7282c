// etlhub dashboard: no framework, no CDN. It reads the hub API with the
// token kept in this browser and refreshes every 10 seconds.
"use strict";
const RISK = { "breached": 0, "predicted-breach": 1, "at-risk": 2, "running": 3, "ok": 4, "idle": 5, "": 6 };
const $ = (s) => document.querySelector(s);
// el builds an element: attributes through setAttribute (properties for
// the few that are state: hidden, checked, disabled, value), children as
// elements or text nodes. Data from the API only ever becomes text, never
// markup; the page's policy requires Trusted Types, so an HTML sink throws.
const SVG = "http://www.w3.org/2000/svg";
function build(ns, tag, attrs, kids) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (!ns && (k === "hidden" || k === "checked" || k === "disabled" || k === "value")) e[k] = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of kids.flat(Infinity)) if (c != null && c !== false) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const el = (tag, attrs, ...kids) => build(null, tag, attrs, kids);
const svgEl = (tag, attrs, ...kids) => build(SVG, tag, attrs, kids);
const show = (...nodes) => $("#view").replaceChildren(...nodes);
const badge = (cls, text) => el("span", { class: "badge " + cls }, text);
const token = () => localStorage.getItem("etlhub-token") || "";
let timer = null;
// The board's filter survives the refresh: text on tenant or job, and
// "problems only" (breached, predicted to breach, at risk).
const view = { filter: "", problems: false, jobs: [] };
const PROBLEM = (r) => RISK[r || ""] <= RISK["at-risk"];

async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json", ...(opts.headers || {}) } });
  if (res.status === 401) { showLogin("The token was refused."); throw new Error("unauthorized"); }
  if (res.status === 204) return null;
  const body = await res.json();
  if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
  return body;
}

function showLogin(msg) {
  $("#login").hidden = false; show(); $("#logout").hidden = true;
  $("#login-error").textContent = msg || "";
}

const hm = (t) => t ? new Date(t).toISOString().slice(11, 16) + "Z" : "–";
const dur = (s) => s == null ? "–" : (s >= 3600 ? Math.floor(s / 3600) + "h" : "") + Math.floor((s % 3600) / 60) + "m";
const ago = (t) => { if (!t) return "never"; const m = Math.round((Date.now() - new Date(t)) / 60000); return m < 90 ? m + " min ago" : Math.round(m / 60) + " h ago"; };

async function board() {
  view.jobs = (await api("/api/v1/status")).jobs;
  drawBoard();
}

// drawBoard renders the last status read with the current filter.
function drawBoard() {
  const focused = document.activeElement && document.activeElement.id === "filter";
  const caret = focused ? document.activeElement.selectionStart : null;
  const all = view.jobs.slice().sort((a, b) => (RISK[a.risk || ""] - RISK[b.risk || ""]) || (a.tenant + a.job).localeCompare(b.tenant + b.job));
  const counts = {};
  all.forEach((j) => { counts[j.risk || ""] = (counts[j.risk || ""] || 0) + 1; });
  const f = view.filter.toLowerCase();
  const jobs = all.filter((j) => (!f || (j.tenant + "/" + j.job).toLowerCase().includes(f)) && (!view.problems || PROBLEM(j.risk)));
  const summary = Object.keys(RISK).filter((r) => counts[r]).flatMap((r) =>
    [el("span", { class: "count", "data-risk": r }, badge("risk-" + r, r || "unknown"), " ", el("b", {}, counts[r])), " "]);
  const td = (label, attrs, ...kids) => el("td", { "data-label": label, ...attrs }, ...kids);
  const rows = jobs.map((j) => {
    const late = j.predicted_finish && j.deadline && new Date(j.predicted_finish) > new Date(j.deadline);
    const pct = j.progress_pct == null ? "" : [el("span", { class: "bar" }, el("span", { style: "width:" + Number(j.progress_pct) + "%" })), " " + Number(j.progress_pct) + "%"];
    return el("tr", { class: "row", "data-run": j.run_id || "", "data-tenant": j.tenant, "data-job": j.job },
      td("tenant", {}, j.tenant), td("job", {}, j.job), td("risk", {}, badge("risk-" + (j.risk || ""), j.risk || "–")),
      td("state", {}, j.state || "–"), td("stage", {}, j.stage || ""), td("progress", {}, pct), td("elapsed", {}, dur(j.elapsed_s)),
      td("predicted", { class: late ? "late" : "" }, hm(j.predicted_finish)), td("deadline", {}, hm(j.deadline)),
      td("last success", {}, ago(j.last_success_at)), td("alerts", {}, Number(j.active_alerts) || 0));
  });
  const head = (...names) => el("thead", {}, el("tr", {}, names.map((n) => el("th", {}, n))));
  show(el("div", { id: "summary" }, summary, el("span", { class: "muted" }, all.length + " jobs")),
    el("div", { id: "tools" }, el("input", { id: "filter", type: "search", placeholder: "Filter tenant or job", "aria-label": "Filter tenant or job", value: view.filter }), " ",
      el("label", {}, el("input", { id: "problems", type: "checkbox", checked: view.problems }), " problems only"), " ",
      el("span", { id: "shown", class: "muted" }, jobs.length + " shown")),
    el("table", { id: "board" }, head("Tenant", "Job", "Risk", "State", "Stage", "Progress", "Elapsed", "Predicted", "Deadline", "Last success", "Alerts"),
      el("tbody", {}, rows)));
  if (focused) { $("#filter").focus(); $("#filter").setSelectionRange(caret, caret); }
  $("#filter").addEventListener("input", (e) => { view.filter = e.target.value; drawBoard(); });
  $("#problems").addEventListener("change", (e) => { view.problems = e.target.checked; drawBoard(); });
  document.querySelectorAll("tr.row").forEach((tr) => tr.addEventListener("click", () => {
    if (tr.dataset.run) location.hash = "#/run/" + encodeURIComponent(tr.dataset.run) + "/" + encodeURIComponent(tr.dataset.tenant) + "/" + encodeURIComponent(tr.dataset.job);
  }));
}

async function alerts() {
  const data = await api("/api/v1/alerts?state=pending,firing");
  const rows = data.alerts.map((a) => el("tr", { class: "alert", "data-id": a.id },
    el("td", { "data-label": "severity" }, badge(a.severity === "critical" ? "risk-breached" : "risk-at-risk", a.severity)),
    el("td", { "data-label": "rule" }, a.rule), el("td", { "data-label": "job" }, (a.tenant || "") + "/" + (a.job || "")),
    el("td", { "data-label": "state" }, a.state, a.acked_by ? " (acked by " + a.acked_by + ")" : ""),
    el("td", { "data-label": "summary", style: "white-space:normal" }, a.summary),
    el("td", {}, el("button", { class: "ack", disabled: a.state !== "firing" || !!a.acked_by }, "Ack"), " ", el("button", { class: "silence" }, "Silence 2h"))));
  const none = el("tr", {}, el("td", { colspan: "6", class: "muted" }, "No active alerts."));
  show(el("table", { id: "alerts" }, el("thead", {}, el("tr", {}, ["Severity", "Rule", "Job", "State", "Summary", ""].map((n) => el("th", {}, n)))),
    el("tbody", {}, rows.length ? rows : none)), el("p", { id: "action", class: "muted" }));
  document.querySelectorAll("tr.alert").forEach((tr) => {
    const a = data.alerts.find((x) => x.id === tr.dataset.id);
    tr.querySelector(".ack").addEventListener("click", async () => {
      try { await api("/api/v1/alerts/" + encodeURIComponent(a.id) + "/ack", { method: "POST" }); $("#action").textContent = "Acknowledged."; render(); }
      catch (e) { $("#action").textContent = e.message; }
    });
    tr.querySelector(".silence").addEventListener("click", async () => {
      const ends = new Date(Date.now() + 2 * 3600 * 1000).toISOString();
      try {
        await api("/api/v1/silences", { method: "POST", body: JSON.stringify({ matchers: [{ name: "tenant", value: a.tenant }, { name: "job", value: a.job }, { name: "rule", value: a.rule }], ends_at: ends, comment: "from the dashboard" }) });
        $("#action").textContent = "Silenced for 2 hours.";
      } catch (e) { $("#action").textContent = e.message; }
    });
  });
}

async function sources() {
  const data = await api("/api/v1/sources");
  const rows = data.sources.map((s) => el("tr", {}, el("td", {}, s.name), el("td", {}, s.kind),
    el("td", {}, badge(s.healthy ? "risk-ok" : "risk-breached", s.healthy ? "healthy" : "failing")),
    el("td", {}, ago(s.last_success_at)), el("td", {}, Number(s.consecutive_failures) || 0), el("td", { style: "white-space:normal" }, s.last_error || "")));
  show(el("table", { id: "sources" }, el("thead", {}, el("tr", {}, ["Source", "Kind", "Health", "Last success", "Failures", "Last error"].map((n) => el("th", {}, n)))),
    el("tbody", {}, rows)));
}

// run draws a run's progress over time, its projected finish with the
// uncertainty, the deadline and the stage changes.
async function run(id, tenant, job) {
  const [r, j] = await Promise.all([api("/api/v1/runs/" + encodeURIComponent(id) + "?tenant=" + encodeURIComponent(tenant) + "&job=" + encodeURIComponent(job)), api("/api/v1/jobs/" + encodeURIComponent(tenant) + "/" + encodeURIComponent(job))]);
  const v = j.view || {};
  const pts = r.observations.filter((o) => o.updated_at).map((o) => ({ t: new Date(o.updated_at).getTime(), y: o.rows_done, total: o.rows_total, stage: o.stage }));
  const total = Math.max(1, ...pts.map((p) => p.total || 0), ...pts.map((p) => p.y));
  const times = pts.map((p) => p.t);
  if (v.deadline) times.push(new Date(v.deadline).getTime());
  if (v.predicted_finish) times.push(new Date(v.predicted_finish).getTime());
  const t0 = Math.min(...times), t1 = Math.max(...times) + 1;
  const W = 900, H = 300, X = (t) => 40 + (W - 60) * (t - t0) / (t1 - t0), Y = (y) => H - 30 - (H - 60) * y / total;
  const svg = svgEl("svg", { id: "chart", viewBox: `0 0 ${W} ${H}` }, svgEl("line", { x1: 40, y1: Y(total), x2: W - 20, y2: Y(total), stroke: "#26313b" }));
  let stage = "";
  for (const p of pts) if (p.stage !== stage) {
    stage = p.stage;
    svg.append(svgEl("line", { x1: X(p.t), y1: 20, x2: X(p.t), y2: H - 30, stroke: "#26313b", "stroke-dasharray": "2 3" }),
      svgEl("text", { x: X(p.t) + 3, y: 28, fill: "#8a96a3", "font-size": 11 }, stage || ""));
  }
  svg.append(svgEl("polyline", { fill: "none", stroke: "#4aa3df", "stroke-width": 2, points: pts.map((p) => X(p.t) + "," + Y(p.y)).join(" ") }));
  if (v.predicted_finish && pts.length) {
    const last = pts[pts.length - 1], f = new Date(v.predicted_finish).getTime();
    svg.append(svgEl("line", { id: "projection", x1: X(last.t), y1: Y(last.y), x2: X(f), y2: Y(total), stroke: "#f08c3a", "stroke-dasharray": "5 4" }));
  }
  if (v.deadline) {
    const d = X(new Date(v.deadline).getTime());
    svg.append(svgEl("line", { id: "deadline", x1: d, y1: 15, x2: d, y2: H - 30, stroke: "#e5484d", "stroke-width": 2 }),
      svgEl("text", { x: d - 55, y: H - 12, fill: "#e5484d", "font-size": 12 }, "deadline"));
  }
  const run = r.run;
  const kv = (k, ...vals) => [el("span", { class: "muted" }, k), el("span", {}, ...vals)];
  show(el("h2", {}, run.tenant + "/" + run.job + " ", el("span", { class: "muted" }, run.run_id)),
    el("div", { class: "kv" },
      kv("Risk", badge("risk-" + (v.risk || ""), v.risk || "–"), " " + (v.why || "")),
      kv("State", `${run.state || ""} ${run.stage || ""} — ${Number(run.rows_done) || 0} of ${Number(run.rows_total) || 0} rows`),
      el("span", { class: "muted" }, "Predicted finish"),
      el("span", { id: "predicted" }, `${hm(v.predicted_finish)} (deadline ${hm(v.deadline)}; learned from ${Number(v.learned_from) || 0} nights, ${v.prediction_basis || ""})`),
      kv("Files arrived", hm(run.files_arrived_at)),
      kv("Data quality", `${Number(run.quality_errors) || 0} errors, ${Number(run.quality_warnings) || 0} warnings`),
      v.logs ? kv("Logs", v.logs) : null),
    svg);
}

async function render() {
  if (!token()) return showLogin();
  $("#login").hidden = true; $("#logout").hidden = false;
  const h = location.hash || "#/";
  try {
    if (h.startsWith("#/run/")) { const [id, tenant, job] = h.slice(6).split("/").map(decodeURIComponent); await run(id, tenant, job); }
    else if (h === "#/alerts") await alerts();
    else if (h === "#/sources") await sources();
    else await board();
    $("#updated").textContent = "updated " + new Date().toISOString().slice(11, 19) + "Z";
  } catch (e) { if (e.message !== "unauthorized") $("#updated").textContent = "error: " + e.message; }
}

$("#login").addEventListener("submit", (e) => { e.preventDefault(); localStorage.setItem("etlhub-token", $("#token").value); render(); });
$("#logout").addEventListener("click", () => { localStorage.removeItem("etlhub-token"); showLogin(); });
window.addEventListener("hashchange", render);
render();
timer = setInterval(render, 10000);
