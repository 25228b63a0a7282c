// etlhub dashboard: no framework, no CDN. It reads the hub API with the
// token kept in this browser, hears of changes on the event stream and
// reads again every 30 seconds in case the stream is down.
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
    if (!ns && (k === "hidden" || k === "checked" || k === "disabled" || k === "value" || k === "selected")) e[k] = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of kids.flat(Infinity)) if (c != null && c !== false) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const el = (tag, attrs, ...kids) => build(null, tag, attrs, kids);
const svgEl = (tag, attrs, ...kids) => build(SVG, tag, attrs, kids);
const show = (...nodes) => $("#view").replaceChildren(...nodes);
const badge = (cls, text, title) => el("span", { class: "badge " + cls, title }, text);
const token = () => localStorage.getItem("etlhub-token") || "";
const enc = encodeURIComponent;
// The board's filter survives the refresh: text on tenant or job, and
// "problems only" (breached, predicted to breach, at risk, or a night that
// went wrong).
const view = { filter: "", problems: false, jobs: [], zones: new Set(), limit: 500, shown: [], rows: new Map(), at: new Map() };
const jobKey = (j) => j.tenant + "\u0000" + j.job;
// The board draws the worst 500 rows first and 500 more each time the
// bottom comes into view (or "show more" is pressed): 5,000 rows at once
// take seconds to build and lay out.
const PAGE = 500;

// The hub's clock: every "now" on the page is the hub's (simulated in the
// demo), read from the answers' generated_at and carried on by this
// browser's clock in between.
let skew = 0;
const now = () => Date.now() + skew;
const noteClock = (at) => { if (at) skew = new Date(at).getTime() - Date.now(); };

async function api(path, opts = {}) {
  let res;
  try {
    res = await fetch(path, { ...opts, headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json", ...(opts.headers || {}) } });
  } catch (e) { stale("the hub does not answer"); throw e; }
  if (res.status === 401) { showLogin("The token was refused."); throw new Error("unauthorized"); }
  if (res.status === 204) return null;
  const body = await res.json().catch(() => ({}));
  if (res.status >= 502) stale("the hub's store does not answer");
  if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
  return body;
}

function showLogin(msg) {
  $("#login").hidden = false; show(); $("#logout").hidden = true;
  $("#login-error").textContent = msg || "";
}

// ---- Time as people read it -------------------------------------------
// Every time is shown in the viewer's zone (chosen in the header, kept in
// this browser) with its offset; the date is added when its day is not
// today's; hovering shows it in the tenant's own zone.
const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const zone = () => localStorage.getItem("etlhub-zone") || browserZone;
const fmts = new Map();
function partsOf(ms, tz) {
  let f = fmts.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", { timeZone: tz, weekday: "short", day: "numeric", month: "short", year: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "shortOffset" });
    fmts.set(tz, f);
  }
  const o = {};
  for (const p of f.formatToParts(ms)) o[p.type] = p.value;
  o.off = (o.timeZoneName || "GMT").replace("GMT", "UTC");
  o.date = o.weekday + " " + o.day + " " + o.month;
  o.dayKey = o.year + o.month + o.day;
  return o;
}
// clockText: "06:44 UTC-4", or "Tue 1 Sep 06:44 UTC-4" on another day.
// Formatting is slow next to everything else on the board: the answers
// are kept per zone and minute (and today's day per zone for a minute).
const clockCache = new Map();
function clockText(t, tz, withDate) {
  tz = tz || zone();
  const ms = new Date(t).getTime(), today = Math.floor(now() / 60000);
  const key = tz + "|" + Math.floor(ms / 60000) + "|" + (withDate ? "d" : today);
  let s = clockCache.get(key);
  if (s === undefined) {
    if (clockCache.size > 20000) clockCache.clear();
    const p = partsOf(ms, tz);
    const other = withDate || p.dayKey !== todayKey(tz, today);
    s = (other ? p.date + " " : "") + p.hour + ":" + p.minute + " " + p.off;
    clockCache.set(key, s);
  }
  return s;
}
const todays = new Map();
function todayKey(tz, minute) {
  const k = tz + "|" + minute;
  if (!todays.has(k)) todays.set(k, partsOf(minute * 60000, tz).dayKey);
  return todays.get(k);
}
// clock is a <time>; its title (the tenant's zone) is filled in on hover.
function clock(t, tenantZone, withDate) {
  if (!t) return el("span", { class: "muted" }, "–");
  return el("time", { datetime: new Date(t).toISOString(), "data-tz": tenantZone || "" }, clockText(t, null, withDate));
}
document.addEventListener("mouseover", (e) => fillTitle(e.target));
document.addEventListener("focusin", (e) => fillTitle(e.target));
function fillTitle(node) {
  // A board row's risk: its reason, with its times in the viewer's zone,
  // made when first hovered (5,000 rows are not all read).
  const w = node && node.closest && node.closest("[data-why]");
  if (w && !w.title) {
    const tr = w.closest("tr.row"), i = tr && view.at.get(tr.dataset.tenant + "\u0000" + tr.dataset.job);
    const j = i === undefined ? null : view.jobs[i];
    if (j && j.why) w.title = reasonText(j.why, j.why_parts);
  }
  const t = node && node.closest && node.closest("time[datetime]");
  if (!t || t.title) return;
  const tz = t.dataset.tz || "UTC";
  t.title = (t.dataset.tz ? tz + ": " : "") + clockText(t.dateTime, tz, true) + " (" + t.dateTime.replace(".000Z", "Z") + ")";
}
// human says a duration as people do: "44 min", "1 h 20 min", "2 d 3 h".
function human(s) {
  const m = Math.round(Math.abs(s) / 60);
  if (m < 1) return "under a minute";
  if (m < 60) return m + " min";
  if (m < 48 * 60) return Math.floor(m / 60) + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
  const h = Math.round(m / 60);
  return Math.floor(h / 24) + " d" + (h % 24 ? " " + (h % 24) + " h" : "");
}
// rel: "in 1 h 20 min", "3 min ago".
function rel(t) {
  if (!t) return "";
  const s = (new Date(t).getTime() - now()) / 1000;
  if (Math.abs(s) < 30) return "now";
  return s > 0 ? "in " + human(s) : human(s) + " ago";
}
const ago = (t) => t ? rel(t) : "never";
const dur = (s) => s == null ? "–" : human(s);
// when: the time and how far from now, "06:00 UTC-4 (in 1 h 20 min)".
const when = (t, tz) => t ? [clock(t, tz), el("span", { class: "rel" }, " " + rel(t))] : el("span", { class: "muted" }, "–");

// ---- Times inside reasons ---------------------------------------------------
// The API gives a job's reason (why) and an alert's summary with their
// parts (why_parts, summary_parts): the text as the rules wrote it, and for
// each time in it the instant it names. The page shows each of those times
// in the viewer's zone like every other time on it (the tenant's zone and
// the text as written on hover); it never reads times out of the words.
// Every part is text (a text node or an attribute), never markup.
function reason(text, parts, tz) {
  if (!parts || !parts.length) return text ? [String(text)] : [];
  return parts.map((p) => p.at ? el("time", { datetime: new Date(p.at).toISOString(), "data-tz": tz || "", class: "in-reason", "data-text": p.text }, clockText(p.at)) : String(p.text));
}
// reasonText is the same for a title attribute (plain text).
function reasonText(text, parts) {
  if (!parts || !parts.length) return text ? String(text) : "";
  return parts.map((p) => p.at ? clockText(p.at) : String(p.text)).join("");
}

// ---- Outcomes -----------------------------------------------------------
// outcomeLabel: how a night went, "late by 44 min", "missed", "failed".
function outcomeLabel(o) {
  if (!o || !o.kind) return "";
  switch (o.kind) {
    case "late": return "late by " + human(o.late_by_s || 0);
    // Long past, "by how much" says only how old the night is.
    case "missed": return !o.attempts ? "missed: no run" : o.late_by_s && o.late_by_s < 86400 ? "missed by " + human(o.late_by_s) : "missed";
    case "failed": return o.late_by_s && o.late_by_s < 86400 ? "failed, " + human(o.late_by_s) + " late" : "failed";
    case "on-time": return "on time";
    default: return o.kind;
  }
}
const OUTCOME_CLASS = { "late": "risk-breached", "missed": "risk-breached", "failed": "risk-breached", "on-time": "risk-ok" };
// A night not judged yet (running, waiting, scheduled) is plain text.
const outcomeBadge = (o) => !o || !o.kind ? el("span", { class: "muted" }, "–") :
  judgedKind(o.kind) ? badge("outcome " + OUTCOME_CLASS[o.kind], outcomeLabel(o), o.summary) :
  o.kind === "no-record" ? el("span", { class: "outcome muted", title: o.summary }, "no record") : el("span", { class: "outcome muted", title: o.summary }, o.summary || o.kind);
const judgedKind = (k) => k === "late" || k === "missed" || k === "failed" || k === "on-time";
const WRONG = (o) => o && (o.kind === "late" || o.kind === "missed" || o.kind === "failed");
// rank orders the board: the worst first; a night gone wrong counts as breached.
const rank = (j) => Math.min(RISK[j.risk || ""], WRONG(j.outcome) ? 0 : 9);
const PROBLEM = (j) => rank(j) <= RISK["at-risk"];

// ---- The board ----------------------------------------------------------
// board reads the status and shows it: drawn whole when the board is not on
// the page yet, else patched (only the rows that changed are built again).
// How long it took, from the answer read to the frame painted, is kept in
// window.__renders (the Chromium test reads it).
async function board() {
  const body = await api("/api/v1/status");
  const arrived = performance.now();
  takeStatus(body);
  const how = $("#board tbody") ? "patch" : "draw";
  if (how === "patch") patchBoard(); else drawBoard();
  painted(arrived, how, view.jobs.length);
}
// painted notes, once the frame after it is painted, how long a render
// took since t0.
function painted(t0, how, jobs) {
  requestAnimationFrame(() => setTimeout(() => {
    const r = window.__renders || (window.__renders = []);
    r.push({ how, jobs, ms: performance.now() - t0 });
    if (r.length > 50) r.shift();
  }, 0));
}
// takeStatus keeps a whole status answer as the board's jobs.
function takeStatus(body) {
  noteClock(body.generated_at);
  if (body.stale_since) stale("the hub's store does not answer; the board as read " + human((now() - new Date(body.stale_since).getTime()) / 1000) + " ago");
  view.jobs = body.jobs;
  view.at = new Map(view.jobs.map((j, i) => [jobKey(j), i]));
  for (const j of view.jobs) if (j.timezone) view.zones.add(j.timezone);
  zoneOptions();
}

const runHash = (j) => "#/run/" + enc(j.run_id) + "/" + enc(j.tenant) + "/" + enc(j.job);
const nightsHash = (tenant, job) => "#/nights/" + enc(tenant) + "/" + enc(job);

// boardRow is one job's row.
const tdL = (label, attrs, ...kids) => el("td", { "data-label": label, ...attrs }, ...kids);
function boardRow(j) {
  const late = j.predicted_finish && j.deadline && new Date(j.predicted_finish) > new Date(j.deadline);
  const pct = j.progress_pct == null ? "" : [el("span", { class: "bar", "aria-hidden": "true" }, el("span", { style: "width:" + Number(j.progress_pct) + "%" })), " " + Number(j.progress_pct) + "%"];
  const tz = j.timezone;
  const tr = el("tr", { class: "row", "data-run": j.run_id || "", "data-tenant": j.tenant, "data-job": j.job },
    tdL("tenant", {}, el("a", { href: "#/district/" + enc(j.tenant) }, j.tenant)),
    tdL("job", {}, j.run_id ? el("a", { href: runHash(j), class: "runlink" }, j.job) : j.job),
    tdL("risk", {}, el("span", { class: "badge risk-" + (j.risk || ""), "data-why": j.why ? "" : null }, j.risk || "–")),
    tdL("tonight", { class: "outcome-cell" }, outcomeBadge(j.outcome)),
    tdL("state", {}, j.state || "–", j.stage ? el("span", { class: "rel" }, j.stage) : null),
    tdL("progress", {}, pct, j.elapsed_s != null ? el("span", { class: "rel" }, dur(j.elapsed_s) + " elapsed") : null),
    tdL("predicted", { class: late ? "late" : "" }, when(j.predicted_finish, tz), late ? el("span", { class: "sr" }, " (after the deadline)") : null),
    tdL("deadline", {}, when(j.deadline, tz)),
    tdL("last success", {}, j.last_success_at ? el("time", { datetime: new Date(j.last_success_at).toISOString(), "data-tz": tz || "" }, ago(j.last_success_at)) : "never"),
    tdL("alerts", {}, Number(j.active_alerts) || 0),
    tdL("nights", {}, j.last_night ? [outcomeBadge(j.last_night), " "] : null,
      j.configured ? el("a", { href: nightsHash(j.tenant, j.job), class: "nightslink", "aria-label": "30 nights of " + j.tenant + "/" + j.job }, "30 nights") : ""));
  tr._sig = rowSig(j);
  view.rows.set(jobKey(j), tr);
  return tr;
}
// rowSig is what a drawn row shows: its job as read, in the zone and the
// minute it was drawn in ("3 min ago" moves on with the clock). A row whose
// job has the same signature is kept as it is.
const rowSig = (j) => zone() + "|" + Math.floor(now() / 60000) + "|" + JSON.stringify(j);

// boardModel orders the jobs (the worst first), counts them by risk and
// filters them.
function boardModel() {
  const key = jobKey;
  const all = view.jobs.slice().sort((a, b) => (rank(a) - rank(b)) || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const counts = {};
  all.forEach((j) => { counts[j.risk || ""] = (counts[j.risk || ""] || 0) + 1; });
  const wrong = all.filter((j) => WRONG(j.outcome)).length;
  const f = view.filter.toLowerCase();
  const jobs = all.filter((j) => (!f || (j.tenant + "/" + j.job).toLowerCase().includes(f)) && (!view.problems || PROBLEM(j)));
  return { all, counts, wrong, jobs };
}
function summaryNodes(m) {
  const out = Object.keys(RISK).filter((r) => m.counts[r]).flatMap((r) =>
    [el("span", { class: "count", "data-risk": r }, badge("risk-" + r, r || "unknown"), " ", el("b", {}, m.counts[r])), " "]);
  if (m.wrong) out.push(el("span", { class: "count", "data-risk": "wrong" }, badge("risk-breached", "late, missed or failed"), " ", el("b", {}, m.wrong)), " ");
  out.push(el("span", { class: "muted" }, m.all.length + " jobs"));
  return out;
}

// patchBoard shows the jobs read since the board was drawn without drawing
// it again: the rows whose job is unchanged stay (moved if their place
// changed), the others are built, the summary is rewritten. A burst of
// changes costs the rows it changed, not 500 rows.
function patchBoard() {
  const tbody = $("#board tbody");
  if (!tbody) return drawBoard();
  const m = boardModel();
  view.shown = m.jobs;
  const want = m.jobs.slice(0, view.limit).map((j) => {
    const tr = view.rows.get(jobKey(j));
    return tr && tr._sig === rowSig(j) ? tr : boardRow(j);
  });
  const keep = new Set(want);
  for (const tr of [...tbody.children]) if (!keep.has(tr)) tr.remove();
  const kids = tbody.children;
  want.forEach((tr, i) => { if (kids[i] !== tr) tbody.insertBefore(tr, kids[i] || null); });
  $("#summary").replaceChildren(...summaryNodes(m));
  $("#shown").textContent = shownText();
  moreText();
}

// drawBoard renders the last status read with the current filter.
function drawBoard() {
  const focused = document.activeElement && document.activeElement.id === "filter";
  const caret = focused ? document.activeElement.selectionStart : null;
  view.rows = new Map();
  const m = boardModel(), jobs = m.jobs;
  view.shown = jobs;
  const rows = jobs.slice(0, view.limit).map(boardRow);
  const head = (...names) => el("thead", {}, el("tr", {}, names.map((n) => el("th", { scope: "col" }, n))));
  const tbody = el("tbody", {}, rows);
  show(el("h2", { class: "sr" }, "Board"),
    el("div", { id: "summary" }, summaryNodes(m)),
    el("div", { id: "tools" }, el("input", { id: "filter", type: "search", placeholder: "Filter tenant or job", "aria-label": "Filter tenant or job", value: view.filter }), " ",
      el("label", {}, el("input", { id: "problems", type: "checkbox", checked: view.problems }), " problems only"), " ",
      el("span", { id: "shown", class: "muted" }, shownText())),
    el("table", { id: "board" }, el("caption", { class: "sr" }, "Jobs, the worst first"),
      head("Tenant", "Job", "Risk", "Tonight", "State", "Progress", "Predicted", "Deadline", "Last success", "Alerts", "Last night, history"),
      tbody),
    el("p", { id: "more", hidden: jobs.length <= view.limit }, el("button", { type: "button", id: "more-button" }, "Show more")));
  moreText();
  if (focused) { $("#filter").focus(); $("#filter").setSelectionRange(caret, caret); }
  $("#filter").addEventListener("input", (e) => { view.filter = e.target.value; view.limit = PAGE; drawBoard(); });
  $("#more-button").addEventListener("click", moreRows);
  if (window.IntersectionObserver) new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting)) moreRows(); }).observe($("#more"));
  $("#problems").addEventListener("change", (e) => { view.problems = e.target.checked; drawBoard(); });
  // One listener for every row: a click on a row opens its run.
  tbody.addEventListener("click", (e) => {
    if (e.target.closest("a")) return;
    const tr = e.target.closest("tr.row");
    if (tr && tr.dataset.run) location.hash = runHash({ run_id: tr.dataset.run, tenant: tr.dataset.tenant, job: tr.dataset.job });
  });
}
const shownText = () => (view.shown.length > view.limit ? view.limit + " of " : "") + view.shown.length + " shown";
function moreText() {
  const rest = view.shown.length - view.limit;
  $("#more").hidden = rest <= 0;
  $("#more-button").textContent = "Show " + Math.min(PAGE, rest) + " more (" + rest + " not shown)";
}
// moreRows appends the next rows without redrawing the rest.
function moreRows() {
  if (view.shown.length <= view.limit) return;
  const next = view.shown.slice(view.limit, view.limit + PAGE);
  view.limit += PAGE;
  $("#board tbody").append(...next.map(boardRow));
  $("#shown").textContent = shownText();
  moreText();
}

// ---- Alerts ---------------------------------------------------------------
// Alerts as an on-call reads them: how long firing, since when, who
// acknowledged, whether the page and the Slack post went out, and alerts
// of one shared cause (one rule on one source) together.
const zoneOf = (a) => (view.jobs.find((j) => j.tenant === a.tenant && j.job === a.job) || {}).timezone || "";
async function alerts() {
  const [data, notes] = await Promise.all([api("/api/v1/alerts?state=pending,firing"), api("/api/v1/notifications").catch(() => ({ notifications: [] }))]);
  const byAlert = {};
  for (const n of notes.notifications || []) {
    const k = n.alert && n.alert.id;
    if (!k) continue;
    (byAlert[k] = byAlert[k] || []).push(n);
  }
  const delivery = (a) => {
    const ns = (byAlert[a.id] || []).filter((n) => n.event === "firing" || n.event === "acknowledged");
    // A job's alert explained by a shared cause goes out in that cause's
    // page, not on its own; say so rather than "not sent".
    if (!ns.length) return el("span", { class: "muted" }, a.grouped_under ? "in the shared cause's page" : a.silenced ? "silenced" :
      a.inhibited ? "inhibited by a more important alert" : a.state === "pending" ? "not yet (pending)" : "not sent");
    return ns.map((n) => el("div", { class: "delivery " + n.status },
      el("b", {}, n.receiver), " ", n.status === "delivered" ? ["delivered ", clock(n.delivered_at)] :
        n.status === "failed" ? ["failed: ", n.last_error || ""] : ["pending", n.attempts ? ", attempt " + n.attempts : "", n.last_error ? ": " + n.last_error : ""]));
  };
  const groups = new Map();
  // A shared cause: the rules' shared alert and the per-job alerts grouped
  // under it (grouped_under); else one rule firing on one source.
  for (const a of data.alerts) {
    const key = a.grouped_under ? "fp|" + a.grouped_under : a.scope === "shared" ? "fp|" + a.fingerprint : a.source ? a.rule + "|" + a.source : "alert|" + a.id;
    if (!groups.has(key)) groups.set(key, []);
    const g = groups.get(key);
    if (a.scope === "shared") g.unshift(a); else g.push(a);
  }
  const td = (label, attrs, ...kids) => el("td", { "data-label": label, ...attrs }, ...kids);
  const rows = [];
  for (const [key, list] of groups) {
    const shared = list[0].scope === "shared" ? list[0] : null;
    if (list.length > 1 || shared) rows.push(el("tr", { class: "group" + (shared ? " shared" : "") }, el("th", { colspan: "8", scope: "rowgroup" },
      shared ? "Shared cause: " : "Same rule and source: ", shared ? reason(shared.summary, shared.summary_parts) : list[0].rule + " on " + list[0].source, " — " +
      (shared && shared.affected ? shared.affected.length : list.length) + " jobs")));
    for (const a of list) {
      const since = a.fired_at || a.pending_since;
      rows.push(el("tr", { class: "alert" + (list.length > 1 || shared ? " grouped" : ""), "data-id": a.id, "data-rule": a.rule },
        td("severity", {}, badge(a.severity === "critical" ? "risk-breached" : "risk-at-risk", a.severity)),
        td("rule", {}, a.rule), td("job", {}, a.scope === "shared" && !a.tenant ? "shared: " + (a.affected || []).map((x) => x.tenant + "/" + x.job).join(", ") : (a.tenant || "") + "/" + (a.job || "")),
        td("state", { class: "age" }, a.state, " for " + human((now() - new Date(since).getTime()) / 1000), el("br"), el("span", { class: "muted" }, "since "), clock(since, null)),
        td("acknowledged", { class: "acked" }, a.acked_by ? [a.acked_by, " ", el("span", { class: "muted" }, rel(a.acked_at))] : el("span", { class: "muted" }, "no")),
        td("delivery", { class: "deliveries" }, delivery(a)),
        td("summary", { class: "summary", style: "white-space:normal" }, reason(a.summary, a.summary_parts, zoneOf(a))),
        td("actions", {}, el("button", { class: "ack", disabled: a.state !== "firing" || !!a.acked_by }, "Ack"), " ", el("button", { class: "silence" }, "Silence 2h"))));
    }
  }
  const none = el("tr", {}, el("td", { colspan: "8", class: "muted" }, "No active alerts."));
  show(el("h2", { class: "sr" }, "Alerts"),
    el("table", { id: "alerts" }, el("thead", {}, el("tr", {}, ["Severity", "Rule", "Job", "State", "Acknowledged", "Delivery", "Summary", "Actions"].map((n) => el("th", { scope: "col" }, n)))),
      el("tbody", {}, rows.length ? rows : none)), el("p", { id: "action", class: "muted", role: "status" }));
  document.querySelectorAll("tr.alert").forEach((tr) => {
    const a = data.alerts.find((x) => x.id === tr.dataset.id);
    tr.querySelector(".ack").addEventListener("click", async () => {
      try { await api("/api/v1/alerts/" + enc(a.id) + "/ack", { method: "POST" }); $("#action").textContent = "Acknowledged."; render(); }
      catch (e) { $("#action").textContent = e.message; }
    });
    tr.querySelector(".silence").addEventListener("click", async () => {
      const ends = new Date(now() + 2 * 3600 * 1000).toISOString();
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
  const deps = await api("/api/v1/dependencies").catch(() => ({ dependencies: [] }));
  show(el("h2", { class: "sr" }, "Sources"),
    el("table", { id: "sources" }, el("thead", {}, el("tr", {}, ["Source", "Kind", "Health", "Last success", "Failures", "Last error"].map((n) => el("th", { scope: "col" }, n)))),
      el("tbody", {}, rows)),
    dependencies(deps.dependencies || []));
}

// The Dependencies panel: the latest probe of each dependency (Redis,
// MongoDB, SFTP endpoints, the store), what it measured and why it failed.
// Every string from the API goes in as text.
const ratio = (v) => Math.round(100 * Number(v)) + "%";
const msOf = (v) => (Number(v) < 10 ? Number(v).toFixed(1) : Math.round(Number(v))) + " ms";
function depFacts(v) {
  const f = [];
  if (v.p95_ms != null) f.push("p95 " + msOf(v.p95_ms));
  if (v.memory_used_ratio != null) f.push("memory " + ratio(v.memory_used_ratio));
  if (v.connections_used_ratio != null) f.push("connections " + ratio(v.connections_used_ratio));
  if (v.clients_blocked) f.push(Number(v.clients_blocked) + " blocked");
  if (v.rejected_connections) f.push(Number(v.rejected_connections) + " refused");
  if (v.evictions_per_s) f.push(Number(v.evictions_per_s).toFixed(1) + " evictions/s");
  if (v.error_rate != null && v.calls) f.push(ratio(v.error_rate) + " errors of " + Number(v.calls));
  if (v.breaker_open) f.push(Number(v.breaker_open) >= 1 ? "breaker open" : "breaker half-open");
  if (v.in_flight) f.push(Number(v.in_flight) + " in flight");
  return f.join(", ");
}
function dependencies(list) {
  const rows = list.map((d) => {
    const v = d.values || {};
    return el("tr", {}, el("td", {}, d.subject), el("td", {}, d.kind), el("td", {}, d.tenant || "shared"),
      el("td", {}, badge(d.up ? "risk-ok" : "risk-breached", d.up ? "up" : "down")),
      el("td", {}, v.latency_ms != null ? msOf(v.latency_ms) : ""), el("td", { style: "white-space:normal" }, depFacts(v)),
      el("td", {}, ago(d.at)), el("td", { style: "white-space:normal" }, d.error || ""));
  });
  return el("section", { id: "dependencies", "aria-labelledby": "deps-h" }, el("h2", { id: "deps-h" }, "Dependencies"),
    list.length === 0 ? el("p", {}, "No dependency is probed (sources of kind redis, mongodb, sftp or store).") :
      el("table", {}, el("thead", {}, el("tr", {}, ["Subject", "Kind", "Tenant", "State", "Latency", "Measured", "When", "Error"].map((n) => el("th", { scope: "col" }, n)))),
        el("tbody", {}, rows)));
}

// ---- Night history ----------------------------------------------------------
function nightRows(nights, tz) {
  return nights.map((n) => el("tr", { class: "night", "data-kind": n.kind },
    el("td", { "data-label": "night" }, clock(n.night, tz, true)),
    el("td", { "data-label": "outcome" }, outcomeBadge(n)),
    el("td", { "data-label": "files arrived" }, clock(n.files_arrived_at, tz)),
    el("td", { "data-label": "finished" }, clock(n.finished_at, tz)),
    el("td", { "data-label": "deadline" }, clock(n.deadline, tz)),
    el("td", { "data-label": "errors" }, Number(n.quality_errors) || 0),
    el("td", { "data-label": "warnings" }, Number(n.quality_warnings) || 0),
    el("td", { "data-label": "attempts" }, Number(n.attempts) || 0)));
}
const nightHead = () => el("thead", {}, el("tr", {}, ["Night", "Outcome", "Files arrived", "Finished", "Deadline", "Errors", "Warnings", "Attempts"].map((n) => el("th", { scope: "col" }, n))));
const pct = (x) => x == null ? "–" : Math.round(x * 100) + " %";
function rateText(r) {
  if (!r.judged) return "no night judged yet";
  return `on time ${r.on_time} of ${r.judged} nights (${pct(r.on_time_rate)}); the last ${Math.min(7, r.judged)}: ${pct(r.recent_on_time_rate)}`;
}

// landing draws each night's finish against its deadline ("landing
// times"): above the line is late, below on time; missed and failed
// nights are marked on the line's far side.
function landing(nights, tz) {
  const list = nights.slice().reverse(), W = 900, H = 220, L = 120, R = 20, T = 20, B = 40;
  const mins = list.map((n) => n.finished_at ? (new Date(n.finished_at) - new Date(n.deadline)) / 60000 : null);
  const span = Math.max(60, ...mins.filter((m) => m != null).map(Math.abs));
  const Y = (m) => T + (H - T - B) / 2 - (H - T - B) / 2 * Math.max(-1, Math.min(1, m / span));
  const X = (i) => L + (W - L - R) * (i + 0.5) / Math.max(1, list.length);
  const svg = svgEl("svg", { id: "landing", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "finish against deadline per night" },
    svgEl("line", { x1: L, x2: W - R, y1: Y(0), y2: Y(0), stroke: "#e5484d", "stroke-width": 1.5 }),
    svgEl("text", { x: L - 6, y: Y(0) + 4, "text-anchor": "end", fill: "#e5484d", "font-size": 11 }, "deadline"),
    svgEl("text", { x: L - 6, y: T + 10, "text-anchor": "end", fill: "#8a96a3", "font-size": 11 }, human(span * 60) + " late"),
    svgEl("text", { x: L - 6, y: H - B, "text-anchor": "end", fill: "#8a96a3", "font-size": 11 }, human(span * 60) + " early"));
  list.forEach((n, i) => {
    const m = mins[i], x = X(i), bad = WRONG(n);
    const y = m == null ? (bad ? T : Y(0)) : Y(m);
    svg.append(svgEl("line", { x1: x, x2: x, y1: Y(0), y2: y, stroke: bad ? "#e5484d" : "#46a758", "stroke-width": 6 },
      svgEl("title", {}, clockText(n.night, tz, true) + ": " + outcomeLabel(n))));
    if (i % Math.ceil(list.length / 10) === 0) svg.append(svgEl("text", { x, y: H - B + 16, "text-anchor": "middle", fill: "#8a96a3", "font-size": 11 }, partsOf(new Date(n.night).getTime(), tz || zone()).date.slice(4)));
    if (m == null && bad) svg.append(svgEl("text", { x, y: T + 10, "text-anchor": "middle", fill: "#e5484d", "font-size": 12, "font-weight": 700 }, n.kind === "failed" ? "✕" : "?"));
  });
  return svg;
}

async function nights(tenant, job) {
  const d = await api("/api/v1/jobs/" + enc(tenant) + "/" + enc(job) + "/nights?limit=30");
  show(el("h2", {}, tenant + "/" + job + " ", el("span", { class: "muted" }, "last " + d.nights.length + " nights")),
    el("p", { id: "rate" }, rateText(d), el("span", { class: "muted" }, ` · deadline ${d.deadline} ${d.timezone}`)),
    landing(d.nights, d.timezone),
    el("table", { id: "nights" }, el("caption", { class: "sr" }, "Nights, newest first"), nightHead(), el("tbody", {}, nightRows(d.nights, d.timezone))));
}

// ---- The run chart ------------------------------------------------------------
// niceStep picks a tick step (ms) that gives about n ticks over span.
function niceStep(span, n) {
  const steps = [1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 720, 1440].map((m) => m * 60000);
  return steps.find((s) => span / s <= n) || steps[steps.length - 1];
}
const rowsText = (n) => n >= 1e6 ? (n / 1e6).toFixed(n % 1e6 ? 1 : 0) + "M" : n >= 1e3 ? Math.round(n / 1e3) + "k" : String(Math.round(n));

// run draws a run's progress over time with axes, its projected finish
// and the band it likely falls in, the deadline, the stage spans and the
// moment progress stopped; hovering reads the values.
async function run(id, tenant, job) {
  const [r, j] = await Promise.all([api("/api/v1/runs/" + enc(id) + "?tenant=" + enc(tenant) + "&job=" + enc(job)), api("/api/v1/jobs/" + enc(tenant) + "/" + enc(job))]);
  const v = j.view || {}, tz = j.spec && j.spec.timezone;
  const obs = r.observations;
  const pts = obs.filter((o) => o.updated_at).map((o) => ({ t: new Date(o.updated_at).getTime(), at: new Date(o.at).getTime(), y: o.rows_done, total: o.rows_total, stage: o.stage }));
  const total = Math.max(1, ...pts.map((p) => p.total || 0), ...pts.map((p) => p.y));
  const times = pts.map((p) => p.t).concat(obs.map((o) => new Date(o.at).getTime()));
  const run = r.run;
  if (run.started_at) times.push(new Date(run.started_at).getTime());
  for (const t of [v.deadline, v.predicted_finish, v.finish_lo, v.finish_hi]) if (t) times.push(new Date(t).getTime());
  const tMin = Math.min(...times), tMax = Math.max(...times);
  const pad = Math.max(60000, (tMax - tMin) * 0.04);
  const t0 = tMin - pad, t1 = tMax + pad;
  const W = 900, H = 350, L = 64, R = 24, T = 64, B = 44;
  const X = (t) => L + (W - L - R) * (t - t0) / (t1 - t0), Y = (y) => H - B - (H - T - B) * y / total;
  const svg = svgEl("svg", { id: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "rows loaded over time, with the projected finish and the deadline" });
  // Axes and ticks.
  const xAxis = svgEl("g", { class: "axis x-axis" }), yAxis = svgEl("g", { class: "axis y-axis" });
  const step = niceStep(t1 - t0, 8);
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    xAxis.append(svgEl("line", { class: "tick", x1: X(t), x2: X(t), y1: T, y2: H - B + 4, stroke: "#1d2731" }),
      svgEl("text", { class: "tick-label", x: X(t), y: H - B + 18, "text-anchor": "middle", fill: "#a3aeb9", "font-size": 11 }, clockText(t).replace(/ UTC.*$/, "")));
  }
  xAxis.append(svgEl("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", fill: "#a3aeb9", "font-size": 11 }, "time (" + partsOf(t0, zone()).off + ", " + zone() + ")"));
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    yAxis.append(svgEl("line", { class: "tick", x1: L - 4, x2: W - R, y1: Y(total * f), y2: Y(total * f), stroke: "#1d2731" }),
      svgEl("text", { class: "tick-label", x: L - 8, y: Y(total * f) + 4, "text-anchor": "end", fill: "#a3aeb9", "font-size": 11 }, rowsText(total * f)));
  }
  yAxis.append(svgEl("text", { x: 14, y: (T + H - B) / 2, transform: `rotate(-90 14 ${(T + H - B) / 2})`, "text-anchor": "middle", fill: "#a3aeb9", "font-size": 11 }, "rows"));
  svg.append(xAxis, yAxis, svgEl("line", { x1: L, x2: L, y1: T, y2: H - B, stroke: "#3a4752" }), svgEl("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#3a4752" }));
  // Stage spans: a lane above the plot; a label only where it fits, in one
  // of two rows, so none prints over another; every span has its hover.
  const spans = [];
  for (const p of pts) {
    if (!spans.length || spans[spans.length - 1].stage !== p.stage) spans.push({ stage: p.stage || "", from: p.t, to: p.t });
    spans[spans.length - 1].to = p.t;
  }
  spans.forEach((s, i) => { if (spans[i + 1]) s.to = spans[i + 1].from; });
  const lane = svgEl("g", { class: "stages" });
  const colours = ["#2b4a63", "#3d3a63", "#2f5a45", "#5a4a2f", "#5a2f45", "#2f5257"];
  spans.forEach((s, i) => {
    const x = X(s.from), w = Math.max(2, X(s.to) - X(s.from));
    lane.append(svgEl("rect", { class: "stage", x, y: T - 30, width: w, height: 10, fill: colours[i % colours.length] },
      svgEl("title", {}, `${s.stage}: ${clockText(s.from)} – ${clockText(s.to)} (${human((s.to - s.from) / 1000)})`)),
      svgEl("text", { class: "stage-label", x: x + 2, y: T - 34, fill: "#c9d1d9", "font-size": 11 }, s.stage));
  });
  svg.append(lane);
  // The band: where the prediction says the finish likely falls.
  const last = pts[pts.length - 1];
  if (v.finish_lo && v.finish_hi && last) {
    const lo = X(new Date(v.finish_lo).getTime()), hi = X(new Date(v.finish_hi).getTime());
    svg.append(svgEl("polygon", { id: "band", points: `${X(last.t)},${Y(last.y)} ${lo},${Y(total)} ${hi},${Y(total)}`, fill: "#f08c3a", "fill-opacity": 0.18 },
      svgEl("title", {}, `likely finish between ${clockText(v.finish_lo)} and ${clockText(v.finish_hi)}`)),
      svgEl("rect", { class: "band-top", x: lo, y: Y(total) - 3, width: Math.max(2, hi - lo), height: 6, fill: "#f08c3a", "fill-opacity": 0.6 }));
  }
  svg.append(svgEl("polyline", { id: "progress", fill: "none", stroke: "#4aa3df", "stroke-width": 2, points: pts.map((p) => X(p.t) + "," + Y(p.y)).join(" ") }));
  if (v.predicted_finish && last) {
    const f = new Date(v.predicted_finish).getTime();
    svg.append(svgEl("line", { id: "projection", x1: X(last.t), y1: Y(last.y), x2: X(f), y2: Y(total), stroke: "#f08c3a", "stroke-width": 2, "stroke-dasharray": "5 4" }),
      svgEl("circle", { cx: X(f), cy: Y(total), r: 4, fill: "#f08c3a" }),
      svgEl("text", { x: X(f), y: Y(total) - 8, "text-anchor": X(f) > W - 120 ? "end" : "middle", fill: "#f08c3a", "font-size": 11 }, (run.state === "succeeded" ? "finished " : "projected ") + clockText(f).replace(/ UTC.*$/, "")));
  }
  // The moment progress stopped: the last change of rows before a flat tail.
  if (pts.length > 1) {
    let k = pts.length - 1;
    while (k > 0 && pts[k - 1].y === pts[k].y) k--;
    const lastAt = Math.max(...obs.map((o) => new Date(o.at).getTime()));
    if (run.state === "running" && lastAt - pts[k].t > 10 * 60000) {
      svg.append(svgEl("line", { id: "stall", x1: X(pts[k].t), x2: X(pts[k].t), y1: T, y2: H - B, stroke: "#e2b53e", "stroke-dasharray": "3 3" }),
        svgEl("text", { x: X(pts[k].t) + 4, y: Y(pts[k].y) - 8, fill: "#e2b53e", "font-size": 11 }, "no progress since " + clockText(pts[k].t).replace(/ UTC.*$/, "")));
    }
  }
  // The moment the load slowed: the point of the loading stage after which
  // it went on at under 60% of its pace before (each side at least ten
  // minutes), the one where it fell most. A stall is marked above instead.
  const slow = slowdownOnset(pts);
  if (slow && !svg.querySelector("#stall")) {
    const x = X(slow.t);
    svg.append(svgEl("line", { id: "slowdown", x1: x, x2: x, y1: T, y2: H - B, stroke: "#e2b53e", "stroke-dasharray": "6 3" },
      svgEl("title", {}, `slowed at ${clockText(slow.t)}: ${rowsText(slow.before)} rows/min before, ${rowsText(slow.after)} after`)),
      svgEl("text", { id: "slowdown-label", x: x + 4, y: Y(slow.y) - 10, fill: "#e2b53e", "font-size": 11, "text-anchor": x > W - 260 ? "end" : "start" },
        `slowed at ${clockText(slow.t).replace(/ UTC.*$/, "")} to ${Math.round(100 * slow.after / slow.before)}% of its pace`));
  }
  if (v.deadline) {
    const d = X(new Date(v.deadline).getTime());
    svg.append(svgEl("line", { id: "deadline", x1: d, y1: T - 4, x2: d, y2: H - B, stroke: "#e5484d", "stroke-width": 2 }),
      svgEl("text", { x: d + (d > W - 140 ? -4 : 4), y: T + 10, "text-anchor": d > W - 140 ? "end" : "start", fill: "#e5484d", "font-size": 12 }, "deadline " + clockText(v.deadline).replace(/ UTC.*$/, "")));
  }
  // Hover: the nearest observation's values.
  const cross = svgEl("line", { id: "cross", x1: 0, x2: 0, y1: T, y2: H - B, stroke: "#8a96a3", visibility: "hidden" });
  const readout = el("p", { id: "readout", class: "muted", "aria-live": "polite" }, "Hover over the chart to read its values.");
  svg.append(cross);
  svg.addEventListener("mousemove", (e) => {
    if (!pts.length) return;
    const box = svg.getBoundingClientRect(), x = (e.clientX - box.left) * W / box.width;
    const t = t0 + (x - L) / (W - L - R) * (t1 - t0);
    const p = pts.reduce((a, b) => Math.abs(b.t - t) < Math.abs(a.t - t) ? b : a);
    cross.setAttribute("x1", X(p.t)); cross.setAttribute("x2", X(p.t)); cross.setAttribute("visibility", "visible");
    readout.textContent = `${clockText(p.t)}: ${Number(p.y).toLocaleString("en-US")} of ${Number(p.total || total).toLocaleString("en-US")} rows (${Math.round(100 * p.y / (p.total || total))} %), ${p.stage || "no stage"}`;
  });
  const kv = (k, ...vals) => [el("span", { class: "muted" }, k), el("span", {}, ...vals)];
  show(el("h2", {}, run.tenant + "/" + run.job + " ", el("span", { class: "muted" }, run.run_id), " ",
    el("a", { href: nightsHash(run.tenant, run.job), class: "nightslink" }, "30 nights")),
    el("div", { class: "kv" },
      kv("Risk", badge("risk-" + (v.risk || ""), v.risk || "–"), " ", el("span", { id: "why" }, reason(v.why, v.why_parts, tz))),
      kv("Tonight", outcomeBadge(v.outcome), " ", v.outcome && judgedKind(v.outcome.kind) ? el("span", { class: "muted" }, v.outcome.summary) : null),
      kv("State", `${run.state || ""} ${run.stage || ""} — ${Number(run.rows_done || 0).toLocaleString("en-US")} of ${Number(run.rows_total || 0).toLocaleString("en-US")} rows`),
      kv("Started", when(run.started_at, tz)),
      el("span", { class: "muted" }, run.state === "succeeded" ? "Finished" : "Predicted finish"),
      run.state === "succeeded" ? el("span", { id: "predicted" }, when(run.finished_at || v.predicted_finish, tz)) :
      el("span", { id: "predicted" }, when(v.predicted_finish, tz),
        v.finish_lo && v.finish_hi ? [" (likely ", clock(v.finish_lo, tz), " – ", clock(v.finish_hi, tz), ")"] : "",
        `; learned from ${Number(v.learned_from) || 0} nights, ${v.prediction_basis || ""}`),
      kv("Deadline", when(v.deadline, tz)),
      kv("Files arrived", clock(run.files_arrived_at, tz)),
      kv("Data quality", `${Number(run.quality_errors) || 0} errors, ${Number(run.quality_warnings) || 0} warnings`),
      v.logs ? kv("Logs", v.logs) : null),
    svg, readout);
  layoutLabels(svg, T);
}

// slowdownOnset finds where a load slowed for good: among the loading
// points with at least ten minutes of loading before and after, the one
// whose pace after (to the last point) over the pace before is lowest, if
// under 0.6. Rates are rows a minute.
function slowdownOnset(pts) {
  const load = pts.filter((p) => p.stage === "loading");
  if (load.length < 3) return null;
  const first = load[0], last = load[load.length - 1];
  let best = null;
  for (const p of load) {
    if (p.t - first.t < 10 * 60000 || last.t - p.t < 10 * 60000) continue;
    const before = (p.y - first.y) / ((p.t - first.t) / 60000), after = (last.y - p.y) / ((last.t - p.t) / 60000);
    if (before <= 0) continue;
    const r = after / before;
    if (r < 0.6 && (!best || r < best.r)) best = { t: p.t, y: p.y, before, after, r };
  }
  return best;
}

// layoutLabels puts each stage label in the first of two rows where it
// overlaps no other (measured once drawn), and hides it where none is
// free: its span keeps its hover.
function layoutLabels(svg, T) {
  const rows = [[], []];
  for (const t of svg.querySelectorAll(".stage-label")) {
    const x = Number(t.getAttribute("x")), w = t.getComputedTextLength() + 6;
    const r = rows.findIndex((row) => row.every(([a, b]) => x >= b || x + w <= a));
    if (r < 0) { t.setAttribute("display", "none"); continue; }
    t.setAttribute("y", T - 36 - r * 15);
    rows[r].push([x, x + w]);
  }
}

// ---- The district's own view ------------------------------------------------
// What a district asked for: when its files were in, each step of
// tonight's import with its time, what was wrong in the data and how to fix
// it, and its recent nights.
async function district(tenant) {
  const d = await api("/api/v1/district/" + enc(tenant));
  noteClock(d.generated_at);
  const sections = d.jobs.map((j) => {
    const tz = j.timezone;
    const steps = el("ol", { class: "steps" }, j.steps.map((s) => el("li", { class: s.at ? "done" : "todo" },
      el("span", { class: "step-mark", "aria-hidden": "true" }, s.at ? "✓" : "○"), " ", el("b", {}, s.name), " ",
      s.at ? [s.by ? el("span", { class: "muted" }, "by ") : null, when(s.at, tz), s.by ? el("span", { class: "muted" }, " (not seen itself; a later step was)") : null] : el("span", { class: "muted" }, "not yet"), el("br"), el("span", { class: "muted" }, s.meaning))));
    const quality = qualityReport(j);
    return el("section", { class: "district-job", "data-job": j.job },
      el("h3", {}, j.job, " ", outcomeBadge(j.outcome), " ", el("span", { class: "muted" }, j.outcome ? j.outcome.summary : "")),
      el("p", {}, "Deadline ", when(j.deadline, tz), tz ? el("span", { class: "muted" }, " · times in " + zone() + "; hover for " + tz) : ""),
      el("h4", {}, "Tonight's upload"), steps, quality,
      el("h4", {}, "Recent nights"), el("p", { class: "rate" }, rateText(j)),
      el("table", { class: "recent" }, nightHead(), el("tbody", {}, nightRows(j.nights, tz))));
  });
  show(el("h2", {}, tenant), ...sections);
}

// qualityReport is tonight's data-quality report as the district reads it:
// one row per finding (a code in a file) with its severity in words, the
// file, how many rows, where (line, field, value) with the message, what it
// means and how to fix it. Every string in it comes from the uploaded files
// or the importer: text only. Without the detailed report, the counts and
// why there is no more.
function qualityReport(j) {
  const r = j.report;
  const cell = (label, ...kids) => el("td", { "data-label": label }, ...kids);
  if (!r) {
    return el("div", { class: "quality-block" },
      el("table", { class: "quality" }, el("caption", {}, "Data quality of tonight's files"),
        el("thead", {}, el("tr", {}, ["Finding", "Rows", "What it means", "How to fix it"].map((n) => el("th", { scope: "col" }, n)))),
        el("tbody", {}, j.quality.map((q) => el("tr", { class: "finding sev-" + q.kind },
          cell("finding", q.kind === "error" ? "Errors" : "Warnings"), cell("rows", Number(q.count) || 0),
          el("td", { "data-label": "meaning", class: "wrap" }, q.meaning), el("td", { "data-label": "fix", class: "wrap" }, q.fix))))),
      j.report_note ? el("p", { class: "muted report-note" }, j.report_note) : null);
  }
  const groups = (r.findings || []).slice().sort((a, b) => ((a.severity === "error" ? 0 : 1) - (b.severity === "error" ? 0 : 1)) || (b.count - a.count));
  const caption = el("caption", {}, "Data quality of tonight's files: ", el("b", {}, Number(r.errors) || 0, " errors"), ", ", Number(r.warnings) || 0, " warnings",
    r.oneroster_version ? " (OneRoster " + r.oneroster_version + ")" : "", r.truncated ? "; the first " + groups.length + " findings shown" : "");
  if (!groups.length) return el("table", { class: "quality report" }, caption, el("tbody", {}, el("tr", {}, el("td", {}, "No findings: every file and row passed the checks."))));
  const where = (e) => [e.line ? "line " + Number(e.line) : null, e.column ? e.column : null, e.value ? "“" + e.value + "”" : null].filter((x) => x != null).join(", ");
  const rows = groups.map((g) => {
    const ex = g.examples || [];
    const more = Number(g.count) - ex.length;
    return el("tr", { class: "finding sev-" + g.severity, "data-code": g.code },
      cell("severity", badge(g.severity === "error" ? "risk-breached" : "risk-at-risk", g.severity === "error" ? "error: not loaded" : "warning")),
      el("td", { "data-label": "file", class: "wrap" }, g.file, el("br"), el("code", { class: "muted" }, g.code)),
      cell("rows", Number(g.count) || 0),
      el("td", { "data-label": "where", class: "wrap" }, el("ul", { class: "examples" },
        ex.map((e) => el("li", {}, el("span", { class: "where" }, where(e)), where(e) ? ": " : "", e.message)),
        more > 0 ? el("li", { class: "muted" }, "and " + more + " more in this file") : null)),
      el("td", { "data-label": "meaning", class: "wrap" }, g.meaning),
      el("td", { "data-label": "fix", class: "wrap" }, g.fix));
  });
  return el("table", { class: "quality report" }, caption,
    el("thead", {}, el("tr", {}, ["Severity", "File and finding", "Rows", "Where (line, field, value) and what", "What it means", "How to fix it"].map((n) => el("th", { scope: "col" }, n)))),
    el("tbody", {}, rows));
}

// ---- Live ---------------------------------------------------------------------
// The event stream says which tenants changed; the page then reads them
// again. A page that has heard nothing from the hub for 25 s says its data
// is stale. The id of the last event heard goes with the next stream
// (Last-Event-ID), so what changed between two streams is heard too.
const liveState = { heard: 0, stream: null, pending: null, lastDraw: 0, staleWhy: "", tenants: new Set(), all: false, lastId: "", since: 0 };
function stale(why) {
  liveState.staleWhy = why;
  document.body.classList.add("stale");
  $("#stale").hidden = false;
  $("#stale").textContent = "Stale: " + why + "; what you see may be out of date.";
}
function fresh() {
  liveState.heard = Date.now();
  if (!liveState.staleWhy) return;
  liveState.staleWhy = "";
  document.body.classList.remove("stale");
  $("#stale").hidden = true;
}
setInterval(() => { if (token() && Date.now() - liveState.heard > 25000) stale("no word from the hub for " + human((Date.now() - liveState.heard) / 1000)); }, 5000);

// changed takes the tenants of a change event (none: anything may have
// changed). Changes are gathered and applied at most once a second, the
// first at once; on the board the tenants gathered are read in one request
// and their rows patched where they stand, so the page stays responsive
// while changes stream in. How long each took from the first change heard
// to the frame painted is kept in window.__changes.
function changed(tenants) {
  if (!tenants) liveState.all = true;
  for (const t of tenants || []) liveState.tenants.add(t);
  if (!liveState.since) liveState.since = performance.now();
  if (liveState.pending) return;
  const wait = Math.max(0, 1000 - (Date.now() - liveState.lastDraw));
  liveState.pending = setTimeout(async () => {
    const ts = [...liveState.tenants], all = liveState.all, since = liveState.since;
    liveState.tenants.clear();
    liveState.all = false;
    liveState.since = 0;
    liveState.lastDraw = Date.now();
    // Changes heard while this one was read wait for the next turn: without
    // it, the last push of a burst stayed unshown until some other change.
    try {
      const how = await applyChange(ts, all);
      const c = window.__changes || (window.__changes = []);
      requestAnimationFrame(() => setTimeout(() => { c.push({ how, tenants: ts, ms: performance.now() - since }); if (c.length > 200) c.shift(); }, 0));
    } catch (e) {
      // The page says why (stale, or the error) where the read failed.
    } finally { liveState.pending = null; if (liveState.tenants.size || liveState.all) changed([]); }
  }, wait);
}

// applyChange shows a change: on the board by patching it, tenants read
// in one request (everything read when a change says all or names the
// shared alerts' ""); elsewhere by showing the page again.
async function applyChange(tenants, all) {
  const h = location.hash || "#/";
  const onBoard = h === "#/" || h === "#";
  if (!onBoard || !$("#board tbody")) { await render(); return "render"; }
  if (!tenants.length && !all) return "none";
  let how = "tenants";
  if (all || tenants.includes("") || tenants.length > MAX_TENANTS) {
    how = "all";
    takeStatus(await api("/api/v1/status"));
  } else {
    const a = await api("/api/v1/status?" + tenants.map((t) => "tenant=" + enc(t)).join("&"));
    noteClock(a.generated_at);
    for (const j of a.jobs) {
      const i = view.at.get(jobKey(j));
      if (i === undefined) { view.at.set(jobKey(j), view.jobs.length); view.jobs.push(j); } else view.jobs[i] = j;
    }
  }
  patchBoard();
  fresh();
  $("#updated").replaceChildren("updated ", clock(now()));
  return how;
}
// MAX_TENANTS is how many tenants one status request may name (the API's
// limit).
const MAX_TENANTS = 100;

async function listen() {
  if (liveState.stream || !token()) return;
  const ctl = new AbortController();
  liveState.stream = ctl;
  try {
    const headers = { "Authorization": "Bearer " + token() };
    if (liveState.lastId) headers["Last-Event-ID"] = liveState.lastId;
    const res = await fetch("/api/v1/events", { headers, signal: ctl.signal });
    if (res.status === 401) return;
    if (!res.ok || !res.body) throw new Error(res.statusText);
    fresh();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      fresh();
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, i); buf = buf.slice(i + 2);
        const lines = ev.split("\n");
        const id = lines.find((l) => l.startsWith("id: "));
        if (id) liveState.lastId = id.slice(4);
        if (!lines.includes("event: change")) continue;
        const data = lines.find((l) => l.startsWith("data: "));
        let tenants = null;
        try { const d = JSON.parse(data.slice(6)); tenants = d.all ? null : d.tenants; } catch (e) { tenants = null; }
        changed(tenants);
      }
    }
  } catch (e) {
    if (ctl.signal.aborted) return;
    stale("the hub does not answer");
  } finally {
    if (liveState.stream === ctl) liveState.stream = null;
  }
  if (!ctl.signal.aborted) setTimeout(listen, 1000);
}

// ---- Zone select and routing ----------------------------------------------------
function zoneOptions() {
  const sel = $("#zone");
  const want = [browserZone, "UTC", ...view.zones, "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"];
  const zones = [...new Set(want)];
  if (sel.options.length === zones.length) return;
  sel.replaceChildren(...zones.map((z) => el("option", { value: z, selected: z === zone() }, z + (z === browserZone ? " (this computer)" : ""))));
}

async function render() {
  if (!token()) return showLogin();
  $("#login").hidden = true; $("#logout").hidden = false;
  // Listening starts before the first read: a change made while it is
  // read is heard, not lost.
  listen();
  const h = location.hash || "#/";
  try {
    const arg = (n) => h.slice(n).split("/").map(decodeURIComponent);
    if (h.startsWith("#/run/")) { const [id, tenant, job] = arg(6); await run(id, tenant, job); }
    else if (h.startsWith("#/nights/")) { const [tenant, job] = arg(9); await nights(tenant, job); }
    else if (h.startsWith("#/district/")) { const [tenant] = arg(11); await district(tenant); }
    else if (h === "#/alerts") await alerts();
    else if (h === "#/sources") await sources();
    else await board();
    fresh();
    $("#updated").replaceChildren("updated ", clock(now()));
  } catch (e) {
    if (e.message !== "unauthorized") { $("#updated").textContent = "error: " + e.message; if (!$("#view").firstChild) show(el("p", { class: "error", role: "alert" }, e.message)); }
  }
}

$("#zone").addEventListener("change", (e) => { localStorage.setItem("etlhub-zone", e.target.value); render(); });
zoneOptions();
$("#login").addEventListener("submit", (e) => { e.preventDefault(); localStorage.setItem("etlhub-token", $("#token").value); render(); });
$("#logout").addEventListener("click", () => { localStorage.removeItem("etlhub-token"); if (liveState.stream) liveState.stream.abort(); showLogin(); });
window.addEventListener("hashchange", () => { show(); render(); });
render();
setInterval(render, 30000);
