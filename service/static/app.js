// ChainMatch staff page: region → gap map → gap → candidates → filters → shortlist (leads) → export.
// Plain JS, no external assets. The API key lives in localStorage ("chainmatch.apiKey"); a key passed as
// "#key=…" in the address (as printed by `chainmatch serve`) is stored and removed from the address bar.
"use strict";

const KEY_STORE = "chainmatch.apiKey";
const state = { regions: [], region: null, chain: null, gap: null, leads: [], recommendation: null };
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
function takeKeyFromFragment() {
  const m = location.hash.match(/[#&]key=([^&]+)/);
  if (m) {
    localStorage.setItem(KEY_STORE, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
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
  if (state.regions.length) await selectRegion(state.regions[0].id);
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

async function selectRegion(regionId) {
  $("#region-select").value = regionId;
  const region = await api(`/v1/regions/${encodeURIComponent(regionId)}`);
  state.region = region;
  state.gap = null;
  state.recommendation = null;
  $("#region-meta").textContent =
    `${region.province} · ${region.level} · 驻地企业 ${region.residents.length} 家 · 招商需求 ${region.needs.length} 条` +
    (region.aiding.length ? ` · 援疆结对：${region.aiding.join("、")}` : "");
  const chains = region.target_chains.length ? region.target_chains : [];
  const gm = await api(`/v1/regions/${encodeURIComponent(regionId)}/gaps`);
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
  if (chainIds.length) await selectChain(chainIds[0], gm);
  else { $("#gapmap").replaceChildren(el("p", { class: "muted" }, "该地区尚未设定目标产业链。")); }
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
      el("td", {}, g.link_name),
      el("td", {}, g.priority.toFixed(2)),
      el("td", { class: "muted" }, (g.evidence || []).slice(0, 2).join("；"))));
  }
}

// --- candidates ----------------------------------------------------------------------------------------------------
function currentFilters() {
  const provinces = $("#f-provinces").value.split(/[,，、\s]+/).map((s) => s.trim()).filter(Boolean);
  const size = [...document.querySelectorAll("#filters input[name=size]:checked")].map((x) => x.value);
  return { provinces, size, aiding_only: $("#f-aiding").checked, listed_only: $("#f-listed").checked };
}

async function selectGap(chainId, linkId, gapType) {
  state.gap = { chain: chainId, link: linkId, type: gapType };
  for (const n of document.querySelectorAll("#gapmap g.node")) n.classList.toggle("selected", n.dataset.link === linkId);
  for (const r of document.querySelectorAll("#gap-table tr.gap-row")) r.classList.toggle("selected", r.dataset.link === linkId);
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
  $("#candidates-empty").hidden = rec.candidates.length > 0;
  $("#candidates-empty").textContent = "没有符合筛选条件的企业。";
  table.hidden = rec.candidates.length === 0;
  const strengthZh = { strong: "强", medium: "中", weak: "弱" };
  for (const c of rec.candidates) {
    const action = c.lead_status
      ? el("span", { class: `status ${c.lead_status}` }, c.lead_status)
      : el("button", { type: "button", class: "add-lead", onclick: (ev) => addLead(c, ev.target) }, "加入清单");
    tbody.append(el("tr", { class: "candidate", dataset: { enterpriseId: c.enterprise_id } },
      el("td", {}, c.rank),
      el("td", { class: "name" }, c.name),
      el("td", { class: "place" }, [c.province, c.city].filter(Boolean).join(" ")),
      el("td", {}, c.score.toFixed(3)),
      el("td", {}, el("span", { class: `strength ${c.evidence_strength}`, title: c.strength_rule },
        strengthZh[c.evidence_strength] || c.evidence_strength)),
      el("td", {}, c.matched_products.slice(0, 3).map((p) => p[0]).join("、")),
      el("td", {}, el("ul", { class: "reasons" }, c.reasons.slice(0, 4).map((r) => el("li", {}, r)))),
      el("td", { class: "action" }, action)));
  }
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
