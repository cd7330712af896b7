// ChainMatch staff page: region → gap map → gap → candidates → filters → shortlist (leads) → export.
// Plain JS, no external assets. The API key lives in localStorage ("chainmatch.apiKey"); a key passed as
// "#key=…" in the address (as printed by `chainmatch serve`, also into an already open tab) is stored and removed
// from the address bar. The address keeps the view: "#region=<id>&gap=<chain id>/<link id>" (or "&chain=<id>"
// before a gap is picked) opens that region and gap, and picking a region, chain or gap updates it.
"use strict";

const KEY_STORE = "chainmatch.apiKey";
const state = { regions: [], region: null, chain: null, gap: null, leads: [], recommendation: null, routing: false };
let navSeq = 0;  // the latest region navigation; an older one still loading stops
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function toast(message, isError = false) {
  const t = $("#toast");
  t.textContent = message;
  t.className = "toast" + (isError ? " error" : "");
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, isError ? 8000 : 3500);
}

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.body = err;
  }
}

async function api(path, { method = "GET", json, raw = false } = {}) {
  const headers = { "X-API-Key": localStorage.getItem(KEY_STORE) || "" };
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  const res = await fetch(path, { method, headers, body });
  if (!res.ok) {
    let payload = null;
    try { payload = await res.json(); } catch (_) { /* not JSON */ }
    if (res.status === 401) showKeyPanel((payload && payload.error && payload.error.message) || "API 密钥无效");
    throw new ApiError(res.status, payload);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

// --- API key ----------------------------------------------------------------------------------------------------
function hashParts() {
  return location.hash.replace(/^#/, "").split("&").filter(Boolean);
}

function decode(text) {
  try { return decodeURIComponent(text); } catch (_) { return text; }
}

/** Store a "key=…" from the address and drop it from there (other parts stay); true if there was one. */
function takeKeyFromFragment() {
  const parts = hashParts();
  const keyPart = parts.find((p) => p.startsWith("key="));
  if (!keyPart) return false;
  localStorage.setItem(KEY_STORE, decode(keyPart.slice(4)));
  const rest = parts.filter((p) => !p.startsWith("key="));
  history.replaceState(null, "", location.pathname + location.search + (rest.length ? `#${rest.join("&")}` : ""));
  return true;
}

// --- the view in the address -------------------------------------------------------------------------------------
function routeFromHash() {
  const params = {};
  for (const part of hashParts()) {
    const i = part.indexOf("=");
    if (i > 0) params[part.slice(0, i)] = decode(part.slice(i + 1));
  }
  const route = { region: params.region || null, chain: params.chain || null, link: null };
  const slash = (params.gap || "").indexOf("/");
  if (slash > 0) {
    route.chain = params.gap.slice(0, slash);
    route.link = params.gap.slice(slash + 1) || null;
  }
  return route;
}

function hashForState() {
  if (!state.region) return "";
  let h = `#region=${encodeURIComponent(state.region.id)}`;
  if (state.gap) h += `&gap=${encodeURIComponent(state.gap.chain)}/${encodeURIComponent(state.gap.link)}`;
  else if (state.chain) h += `&chain=${encodeURIComponent(state.chain)}`;
  return h;
}

/** Show the current view in the address: a new history entry for a pick, a replacement while following a link. */
function writeHash() {
  const h = hashForState();
  if (!h || h === location.hash) return;
  history[state.routing ? "replaceState" : "pushState"](null, "", location.pathname + location.search + h);
}

/** Open the region / chain / gap named in the address; an unknown region falls back to the first one. */
async function applyRoute(route) {
  const wanted = route.region && state.regions.find((r) => r.id === route.region || r.name === route.region);
  const regionId = wanted ? wanted.id : state.regions.length ? state.regions[0].id : null;
  if (!regionId) return;
  state.routing = true;
  try {
    await selectRegion(regionId, route);
  } finally {
    state.routing = false;
  }
}

function onHashChange() {
  if (takeKeyFromFragment()) { enter(); return; }  // the printed link opened in this tab: log in with its key
  if ($("#workspace").hidden || !state.regions.length) return;
  if (location.hash === hashForState()) return;  // our own update
  applyRoute(routeFromHash()).catch((e) => toast(e.message, true));
}

function showKeyPanel(message) {
  $("#workspace").hidden = true;
  $("#key-panel").hidden = false;
  const err = $("#key-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("#key-input").focus();
}

async function enter() {
  let me;
  try {
    me = await api("/v1/me");
    state.regions = await api("/v1/regions");
  } catch (e) {
    if (e.status !== 401) toast(e.message, true);
    return;
  }
  $("#tenant-label").textContent = `租户：${me.tenant}（密钥 ${me.key_id}）`;
  $("#key-panel").hidden = true;
  $("#workspace").hidden = false;
  renderRegionSelect();
  await applyRoute(routeFromHash());
}

// --- regions and gap map ------------------------------------------------------------------------------------------
function renderRegionSelect() {
  const select = $("#region-select");
  select.replaceChildren();
  const byProvince = new Map();
  for (const r of state.regions) {
    if (!byProvince.has(r.province)) byProvince.set(r.province, []);
    byProvince.get(r.province).push(r);
  }
  for (const [province, regions] of byProvince) {
    const group = el("optgroup", { label: province });
    for (const r of regions) {
      group.append(el("option", { value: r.id }, `${r.name}（${r.level}${r.shared ? "" : "·本租户"}）`));
    }
    select.append(group);
  }
}

/** Residents of the region's sub-regions (all levels below it), from the region list — as the gap diagnosis
 * counts them: a prefecture holds its counties' and parks' firms. */
function subRegionResidents(regionId) {
  const children = new Map();
  for (const r of state.regions) {
    if (!r.parent) continue;
    if (!children.has(r.parent)) children.set(r.parent, []);
    children.get(r.parent).push(r);
  }
  let total = 0;
  const seen = new Set([regionId]);
  const stack = [regionId];
  while (stack.length) {
    for (const child of children.get(stack.pop()) || []) {
      if (seen.has(child.id)) continue;
      seen.add(child.id);
      stack.push(child.id);
      total += child.residents;
    }
  }
  return total;
}

async function selectRegion(regionId, route = {}) {
  const seq = ++navSeq;
  $("#region-select").value = regionId;
  const region = await api(`/v1/regions/${encodeURIComponent(regionId)}`);
  if (seq !== navSeq) return;
  state.region = region;
  state.chain = null;
  state.gap = null;
  state.recommendation = null;
  const below = subRegionResidents(region.id);
  const residents = `驻地企业 ${region.residents.length + below} 家` + (below ? `（含下辖地区 ${below} 家）` : "");
  $("#region-meta").textContent =
    `${region.province} · ${region.level} · ${residents} · 招商需求 ${region.needs.length} 条` +
    (region.aiding.length ? ` · 援疆结对：${region.aiding.join("、")}` : "");
  const chains = region.target_chains.length ? region.target_chains : [];
  const gm = await api(`/v1/regions/${encodeURIComponent(regionId)}/gaps`);
  if (seq !== navSeq) return;
  const tabs = $("#chain-tabs");
  tabs.replaceChildren();
  const chainIds = chains.length ? chains : gm.chains;
  const names = new Map(gm.gaps.map((g) => [g.chain_id, g.chain_name]));
  for (const cid of chainIds) {
    tabs.append(el("button", { type: "button", role: "tab", dataset: { chain: cid }, onclick: () => selectChain(cid) },
      names.get(cid) || cid));
  }
  renderCandidates(null);
  await loadLeads();
  if (seq !== navSeq) return;
  if (!chainIds.length) {
    $("#gapmap").replaceChildren(el("p", { class: "muted" }, "该地区尚未设定目标产业链。"));
    $("#gap-table tbody").replaceChildren();
    writeHash();
    return;
  }
  const chainId = chainIds.includes(route.chain) ? route.chain : chainIds[0];
  await selectChain(chainId, gm);
  if (seq !== navSeq || state.chain !== chainId) return;
  const gap = route.link && gm.gaps.find((g) => g.chain_id === chainId && g.link_id === route.link);
  if (gap) await selectGap(chainId, gap.link_id, gap.type);
  writeHash();
}

async function selectChain(chainId, gmAll) {
  state.chain = chainId;
  for (const b of document.querySelectorAll("#chain-tabs button")) {
    b.setAttribute("aria-selected", String(b.dataset.chain === chainId));
  }
  const rid = encodeURIComponent(state.region.id);
  const [svg, gm] = await Promise.all([
    api(`/v1/regions/${rid}/gapmap.svg?chain=${encodeURIComponent(chainId)}`),
    gmAll ? Promise.resolve(gmAll) : api(`/v1/regions/${rid}/gaps?chain=${encodeURIComponent(chainId)}`),
  ]);
  if (state.chain !== chainId) return;  // another chain was picked while this one loaded: keep the newer
  // the SVG is rendered by our server with every text escaped and no script
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  const box = $("#gapmap");
  box.replaceChildren(document.importNode(doc.documentElement, true));
  box.dataset.renders = String(Number(box.dataset.renders || 0) + 1);
  for (const node of box.querySelectorAll("g.node.gap")) {
    const open = () => selectGap(chainId, node.dataset.link, node.dataset.gapType);
    node.addEventListener("click", open);
    node.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(); } });
  }
  const tbody = $("#gap-table tbody");
  tbody.replaceChildren();
  for (const g of gm.gaps.filter((x) => x.chain_id === chainId)) {
    tbody.append(el("tr", { class: "gap-row", dataset: { link: g.link_id, gapType: g.type },
                             onclick: () => selectGap(chainId, g.link_id, g.type) },
      el("td", {}, el("span", { class: `tag ${g.type}` }, g.type)),
      el("td", {}, g.variant_of ? `${g.link_name}（同类品种）` : g.link_name),  // one line of business: see its first row
      el("td", {}, g.priority.toFixed(2)),
      el("td", { class: "muted" }, (g.evidence || []).slice(0, 2).join("；"))));
  }
  // a sub-region's own gaps are not repeated here: name where they went (issue #16)
  const away = (gm.delegated || []).filter((d) => d.chain_id === chainId);
  const note = $("#gap-delegated");
  note.hidden = away.length === 0;
  note.textContent = away.length
    ? `另有 ${away.length} 个缺口属下辖地区自身，本级不重复列出：` +
      away.map((d) => `${d.link_name}（见 ${d.region_name}）`).join("、")
    : "";
  if (state.gap && state.gap.chain === chainId) {  // the picked gap stays marked when its map is drawn again
    for (const n of box.querySelectorAll("g.node")) n.classList.toggle("selected", n.dataset.link === state.gap.link);
    for (const r of tbody.querySelectorAll("tr.gap-row")) r.classList.toggle("selected", r.dataset.link === state.gap.link);
  }
  writeHash();
}

// --- candidates ----------------------------------------------------------------------------------------------------
function currentFilters() {
  const provinces = $("#f-provinces").value.split(/[,，、\s]+/).map((s) => s.trim()).filter(Boolean);
  const size = [...document.querySelectorAll("#filters input[name=size]:checked")].map((x) => x.value);
  return { provinces, size, aiding_only: $("#f-aiding").checked, listed_only: $("#f-listed").checked,
    recent_expansion: $("#f-expansion").checked };
}

async function selectGap(chainId, linkId, gapType) {
  state.gap = { chain: chainId, link: linkId, type: gapType };
  for (const n of document.querySelectorAll("#gapmap g.node")) n.classList.toggle("selected", n.dataset.link === linkId);
  for (const r of document.querySelectorAll("#gap-table tr.gap-row")) r.classList.toggle("selected", r.dataset.link === linkId);
  writeHash();
  await loadCandidates();
}

async function loadCandidates() {
  if (!state.gap) { toast("请先在缺口图中选择一个缺口", true); return; }
  const k = Math.max(1, Math.min(100, parseInt($("#f-k").value, 10) || 20));
  try {
    const rec = await api("/v1/recommendations", { method: "POST", json: {
      region: state.region.id, chain: state.gap.chain, link: state.gap.link, gap_type: state.gap.type || null,
      filters: currentFilters(), k } });
    state.recommendation = rec;
    renderCandidates(rec);
  } catch (e) { toast(e.message, true); }
}

function renderCandidates(rec) {
  const table = $("#candidate-table");
  const tbody = table.querySelector("tbody");
  tbody.replaceChildren();
  if (!rec) {
    $("#candidates-title").textContent = "候选企业";
    $("#candidates-empty").hidden = false;
    $("#candidates-empty").textContent = "先在缺口图中选择一个缺口。";
    table.hidden = true;
    return;
  }
  const gap = rec.gap;
  $("#candidates-title").textContent = gap
    ? `候选企业 · ${gap.chain_name}「${gap.link_name}」${gap.type}（${{ 缺链: "补链", 短链: "延链", 弱链: "强链" }[gap.type]}）`
    : "候选企业";
  $("#candidates-empty").hidden = rec.candidates.length > 0 && !rec.note;
  $("#candidates-empty").textContent = rec.candidates.length ? rec.note : (rec.note || "没有符合筛选条件的企业。");
  table.hidden = rec.candidates.length === 0 && !(rec.leads || []).length && !(rec.expansions || []).length;
  const strengthZh = { strong: "强", medium: "中", weak: "弱" };
  for (const c of rec.candidates) {
    const action = c.lead_status
      ? el("span", { class: `status ${c.lead_status}` }, c.lead_status)
      : el("button", { type: "button", class: "add-lead", onclick: (ev) => addLead(c, ev.target) }, "加入清单");
    tbody.append(el("tr", { class: "candidate", dataset: { enterpriseId: c.enterprise_id } },
      el("td", {}, c.rank),
      el("td", { class: "name" }, c.name, c.fictional ? el("span", { class: "badge fictional", title: "演示用虚构企业，并非真实企业" }, "虚构示例") : null,
        c.listing_status === "delisted" ? el("span", { class: "badge delisted", title: "已退市企业" }, "已退市") : null,
        c.local_presence ? el("span", { class: "badge presence", title: c.local_presence }, "已在本地布局") : null,
        provenance(c)),
      el("td", { class: "place" }, [c.province, c.city].filter(Boolean).join(" ")),
      el("td", {}, c.score.toFixed(3)),
      el("td", {}, el("span", { class: `strength ${c.evidence_strength}`, title: c.strength_rule },
        strengthZh[c.evidence_strength] || c.evidence_strength)),
      el("td", {}, c.matched_products.slice(0, 3).map((p) => p[0]).join("、")),
      el("td", {}, el("ul", { class: "reasons" }, c.reasons.slice(0, 4).map((r) => el("li", {}, r)))),
      el("td", { class: "action" }, action,
        el("button", { type: "button", class: "timeline-toggle", title: "扩张动态（签约、开工、投产、募投…）",
          onclick: (ev) => toggleTimeline(c, ev.target.closest("tr")) }, c.signals && c.signals.length ? `动态 ${c.signals.length}` : "动态"))));
  }
  // listed apart and marked, never as candidates: expansion candidates (do not make the link yet, could enter it
  // from next to it), then leads (one strong text signal only)
  for (const c of rec.expansions || []) tbody.append(apartRow(c, "expansion", `延伸${c.rank}`, "expansion", "延伸候选"));
  for (const c of rec.leads || []) tbody.append(apartRow(c, "lead-unverified", `线索${c.rank}`, "unverified", "待核实"));
}

// one row of a section listed apart from the candidates, with its badge
function apartRow(c, rowClass, label, badgeClass, badgeText) {
  return el("tr", { class: `${rowClass} muted`, dataset: { enterpriseId: c.enterprise_id } },
    el("td", {}, label),
    el("td", { class: "name" }, c.name, el("span", { class: `badge ${badgeClass}`, title: c.strength_rule }, badgeText),
      c.fictional ? el("span", { class: "badge fictional", title: "演示用虚构企业，并非真实企业" }, "虚构示例") : null,
      provenance(c)),
    el("td", { class: "place" }, [c.province, c.city].filter(Boolean).join(" ")),
    el("td", {}, c.score.toFixed(3)),
    el("td", {}, el("span", { class: "strength weak", title: c.strength_rule }, "弱")),
    el("td", {}, c.matched_products.slice(0, 3).map((p) => p[0]).join("、")),
    el("td", {}, el("ul", { class: "reasons" }, c.reasons.slice(0, 4).map((r) => el("li", {}, r)))),
    el("td", {}));
}

// the firm's identity and where its facts come from: stock code, group, sources, as-of date
function provenance(c) {
  const sourceZh = (s) => s.startsWith("ashare:") ? "A股披露" : s === "authored:fictional" ? "虚构示例"
    : s.startsWith("authored:") ? "内置公开资料" : s === "api" ? "CRM" : s.startsWith("import:") ? `导入 ${s.slice(7)}` : s;
  const parts = [
    c.stock_code ? `${c.stock_code}${c.listing_status === "delisted" ? "（已退市）" : ""}` : null,
    c.group ? `集团：${c.group}` : null,
    c.former_names && c.former_names.length ? `曾用名：${c.former_names.join("、")}` : null,
    c.sources && c.sources.length ? `来源：${[...new Set(c.sources.map(sourceZh))].join("、")}` : null,
    c.as_of ? `截至 ${c.as_of}` : null,
  ].filter(Boolean);
  return parts.length ? el("div", { class: "muted provenance" }, parts.join(" · ")) : null;
}

// --- a firm's expansion signals (timeline under its row) ----------------------------------------------------------------
async function toggleTimeline(c, row) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("timeline")) { next.remove(); return; }
  try {
    const events = await api(`/v1/enterprises/${encodeURIComponent(c.enterprise_id)}/signals`);
    const items = events.slice().reverse().map((e) => el("li", {},
      `${e.day.slice(0, 7)} ${e.kind} ${[e.region || e.province, e.product].filter(Boolean).join(" ")}`,
      ...e.sources.filter((s) => s.url).slice(0, 2).map((s) =>
        el("a", { href: s.url, target: "_blank", rel: "noopener noreferrer", class: "source" }, s.title || "来源"))));
    row.after(el("tr", { class: "timeline", dataset: { enterpriseId: c.enterprise_id } },
      el("td", { colspan: 8 }, items.length ? el("ul", { class: "signals" }, items) : el("span", { class: "muted" }, "暂无扩张动态记录"))));
  } catch (e) { toast(e.message, true); }
}

// --- leads (shortlist) ---------------------------------------------------------------------------------------------
async function addLead(c, button) {
  button.disabled = true;
  try {
    const rec = state.recommendation;
    await api("/v1/leads", { method: "POST", json: {
      region: rec.region_id, chain: rec.chain_id, link: rec.link_id, enterprise_id: c.enterprise_id } });
    toast(`已加入清单：${c.name}`);
    await loadLeads();
    await loadCandidates();
  } catch (e) { button.disabled = false; toast(e.message, true); }
}

async function loadLeads() {
  state.leads = await api(`/v1/leads?region=${encodeURIComponent(state.region.id)}`);
  renderLeads();
}

function renderLeads() {
  const table = $("#lead-table");
  const tbody = table.querySelector("tbody");
  tbody.replaceChildren();
  $("#shortlist-empty").hidden = state.leads.length > 0;
  table.hidden = state.leads.length === 0;
  for (const lead of state.leads) {
    const select = el("select", { class: "next-status", "aria-label": "变更状态" },
      el("option", { value: "" }, "—"), lead.allowed_next.map((s) => el("option", { value: s }, s)));
    const reason = el("input", { type: "text", class: "reason", placeholder: "原因（放弃时必填）" });
    const note = el("input", { type: "text", class: "note", placeholder: "备注", value: lead.note || "" });
    const save = el("button", { type: "button", class: "save-lead",
                                onclick: () => updateLead(lead, select.value, reason.value, note.value) }, "更新");
    const ctx = lead.context || {};
    tbody.append(el("tr", { class: "lead", dataset: { leadId: lead.id, enterpriseId: lead.enterprise_id } },
      el("td", { class: "name" }, lead.enterprise_name),
      el("td", {}, `${ctx.chain_name || lead.chain_id} · ${ctx.link_name || lead.link_id}`),
      el("td", {}, el("span", { class: `status lead-status ${lead.status}` }, lead.status),
        lead.reason ? el("div", { class: "muted" }, `原因：${lead.reason}`) : null),
      el("td", {}, select),
      el("td", {}, el("div", { class: "lead-form" }, reason, note)),
      el("td", {}, save)));
  }
}

async function updateLead(lead, status, reason, note) {
  const body = {};
  if (status) body.status = status;
  if (reason) body.reason = reason;
  if (note !== (lead.note || "")) body.note = note;
  if (!Object.keys(body).length) { toast("没有需要保存的变更"); return; }
  if (status === "已放弃" && !reason) { toast("放弃线索须填写原因 (reason)", true); return; }
  try {
    const updated = await api(`/v1/leads/${encodeURIComponent(lead.id)}`, { method: "PATCH", json: body });
    toast(`${updated.enterprise_name}：${updated.status}`);
    await loadLeads();
    if (state.gap) await loadCandidates();
  } catch (e) {
    const allowed = e.body && e.body.allowed ? `（可选：${e.body.allowed.join("、")}）` : "";
    toast(e.message + allowed, true);
  }
}

// --- export ----------------------------------------------------------------------------------------------------------
async function exportShortlist(fmt) {
  try {
    const res = await api(`/v1/regions/${encodeURIComponent(state.region.id)}/shortlist.${fmt}`, { raw: true });
    const blob = await res.blob();
    const cd = res.headers.get("content-disposition") || "";
    const m = cd.match(/filename\*=UTF-8''([^;]+)/);
    const name = m ? decodeURIComponent(m[1]) : `shortlist.${fmt}`;
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    toast(`已导出：${name}`);
  } catch (e) { toast(e.message, true); }
}

// --- wiring ----------------------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  takeKeyFromFragment();
  window.addEventListener("hashchange", onHashChange);
  $("#key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    localStorage.setItem(KEY_STORE, $("#key-input").value.trim());
    $("#key-input").value = "";
    enter();
  });
  $("#change-key").addEventListener("click", () => { localStorage.removeItem(KEY_STORE); showKeyPanel(""); });
  $("#region-select").addEventListener("change", (ev) => selectRegion(ev.target.value).catch((e) => toast(e.message, true)));
  $("#filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadCandidates(); });
  $("#export-xlsx").addEventListener("click", () => exportShortlist("xlsx"));
  $("#export-csv").addEventListener("click", () => exportShortlist("csv"));
  if (localStorage.getItem(KEY_STORE)) enter();
  else showKeyPanel("");
});
