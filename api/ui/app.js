// etlhub dashboard: no framework, no CDN. It reads the hub API with the
// token kept in this browser and refreshes every 10 seconds.
"use strict";
const RISK = { "breached": 0, "predicted-breach": 1, "at-risk": 2, "running": 3, "ok": 4, "idle": 5, "": 6 };
const $ = (s) => document.querySelector(s);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
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
  $("#login").hidden = false; $("#view").innerHTML = ""; $("#logout").hidden = true;
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
  const summary = Object.keys(RISK).filter((r) => counts[r]).map((r) =>
    `<span class="count" data-risk="${esc(r)}"><span class="badge risk-${esc(r)}">${esc(r || "unknown")}</span> <b>${counts[r]}</b></span>`).join(" ");
  const rows = jobs.map((j) => {
    const late = j.predicted_finish && j.deadline && new Date(j.predicted_finish) > new Date(j.deadline);
    const pct = j.progress_pct == null ? "" : `<span class="bar"><span style="width:${j.progress_pct}%"></span></span> ${j.progress_pct}%`;
    return `<tr class="row" data-run="${esc(j.run_id)}" data-tenant="${esc(j.tenant)}" data-job="${esc(j.job)}">
      <td data-label="tenant">${esc(j.tenant)}</td><td data-label="job">${esc(j.job)}</td>
      <td data-label="risk"><span class="badge risk-${esc(j.risk || "")}">${esc(j.risk || "–")}</span></td>
      <td data-label="state">${esc(j.state || "–")}</td><td data-label="stage">${esc(j.stage || "")}</td>
      <td data-label="progress">${pct}</td><td data-label="elapsed">${dur(j.elapsed_s)}</td>
      <td data-label="predicted" class="${late ? "late" : ""}">${hm(j.predicted_finish)}</td><td data-label="deadline">${hm(j.deadline)}</td>
      <td data-label="last success">${ago(j.last_success_at)}</td><td data-label="alerts">${j.active_alerts || 0}</td></tr>`;
  }).join("");
  $("#view").innerHTML = `<div id="summary">${summary} <span class="muted">${all.length} jobs</span></div>
    <div id="tools"><input id="filter" type="search" placeholder="Filter tenant or job" value="${esc(view.filter)}" aria-label="Filter tenant or job">
    <label><input id="problems" type="checkbox" ${view.problems ? "checked" : ""}> problems only</label>
    <span id="shown" class="muted">${jobs.length} shown</span></div>
    <table id="board"><thead><tr><th>Tenant</th><th>Job</th><th>Risk</th><th>State</th><th>Stage</th>
    <th>Progress</th><th>Elapsed</th><th>Predicted</th><th>Deadline</th><th>Last success</th><th>Alerts</th></tr></thead><tbody>${rows}</tbody></table>`;
  if (focused) { $("#filter").focus(); $("#filter").setSelectionRange(caret, caret); }
  $("#filter").addEventListener("input", (e) => { view.filter = e.target.value; drawBoard(); });
  $("#problems").addEventListener("change", (e) => { view.problems = e.target.checked; drawBoard(); });
  document.querySelectorAll("tr.row").forEach((tr) => tr.addEventListener("click", () => {
    if (tr.dataset.run) location.hash = "#/run/" + encodeURIComponent(tr.dataset.run) + "/" + encodeURIComponent(tr.dataset.tenant) + "/" + encodeURIComponent(tr.dataset.job);
  }));
}

async function alerts() {
  const data = await api("/api/v1/alerts?state=pending,firing");
  const rows = data.alerts.map((a) => `<tr class="alert" data-id="${esc(a.id)}"><td data-label="severity"><span class="badge ${a.severity === "critical" ? "risk-breached" : "risk-at-risk"}">${esc(a.severity)}</span></td>
    <td data-label="rule">${esc(a.rule)}</td><td data-label="job">${esc(a.tenant)}/${esc(a.job)}</td><td data-label="state">${esc(a.state)}${a.acked_by ? " (acked by " + esc(a.acked_by) + ")" : ""}</td>
    <td data-label="summary" style="white-space:normal">${esc(a.summary)}</td>
    <td><button class="ack" ${a.state !== "firing" || a.acked_by ? "disabled" : ""}>Ack</button> <button class="silence">Silence 2h</button></td></tr>`).join("");
  $("#view").innerHTML = `<table id="alerts"><thead><tr><th>Severity</th><th>Rule</th><th>Job</th><th>State</th><th>Summary</th><th></th></tr></thead><tbody>${rows || '<tr><td colspan="6" class="muted">No active alerts.</td></tr>'}</tbody></table><p id="action" class="muted"></p>`;
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
  const rows = data.sources.map((s) => `<tr><td>${esc(s.name)}</td><td>${esc(s.kind)}</td><td><span class="badge ${s.healthy ? "risk-ok" : "risk-breached"}">${s.healthy ? "healthy" : "failing"}</span></td>
    <td>${ago(s.last_success_at)}</td><td>${s.consecutive_failures}</td><td style="white-space:normal">${esc(s.last_error)}</td></tr>`).join("");
  $("#view").innerHTML = `<table id="sources"><thead><tr><th>Source</th><th>Kind</th><th>Health</th><th>Last success</th><th>Failures</th><th>Last error</th></tr></thead><tbody>${rows}</tbody></table>`;
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
  let svg = `<svg id="chart" viewBox="0 0 ${W} ${H}"><line x1="40" y1="${Y(total)}" x2="${W - 20}" y2="${Y(total)}" stroke="#26313b"/>`;
  let stage = "";
  for (const p of pts) if (p.stage !== stage) { stage = p.stage; svg += `<line x1="${X(p.t)}" y1="20" x2="${X(p.t)}" y2="${H - 30}" stroke="#26313b" stroke-dasharray="2 3"/><text x="${X(p.t) + 3}" y="28" fill="#8a96a3" font-size="11">${esc(stage)}</text>`; }
  svg += `<polyline fill="none" stroke="#4aa3df" stroke-width="2" points="${pts.map((p) => X(p.t) + "," + Y(p.y)).join(" ")}"/>`;
  if (v.predicted_finish && pts.length) {
    const last = pts[pts.length - 1], f = new Date(v.predicted_finish).getTime();
    svg += `<line id="projection" x1="${X(last.t)}" y1="${Y(last.y)}" x2="${X(f)}" y2="${Y(total)}" stroke="#f08c3a" stroke-dasharray="5 4"/>`;
  }
  if (v.deadline) { const d = X(new Date(v.deadline).getTime()); svg += `<line id="deadline" x1="${d}" y1="15" x2="${d}" y2="${H - 30}" stroke="#e5484d" stroke-width="2"/><text x="${d - 55}" y="${H - 12}" fill="#e5484d" font-size="12">deadline</text>`; }
  svg += `</svg>`;
  const run = r.run;
  $("#view").innerHTML = `<h2>${esc(run.tenant)}/${esc(run.job)} <span class="muted">${esc(run.run_id)}</span></h2>
    <div class="kv"><span class="muted">Risk</span><span><span class="badge risk-${esc(v.risk || "")}">${esc(v.risk || "–")}</span> ${esc(v.why || "")}</span>
    <span class="muted">State</span><span>${esc(run.state)} ${esc(run.stage)} — ${run.rows_done} of ${run.rows_total} rows</span>
    <span class="muted">Predicted finish</span><span id="predicted">${hm(v.predicted_finish)} (deadline ${hm(v.deadline)}; learned from ${v.learned_from || 0} nights, ${esc(v.prediction_basis || "")})</span>
    <span class="muted">Files arrived</span><span>${hm(run.files_arrived_at)}</span>
    <span class="muted">Data quality</span><span>${run.quality_errors} errors, ${run.quality_warnings} warnings</span>
    ${v.logs ? `<span class="muted">Logs</span><span>${esc(v.logs)}</span>` : ""}</div>${svg}`;
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
