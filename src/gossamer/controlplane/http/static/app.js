// The dashboard: hash routes, one shared live state (inventory polled and refreshed on
// store watch events; golden metrics from the stats stream), one render function per page.
import {
  h, link, badge, notice, table, api, optional, ApiError, eventStream, ndjsonStream,
  pct, num, ms, ago, days, time, health, toYaml, libs, chart, COLORS, TOKEN_KEY,
} from "./lib.js";

// --- live state ------------------------------------------------------------------------------
const state = {
  proxies: [], endpoints: [], workloads: [], serviceResources: [], meshes: [], ca: null, mtls: [],
  kinds: [],
  revision: 0, // counts resource changes seen on the watch stream: pages reload what they listed
  stats: null, // the latest {time, services, workloads, edges}
  statsAvailable: undefined, // undefined: not known yet; false: no metrics API on this control plane
  error: null,
  loadedAt: 0,
};
const listeners = new Set();
function changed() { for (const f of listeners) f(); }

async function loadInventory() {
  try {
    const [proxies, endpoints, workloads, services, meshes, ca, mtls] = await Promise.all([
      api("/api/v1/proxies"),
      optional("/api/v1/endpoints"),
      api("/api/v1/workloads"),
      api("/api/v1/services"),
      api("/api/v1/meshes"),
      optional("/api/v1/ca"),
      optional("/api/v1/mtls-report"),
    ]);
    // Nothing new since the last poll (the common case): leave the page alone, so a big
    // table is not rebuilt every 3 s under the reader's cursor.
    // (Certificate ages and report times move on every poll: compared by what they name.)
    const signature = JSON.stringify([state.revision, proxies.items, endpoints && endpoints.items, workloads.items, services.items, meshes.items,
      ca && [ca.issuer?.notAfter, (ca.leaves || []).map((l) => [l.node, l.notAfter])],
      mtls && mtls.items.map((m) => [m.proxy, m.mode, m.identity, m.certificate])]);
    const same = signature === lastSignature && state.error === null;
    lastSignature = signature;
    state.proxies = proxies.items;
    state.endpoints = endpoints ? endpoints.items : [];
    state.workloads = workloads.items;
    state.serviceResources = services.items;
    state.meshes = meshes.items;
    state.ca = ca;
    state.mtls = mtls ? mtls.items : [];
    state.error = null;
    state.loadedAt = Date.now() / 1000;
    if (same) return;
  } catch (e) {
    state.error = e;
  }
  changed();
}
let lastSignature = "";

async function loadStats() {
  try {
    const [svc, wl, edge] = await Promise.all(["service", "workload", "edge"].map(
      (k) => optional(`/api/v1/stats?kind=${k}&window=1m`)));
    if (!svc) { state.statsAvailable = false; changed(); return; }
    state.statsAvailable = true;
    if (!state.stats) {
      state.stats = { time: svc.time, services: svc.items, workloads: wl ? wl.items : [], edges: edge ? edge.items : [] };
      changed();
    }
  } catch (e) { /* the stream below retries */ }
}

let stopStats = null;
function startStats() {
  stopStats = eventStream("/api/v1/stats/stream?window=1m", (name, data) => {
    if (name !== "stats" || typeof data !== "object") return;
    state.statsAvailable = true;
    state.stats = data;
    changed();
  }, (s) => {
    if (s === "unavailable" && state.statsAvailable !== false) { state.statsAvailable = false; changed(); }
    setLive("stats", s);
  });
}

let refreshTimer = null;
function startWatch() {
  eventStream("/api/v1/watch", (name) => {
    if (name === "ERROR") return;
    // A resource changed: reload the inventory once the burst is over.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => { state.revision++; loadInventory(); }, 250);
  }, (s) => {
    // Back after a drop: changes made meanwhile were not streamed, so list again.
    if (s === "live" && liveStates.watch && liveStates.watch !== "live") { state.revision++; loadInventory(); }
    setLive("watch", s);
  });
  // Proxy connections, ACKs and endpoints' health are not store resources: poll them.
  setInterval(() => { if (!document.hidden) loadInventory(); }, 3000);
}

const liveStates = {};
function setLive(which, s) {
  liveStates[which] = s;
  const el = document.getElementById("live");
  if (!el) return;
  const watch = liveStates.watch, stats = liveStates.stats;
  const ok = watch === "live" && (stats === "live" || stats === "unavailable");
  el.className = `live ${ok ? "live-ok" : "live-warn"}`;
  el.textContent = ok ? "live" : watch === "live" ? "live (metrics reconnecting)" : "reconnecting…";
  el.title = `resource watch: ${watch || "starting"}; metrics stream: ${stats || "starting"}`;
}

// --- derived views ------------------------------------------------------------------------------
const key = (ns, name) => `${ns || "default"}/${name}`;
// How the API names a kind unambiguously (TCPRoute exists in two groups).
const kindName = (k) => (k.group ? `${k.kind}.${k.group}` : k.kind);

function services() {
  const out = new Map();
  const get = (ns, name) => {
    const k = key(ns, name);
    if (!out.has(k)) out.set(k, { namespace: ns || "default", name, resource: null, endpoints: [], workloads: new Set(), stats: null });
    return out.get(k);
  };
  for (const r of state.serviceResources) get(r.metadata.namespace, r.metadata.name).resource = r;
  for (const e of state.endpoints) {
    const s = get(e.namespace, e.service);
    s.endpoints.push(e);
    if (e.workload) s.workloads.add(e.workload);
  }
  for (const s of state.stats?.services || []) get(s.namespace, s.name).stats = s;
  return [...out.values()].sort((a, b) => key(a.namespace, a.name).localeCompare(key(b.namespace, b.name)));
}

function meshMode() {
  const mesh = state.meshes.find((m) => m.metadata.name === "default") || state.meshes[0];
  const spec = mesh?.spec || {};
  return {
    name: mesh ? mesh.metadata.name : "default (implicit)",
    mtls: spec.mtls?.mode || "STRICT",
    access: spec.defaultAccess || "allow",
    egress: spec.egress?.mode || "REGISTRY_ONLY",
    resource: mesh || null,
  };
}

function proxyCounts() {
  const c = { connected: 0, stale: 0, nacking: 0 };
  for (const p of state.proxies) {
    if (p.state === "nacking") c.nacking++;
    else if (p.state === "connected") c.connected++;
    else c.stale++; // disconnected (within the grace period) or still syncing
  }
  return c;
}

const stateBadge = (p) => badge(p.state === "nacking" ? "NACKing" : p.state,
  { connected: "ok", nacking: "bad", disconnected: "bad", syncing: "warn" }[p.state] || "idle");

function svcLink(ns, name) { return link(`#/service/${encodeURIComponent(ns || "default")}/${encodeURIComponent(name)}`, name); }
function resourceHref(r) {
  const ns = r.metadata.namespace || "-";
  return `#/policies/${encodeURIComponent(kindRef(r))}/${encodeURIComponent(ns)}/${encodeURIComponent(r.metadata.name)}`;
}
function kindRef(r) {
  const group = (r.apiVersion || "").includes("/") ? r.apiVersion.split("/")[0] : "";
  return group ? `${r.kind}.${group}` : r.kind;
}

function rateCell(rate) {
  return h("span", { class: `rate rate-${health(rate)}` }, pct(rate));
}

function notAvailable(what, endpoint) {
  return notice(`${what}: not available — this control plane has no ${endpoint} yet.`, "muted");
}

// --- pages ------------------------------------------------------------------------------------------
// Each page: render(main, params) builds the page and returns {update?, destroy?}.

function overview(main) {
  const cards = h("div", { class: "cards" });
  const worst = h("section", { "aria-labelledby": "worst-h" });
  const svcSection = h("section", { "aria-labelledby": "svc-h" });
  const attention = h("section", { "aria-labelledby": "att-h" });
  main.append(h("h1", {}, "Overview"), cards, worst, svcSection, attention);
  function update() {
    const svcs = services();
    const counts = proxyCounts();
    const mode = meshMode();
    const modes = {};
    for (const m of state.mtls) modes[m.mode] = (modes[m.mode] || 0) + 1;
    const leaves = state.ca?.leaves || [];
    const soonest = leaves.reduce((a, b) => (a && a.daysToExpiry <= b.daysToExpiry ? a : b), null);
    cards.replaceChildren(
      card("Services", svcs.length, `${state.workloads.length} workloads`, "#/topology"),
      card("Proxies", state.proxies.length,
        h("span", {}, badge(`${counts.connected} connected`, "ok"), " ",
          badge(`${counts.stale} stale`, counts.stale ? "warn" : "idle"), " ",
          badge(`${counts.nacking} NACKing`, counts.nacking ? "bad" : "idle")), "#/proxies"),
      card("Mesh", mode.mtls, h("span", {}, `mTLS ${mode.mtls}`,
        Object.keys(modes).length ? ` (sidecars: ${Object.entries(modes).map(([k, v]) => `${v} ${k}`).join(", ")})` : "",
        h("br"), `default access: ${mode.access}`, h("br"), `egress: ${mode.egress}`),
        mode.resource ? resourceHref(mode.resource) : "#/policies"),
      card("Certificates", state.ca?.enabled ? days(state.ca.issuer?.daysToExpiry) : "no CA",
        state.ca?.enabled ? h("span", {}, "root expires in ", days(state.ca.issuer?.daysToExpiry), h("br"),
          soonest ? `soonest workload certificate: ${soonest.node}, ${days(soonest.daysToExpiry)}` : "no workload certificates")
          : "this control plane issues no certificates", null),
    );
    worst.replaceChildren(h("h2", { id: "worst-h" }, "Worst services"));
    if (state.statsAvailable === false) worst.append(notAvailable("Golden metrics", "metrics API (/api/v1/stats)"));
    else {
      const active = svcs.filter((s) => s.stats && s.stats.requests > 0);
      active.sort((a, b) => (a.stats.successRate ?? 1) - (b.stats.successRate ?? 1)
        || (b.stats.latencyMs?.p99 ?? 0) - (a.stats.latencyMs?.p99 ?? 0));
      worst.append(table(metricColumns(), active.slice(0, 5), { id: "worst", empty: "no traffic in the last minute" }));
    }
    svcSection.replaceChildren(h("h2", { id: "svc-h" }, "Services"),
      table([
        { title: "service", value: (s) => svcLink(s.namespace, s.name), sort: (s) => s.name },
        { title: "namespace", value: (s) => s.namespace, sort: (s) => s.namespace },
        { title: "workloads", value: (s) => s.workloads.size, sort: (s) => s.workloads.size, numeric: true },
        { title: "endpoints (healthy)", value: (s) => endpointsText(s.endpoints), sort: (s) => s.endpoints.length, numeric: true },
        ...metricColumns().slice(1),
      ], svcs, { id: "services", caption: "Services and their golden metrics (last minute)", empty: "no services yet" }));
    const nacking = state.proxies.filter((p) => p.state !== "connected");
    attention.replaceChildren(h("h2", { id: "att-h" }, "Proxies needing attention"),
      nacking.length ? table(proxyColumns().slice(0, 5), nacking, { id: "attention" })
        : notice("every proxy is connected and has ACKed its configuration", "ok"));
  }
  update();
  return { update };
}

function card(title, big, detail, href) {
  const body = [h("h2", {}, title), h("p", { class: "big" }, String(big)), h("p", { class: "detail" }, detail)];
  return href ? h("a", { class: "card", href }, ...body) : h("div", { class: "card" }, ...body);
}

function endpointsText(eps) {
  const healthy = eps.filter((e) => e.health !== "unhealthy").length;
  return `${eps.length} (${healthy})`;
}

function metricColumns() {
  return [
    { title: "service", value: (s) => svcLink(s.namespace, s.name), sort: (s) => s.name },
    { title: "req/s", value: (s) => num(s.stats?.rps), sort: (s) => s.stats?.rps ?? -1, numeric: true },
    { title: "success", value: (s) => rateCell(s.stats?.successRate), sort: (s) => s.stats?.successRate ?? 2, numeric: true },
    { title: "p50", value: (s) => ms(s.stats?.latencyMs?.p50), sort: (s) => s.stats?.latencyMs?.p50 ?? -1, numeric: true },
    { title: "p99", value: (s) => ms(s.stats?.latencyMs?.p99), sort: (s) => s.stats?.latencyMs?.p99 ?? -1, numeric: true },
  ];
}

// --- service page --------------------------------------------------------------------------------
function applies(resource, ns, name) {
  if ((resource.metadata.namespace || ns) !== ns && resource.kind !== "Mesh") return false;
  const spec = resource.spec || {};
  if (spec.targetRef && spec.targetRef.kind === "Mesh") return true;
  let hit = false;
  (function walk(v, k) {
    if (hit || v === null || typeof v !== "object") {
      if (typeof v === "string" && v === name && /^(name|service|host|destination)$/.test(k)) hit = true;
      return;
    }
    for (const [kk, vv] of Object.entries(v)) walk(vv, Array.isArray(v) ? k : kk);
  })(spec, "");
  return hit;
}

// The split configured for a service: HTTPRoute/GRPCRoute rules attached to it (GAMMA) and
// SMI TrafficSplits. Backends resolve to a version through their Service's selector.
function configuredSplits(ns, name, resources) {
  const versionOf = (backend) => {
    const svc = state.serviceResources.find((r) => r.metadata.name === backend && (r.metadata.namespace || "default") === ns);
    return svc?.spec?.selector?.version || (backend === name ? "all" : null);
  };
  const splits = [];
  for (const r of resources) {
    const spec = r.spec || {};
    if (r.kind === "HTTPRoute" || r.kind === "GRPCRoute") {
      const attached = (spec.parentRefs || []).some((p) => p.name === name && (p.kind || "Service") === "Service");
      if (!attached) continue;
      (spec.rules || []).forEach((rule, i) => {
        const refs = rule.backendRefs || [];
        const total = refs.reduce((a, b) => a + (b.weight ?? 1), 0);
        splits.push({
          resource: r, rule: i, matches: rule.matches || [],
          backends: refs.map((b) => ({ backend: b.name, version: versionOf(b.name), share: total ? (b.weight ?? 1) / total : 0 })),
        });
      });
    } else if (r.kind === "TrafficSplit" && spec.service === name) {
      const total = (spec.backends || []).reduce((a, b) => a + (b.weight ?? 0), 0);
      splits.push({
        resource: r, rule: 0, matches: [],
        backends: (spec.backends || []).map((b) => ({ backend: b.service, version: versionOf(b.service), share: total ? b.weight / total : 0 })),
      });
    }
  }
  return splits;
}

function observedShares(stat) {
  const versions = stat?.versions || {};
  const total = Object.values(versions).reduce((a, v) => a + (v.rps || 0), 0);
  const out = {};
  for (const [v, s] of Object.entries(versions)) out[v] = total ? (s.rps || 0) / total : null;
  return out;
}

async function loadResources(kinds) {
  const lists = await Promise.all(kinds.map((k) => api(`/api/v1/${encodeURIComponent(k)}`).catch(() => ({ items: [] }))));
  return lists.flatMap((l) => l.items);
}

function servicePage(main, [ns, name]) {
  ns = ns || "default";
  main.append(h("h1", {}, "Service ", h("span", { class: "mono" }, `${ns}/${name}`)));
  const head = h("section", { class: "cards" });
  const charts = h("section", { "aria-labelledby": "charts-h" }, h("h2", { id: "charts-h" }, "Golden metrics (last 10 minutes)"));
  const chartBox = h("div", { class: "charts" });
  charts.append(chartBox);
  const split = h("section", { "aria-labelledby": "split-h" });
  const versions = h("section", { "aria-labelledby": "ver-h" });
  const edges = h("section", { "aria-labelledby": "edges-h" });
  const policies = h("section", { "aria-labelledby": "pol-h" }, h("h2", { id: "pol-h" }, "Policies that apply"), notice("loading…"));
  const eps = h("section", { "aria-labelledby": "eps-h" });
  main.append(head, charts, split, versions, edges, policies, eps);
  let resources = [];
  let destroyed = false;
  let listedAt = state.revision;

  async function loadPolicies() {
    listedAt = state.revision;
    const kinds = state.kinds.length ? state.kinds : await api("/api/v1/kinds").catch(() => []);
    state.kinds = kinds;
    const wanted = kinds.filter((k) => !["Workload", "Service", "GatewayClass"].includes(k.kind)).map(kindName);
    resources = await loadResources(wanted);
    if (destroyed) return;
    const applying = resources.filter((r) => applies(r, ns, name));
    policies.replaceChildren(h("h2", { id: "pol-h" }, "Policies that apply"),
      table([
        { title: "kind", value: (r) => r.kind, sort: (r) => r.kind },
        { title: "name", value: (r) => link(resourceHref(r), `${r.metadata.namespace ? r.metadata.namespace + "/" : ""}${r.metadata.name}`), sort: (r) => r.metadata.name },
        { title: "changed", value: (r) => r.metadata.creationTimestamp || "–" },
      ], applying, { id: "svc-policies", empty: "none: mesh defaults apply" }));
    update();
  }

  let seriesAt = 0;
  async function loadSeries() {
    seriesAt = Date.now();
    let series;
    try {
      series = await optional(`/api/v1/stats/series?kind=service&namespace=${encodeURIComponent(ns)}&name=${encodeURIComponent(name)}&window=10m`);
    } catch (e) {
      chartBox.replaceChildren(notice(`metrics: ${e.message}`, "error"));
      return;
    }
    if (destroyed) return;
    if (!series) { chartBox.replaceChildren(notAvailable("Time series", "metrics API (/api/v1/stats/series)")); return; }
    const pts = series.points || [];
    const times = pts.map((p) => p.t);
    const versionNames = [...new Set(pts.flatMap((p) => Object.keys(p.versions || {})))].sort();
    chartBox.replaceChildren(
      chart({ title: "Success rate", times, series: [{ label: "success", values: pts.map((p) => (p.successRate === null || p.successRate === undefined ? null : p.successRate * 100)) }], unit: "%", format: (v) => num(v, 1),
        // 0–100%, zoomed in when every point is high (99.9% vs 99% matters).
        range: (u, min) => [min !== null && min >= 90 ? 90 : 0, 100] }),
      chart({ title: "Requests per second", times, series: [
        { label: "total", values: pts.map((p) => p.rps ?? null) },
        ...versionNames.map((v) => ({ label: v, values: pts.map((p) => p.versions?.[v]?.rps ?? null) })),
      ], format: (v) => num(v, 1) }),
      chart({ title: "Latency", times, series: ["p50", "p95", "p99"].map((q) => ({ label: q, values: pts.map((p) => p.latencyMs?.[q] ?? null) })), unit: " ms", format: (v) => num(v, 1) }),
    );
  }

  function update() {
    const svc = services().find((s) => s.namespace === ns && s.name === name);
    const st = svc?.stats;
    const resource = svc?.resource;
    head.replaceChildren(
      card("Requests/s", st ? num(st.rps) : "–", st ? `${st.requests} requests in ${state.stats ? "the last minute" : ""}` : "no metrics", null),
      card("Success rate", st ? pct(st.successRate) : "–", "", null),
      card("Latency p50 / p95 / p99", st?.latencyMs ? `${num(st.latencyMs.p50)} / ${num(st.latencyMs.p95)} / ${num(st.latencyMs.p99)}` : "–", "milliseconds", null),
      card("Definition", resource ? "Service" : "implicit", resource
        ? h("span", {}, "selector ", Object.entries(resource.spec?.selector || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "–", " · ", link(resourceHref(resource), "YAML"))
        : "registered by its workloads' sidecars", null),
    );
    // Configured split next to the observed one.
    const splits = configuredSplits(ns, name, resources);
    const observed = observedShares(st);
    split.replaceChildren(h("h2", { id: "split-h" }, "Traffic split: configured and observed"));
    let rows;
    if (splits.length) {
      rows = splits.flatMap((s) => s.backends.map((b) => ({ ...b, source: s })));
    } else {
      // No route: the sidecars balance across every endpoint.
      const byVersion = {};
      for (const e of svc?.endpoints || []) {
        const wl = state.workloads.find((w) => w.metadata.name === e.workload);
        const v = wl?.metadata?.labels?.version || e.workload || "?";
        byVersion[v] = (byVersion[v] || 0) + 1;
      }
      const n = Object.values(byVersion).reduce((a, b) => a + b, 0);
      rows = Object.entries(byVersion).map(([v, c]) => ({ backend: `${name} (${v})`, version: v, share: n ? c / n : 0, source: null }));
      split.append(notice("no HTTPRoute or TrafficSplit for this service: requests are balanced across its endpoints", "muted"));
    }
    for (const v of Object.keys(observed)) {
      if (!rows.some((r) => r.version === v)) rows.push({ backend: "–", version: v, share: null, source: null });
    }
    split.append(table([
      { title: "backend", value: (r) => r.backend },
      { title: "version", value: (r) => r.version || "–" },
      { title: "configured", value: (r) => (r.share === null ? "–" : pct(r.share, 0)), numeric: true },
      { title: "observed", value: (r) => (state.statsAvailable === false ? "n/a" : r.version in observed ? pct(observed[r.version], 1) : "–"), numeric: true },
      { title: "from", value: (r) => (r.source ? link(resourceHref(r.source.resource), `${r.source.resource.kind} ${r.source.resource.metadata.name}${r.source.matches.length ? ` rule ${r.source.rule + 1}` : ""}`) : "endpoints") },
    ], rows, { id: "split", caption: "Share of requests per backend" }));
    split.querySelector("table").dataset.observed = JSON.stringify(observed);

    versions.replaceChildren(h("h2", { id: "ver-h" }, "Versions and workloads"));
    const wls = (state.stats?.workloads || []).filter((w) => w.service === name && (w.namespace || "default") === ns);
    if (state.statsAvailable === false) versions.append(notAvailable("Per-workload metrics", "metrics API"));
    versions.append(table([
      { title: "workload", value: (w) => w.name, sort: (w) => w.name },
      { title: "version", value: (w) => w.version || "–", sort: (w) => w.version || "" },
      { title: "req/s", value: (w) => num(w.rps), sort: (w) => w.rps ?? -1, numeric: true },
      { title: "success", value: (w) => rateCell(w.successRate), sort: (w) => w.successRate ?? 2, numeric: true },
      { title: "p50", value: (w) => ms(w.latencyMs?.p50), numeric: true },
      { title: "p99", value: (w) => ms(w.latencyMs?.p99), numeric: true },
    ], wls.length ? wls : [...(svc?.workloads || [])].map((w) => ({ name: w, version: state.workloads.find((x) => x.metadata.name === w)?.metadata?.labels?.version })),
    { id: "versions", empty: "no workloads" }));

    edges.replaceChildren(h("h2", { id: "edges-h" }, "Inbound and outbound"));
    if (state.statsAvailable === false) edges.append(notAvailable("Edges", "metrics API"));
    else {
      const all = state.stats?.edges || [];
      // Calls to the backends of this service's split are calls to this service.
      const mine = new Set([name, ...splits.flatMap((sp) => sp.backends.map((b) => b.backend))]);
      const isMe = (e) => mine.has(e.name) && (e.namespace || "default") === ns;
      const edgeCols = (end) => [
        { title: end === "source" ? "from" : "to", value: (e) => svcLink(e[end].namespace, e[end].name), sort: (e) => e[end].name },
        ...(end === "source" ? [{ title: "to backend", value: (e) => e.destination.name, sort: (e) => e.destination.name }] : []),
        { title: "req/s", value: (e) => num(e.rps), sort: (e) => e.rps ?? -1, numeric: true },
        { title: "success", value: (e) => rateCell(e.successRate), sort: (e) => e.successRate ?? 2, numeric: true },
        { title: "p99", value: (e) => ms(e.latencyMs?.p99), numeric: true },
      ];
      edges.append(
        h("h3", {}, "Inbound (callers)"), table(edgeCols("source"), all.filter((e) => isMe(e.destination)), { id: "inbound", empty: "no callers in the last minute" }),
        h("h3", {}, "Outbound (callees)"), table(edgeCols("destination"), all.filter((e) => isMe(e.source)), { id: "outbound", empty: "no calls in the last minute" }),
      );
    }
    eps.replaceChildren(h("h2", { id: "eps-h" }, "Endpoints"), table([
      { title: "address", value: (e) => h("span", { class: "mono" }, e.address), sort: (e) => e.address },
      { title: "workload", value: (e) => e.workload || "–", sort: (e) => e.workload || "" },
      { title: "port", value: (e) => e.port, numeric: true },
      { title: "zone", value: (e) => e.zone || "–" },
      { title: "health", value: (e) => badge(e.health, { healthy: "ok", unhealthy: "bad" }[e.health] || "idle"), sort: (e) => e.health },
    ], svc?.endpoints || [], { id: "endpoints", empty: "no endpoints" }));
    if (Date.now() - seriesAt > 5000) loadSeries();
    if (listedAt !== state.revision) loadPolicies();
  }
  update();
  loadPolicies();
  return { update, destroy: () => { destroyed = true; } };
}

// --- topology -----------------------------------------------------------------------------------
function topology(main) {
  main.append(h("h1", {}, "Topology"),
    h("p", { class: "hint" }, "Services and the requests between them in the last minute; edges show requests/s and success rate. Select a service to open its page."));
  const graphBox = h("div", { id: "graph", class: "graph", role: "img", "aria-label": "service graph (the table below lists the same edges)" });
  const tableBox = h("section", { "aria-labelledby": "edges-h" });
  const grouped = h("input", { type: "checkbox", id: "group-backends", checked: true, onchange: () => update() });
  main.append(h("p", {}, grouped, " ", h("label", { for: "group-backends" }, "Show split backends (e.g. benigno-v1, benigno-v2 of an HTTPRoute or TrafficSplit) as their service")),
    graphBox, tableBox);
  let cy = null;
  let nodeKey = "";
  let destroyed = false;
  // backend Service → the Service whose route or split sends to it.
  let parentOf = new Map();
  let listedAt = -1;
  async function loadSplits() {
    listedAt = state.revision;
    const resources = await loadResources(["HTTPRoute.gateway.networking.k8s.io", "GRPCRoute.gateway.networking.k8s.io", "TrafficSplit.split.smi-spec.io"]);
    const map = new Map();
    for (const r of resources) {
      const ns = r.metadata.namespace || "default";
      const spec = r.spec || {};
      const parents = r.kind === "TrafficSplit" ? [spec.service] : (spec.parentRefs || []).filter((p) => (p.kind || "Service") === "Service" && p.group !== "gateway.networking.k8s.io").map((p) => p.name);
      const backends = r.kind === "TrafficSplit" ? (spec.backends || []).map((b) => b.service) : (spec.rules || []).flatMap((rule) => (rule.backendRefs || []).map((b) => b.name));
      for (const parent of parents.filter(Boolean)) for (const b of backends) if (b && b !== parent) map.set(key(ns, b), key(ns, parent));
    }
    parentOf = map;
    if (!destroyed) update();
  }
  function merged() {
    const raw = state.stats?.edges || [];
    if (!grouped.checked || !parentOf.size) return raw.map((e) => ({ ...e, via: [] }));
    const out = new Map();
    const up = (end) => {
      const k = parentOf.get(key(end.namespace, end.name));
      return k ? { namespace: k.split("/")[0], name: k.split("/").slice(1).join("/") } : end;
    };
    for (const e of raw) {
      const src = up(e.source), dst = up(e.destination);
      const k = `${key(src.namespace, src.name)}>${key(dst.namespace, dst.name)}`;
      if (k.split(">")[0] === k.split(">")[1]) continue;
      const m = out.get(k) || { source: src, destination: dst, requests: 0, rps: 0, ok: 0, latencyMs: null, via: [] };
      m.requests += e.requests || 0;
      m.rps += e.rps || 0;
      m.ok += (e.successRate ?? 1) * (e.requests || 0);
      if (e.latencyMs && (!m.latencyMs || e.latencyMs.p99 > m.latencyMs.p99)) m.latencyMs = e.latencyMs;
      if (dst.name !== e.destination.name) m.via.push(e.destination.name);
      out.set(k, m);
    }
    return [...out.values()].map((m) => ({ ...m, successRate: m.requests ? m.ok / m.requests : null }));
  }
  function elements() {
    const nodes = new Map();
    const hidden = grouped.checked ? parentOf : new Map();
    for (const s of services()) {
      if (hidden.has(key(s.namespace, s.name))) continue;
      nodes.set(key(s.namespace, s.name), { ns: s.namespace, name: s.name, rate: s.stats?.successRate ?? null });
    }
    const edges = merged();
    for (const e of edges) {
      for (const end of [e.source, e.destination]) {
        const k = key(end.namespace, end.name);
        if (!nodes.has(k)) nodes.set(k, { ns: end.namespace || "default", name: end.name, rate: null });
      }
    }
    return { nodes, edges };
  }
  function update() {
    const { nodes, edges } = elements();
    tableBox.replaceChildren(h("h2", { id: "edges-h" }, "Edges"));
    if (state.statsAvailable === false) tableBox.append(notAvailable("Traffic edges", "metrics API (/api/v1/stats)"));
    tableBox.append(table([
      { title: "from", value: (e) => svcLink(e.source.namespace, e.source.name), sort: (e) => e.source.name },
      { title: "to", value: (e) => svcLink(e.destination.namespace, e.destination.name), sort: (e) => e.destination.name },
      { title: "req/s", value: (e) => num(e.rps), sort: (e) => e.rps ?? -1, numeric: true },
      { title: "success", value: (e) => rateCell(e.successRate), sort: (e) => e.successRate ?? 2, numeric: true },
      { title: "p99 (worst)", value: (e) => ms(e.latencyMs?.p99), numeric: true },
      { title: "via backends", value: (e) => (e.via.length ? [...new Set(e.via)].sort().join(", ") : "–") },
    ], edges, {
      id: "edges", empty: "no traffic in the last minute",
      rowAttrs: (e) => ({ dataset: { edge: `${e.source.name}>${e.destination.name}` } }),
    }));
    if (!libs.graph) {
      graphBox.replaceChildren(notice("graph library not installed (run `make web`): the table lists the edges", "muted"));
      return;
    }
    const els = [
      ...[...nodes.entries()].map(([k, n]) => ({ data: { id: k, label: n.name, ns: n.ns, name: n.name, health: health(n.rate) } })),
      ...edges.map((e) => ({ data: {
        id: `${key(e.source.namespace, e.source.name)}>${key(e.destination.namespace, e.destination.name)}`,
        source: key(e.source.namespace, e.source.name), target: key(e.destination.namespace, e.destination.name),
        label: `${num(e.rps)} rps · ${pct(e.successRate)}`, health: health(e.successRate),
      } })),
    ];
    const newKey = els.map((e) => e.data.id).sort().join(",");
    if (cy && newKey === nodeKey) {
      // Same graph: update labels and colours in place (no re-layout, no jumping).
      cy.batch(() => { for (const e of els) cy.getElementById(e.data.id).data(e.data); });
      return;
    }
    nodeKey = newKey;
    if (cy) cy.destroy();
    cy = window.cytoscape({
      container: graphBox, elements: els, wheelSensitivity: 0.3,
      layout: { name: nodes.size > 30 ? "grid" : "breadthfirst", directed: true, padding: 30, spacingFactor: 1.2 },
      style: [
        { selector: "node", style: { label: "data(label)", "background-color": "#6e7781", color: "#1b1f24", "font-size": 12, "text-valign": "bottom", "text-margin-y": 4 } },
        { selector: "node[health = 'ok']", style: { "background-color": "#1a7f37" } },
        { selector: "node[health = 'warn']", style: { "background-color": "#9a6700" } },
        { selector: "node[health = 'bad']", style: { "background-color": "#b3261e" } },
        { selector: "edge", style: { label: "data(label)", width: 2, "curve-style": "bezier", "target-arrow-shape": "triangle", "font-size": 10, "line-color": "#8c959f", "target-arrow-color": "#8c959f", "text-background-color": "#fff", "text-background-opacity": 0.9, "text-background-padding": 2 } },
        { selector: "edge[health = 'ok']", style: { "line-color": "#1a7f37", "target-arrow-color": "#1a7f37" } },
        { selector: "edge[health = 'warn']", style: { "line-color": "#9a6700", "target-arrow-color": "#9a6700" } },
        { selector: "edge[health = 'bad']", style: { "line-color": "#b3261e", "target-arrow-color": "#b3261e" } },
      ],
    });
    cy.on("tap", "node", (ev) => { location.hash = `#/service/${encodeURIComponent(ev.target.data("ns"))}/${encodeURIComponent(ev.target.data("name"))}`; });
    window.gossamerGraph = cy; // for the browser tests and the curious
  }
  update();
  loadSplits();
  return {
    update: () => { if (listedAt !== state.revision && listedAt !== -1) loadSplits(); else update(); },
    destroy: () => { destroyed = true; if (cy) cy.destroy(); window.gossamerGraph = null; },
  };
}

// --- proxies -----------------------------------------------------------------------------------
function identityOf(p) {
  const m = state.mtls.find((x) => x.proxy === p.name);
  if (m) return m.identity;
  return state.ca?.leaves?.find((l) => l.node === p.name)?.identity || "–";
}

const STATE_RANK = { nacking: 0, disconnected: 1, syncing: 2, connected: 3 };
const XDS_TYPES = ["LDS", "RDS", "CDS", "EDS", "SDS"];

function proxyColumns() {
  return [
    { title: "proxy", value: (p) => link(`#/proxy/${encodeURIComponent(p.name)}`, p.name), sort: (p) => p.name },
    { title: "state", value: (p) => stateBadge(p), sort: (p) => STATE_RANK[p.state] ?? 9 },
    { title: "NACK", value: (p) => (p.nack ? h("span", { class: "nack" }, `${p.nack.type}: ${p.nack.error}`) : "–"), sort: (p) => (p.nack ? 0 : 1) },
    { title: "workload", value: (p) => (p.workload ? `${p.namespace}/${p.workload}` : "–"), sort: (p) => p.workload || "" },
    { title: "kind", value: (p) => p.kind, sort: (p) => p.kind },
    { title: "identity", value: (p) => h("span", { class: "mono small" }, identityOf(p)) },
    { title: "version", value: (p) => p.userAgent || "–" },
    { title: "last ACKed", value: (p) => h("span", { class: "mono small" }, XDS_TYPES.filter((t) => p.types?.[t]).map((t) => `${t} ${p.types[t].acked ? p.types[t].acked.slice(0, 8) : "–"}`).join(" ")) },
    { title: "connected", value: (p) => (p.streams ? ago(p.connectedSince) : `gone ${ago(p.disconnectedAt)}`), sort: (p) => p.connectedSince || 0 },
  ];
}

function proxies(main) {
  const filter = h("input", { type: "search", id: "proxy-filter", placeholder: "name, workload, state…", oninput: () => update() });
  const box = h("div");
  main.append(h("h1", {}, "Proxies"), h("label", { for: "proxy-filter" }, "Filter "), filter, box);
  function update() {
    const q = filter.value.trim().toLowerCase();
    const rows = state.proxies.filter((p) => !q || [p.name, p.workload, p.state, p.service, p.kind].join(" ").toLowerCase().includes(q));
    const c = proxyCounts();
    box.replaceChildren(h("p", {}, `${state.proxies.length} proxies: ${c.connected} connected, ${c.stale} stale, ${c.nacking} NACKing`),
      table(proxyColumns(), rows, { id: "proxies", sortBy: 1, empty: "no proxies", limit: 400,
        rowAttrs: (p) => ({ class: p.state === "nacking" ? "row-bad" : null, dataset: { proxy: p.name, state: p.state } }) }));
  }
  update();
  return { update };
}

function proxyPage(main, [id]) {
  main.append(h("h1", {}, "Proxy ", h("span", { class: "mono" }, id)));
  const summary = h("section");
  const dump = h("section", { "aria-labelledby": "dump-h" });
  main.append(summary, dump);
  let config = null;
  const search = h("input", { type: "search", id: "config-search", placeholder: "cluster name, route, port…", oninput: () => renderDump() });
  function renderDump() {
    dump.replaceChildren(h("h2", { id: "dump-h" }, "Configuration (xDS, as sent)"),
      h("label", { for: "config-search" }, "Search "), search);
    if (!config) { dump.append(notice("loading…")); return; }
    const q = search.value.trim().toLowerCase();
    let shown = 0;
    for (const [type, resources] of Object.entries(config)) {
      const items = Object.entries(resources).filter(([n, r]) => !q || (n + JSON.stringify(r)).toLowerCase().includes(q));
      if (!items.length) continue;
      const det = h("details", { open: q ? true : null }, h("summary", {}, `${type} (${items.length})`));
      for (const [n, r] of items.slice(0, 200)) {
        shown++;
        const text = JSON.stringify(r, null, 2);
        const pre = h("pre", { class: "json", tabindex: "0", "aria-label": `${type} ${n}` });
        if (q) {
          const lower = text.toLowerCase();
          let i = 0, j;
          while ((j = lower.indexOf(q, i)) >= 0) { pre.append(text.slice(i, j), h("mark", {}, text.slice(j, j + q.length))); i = j + q.length; }
          pre.append(text.slice(i));
        } else pre.textContent = text;
        det.append(h("h3", { class: "mono" }, n), pre);
      }
      dump.append(det);
    }
    if (!shown) dump.append(notice(q ? `nothing matches “${search.value}”` : "no configuration sent yet", "muted"));
  }
  async function load() {
    try {
      const p = await api(`/api/v1/proxies/${encodeURIComponent(id)}?config=true`);
      config = p.config || {};
      renderDump();
    } catch (e) { dump.replaceChildren(notice(e.message, "error")); }
  }
  function update() {
    const p = state.proxies.find((x) => x.name === id);
    if (!p) { summary.replaceChildren(notice(`proxy ${id} is not connected`, "error")); return; }
    summary.replaceChildren(
      h("dl", { class: "facts" },
        h("dt", {}, "state"), h("dd", {}, stateBadge(p)),
        h("dt", {}, "identity"), h("dd", { class: "mono" }, identityOf(p)),
        h("dt", {}, "workload"), h("dd", {}, p.workload ? `${p.namespace}/${p.workload}` : "–"),
        h("dt", {}, "service"), h("dd", {}, p.service ? svcLink(p.namespace, p.service) : "–"),
        h("dt", {}, "version"), h("dd", {}, `${p.userAgent || "–"} (${p.streamKind || "–"} xDS)`),
        h("dt", {}, "address"), h("dd", { class: "mono" }, `${p.address || "–"} admin :${p.adminPort || "–"} peer ${p.peer || "–"}`),
        h("dt", {}, "connected"), h("dd", {}, p.streams ? `since ${time(p.connectedSince)}` : `disconnected ${ago(p.disconnectedAt)}`)),
      p.nack ? notice(`NACKing ${p.nack.type} version ${p.nack.version}: ${p.nack.error}`, "error") : "",
      table([
        { title: "type", value: (r) => r[0] },
        { title: "sent", value: (r) => h("span", { class: "mono" }, r[1].sent || "–") },
        { title: "last ACKed", value: (r) => h("span", { class: "mono" }, r[1].acked || "–") },
        { title: "pending", value: (r) => (r[1].pending ? "yes" : "no") },
        { title: "last NACK", value: (r) => (r[1].nack ? h("span", { class: "nack" }, `${r[1].nack.version}: ${r[1].nack.error}`) : "–") },
      ], Object.entries(p.types || {}), { caption: "Configuration versions per xDS type" }),
    );
  }
  update();
  load();
  return { update };
}

// --- policies and explain -----------------------------------------------------------------------
function policies(main, [kind, ns, name]) {
  main.append(h("h1", {}, "Policies and resources"));
  const explainBox = h("section", { "aria-labelledby": "explain-h" });
  const layout = h("div", { class: "split-view" });
  const kindsNav = h("nav", { "aria-label": "resource kinds", class: "kinds" });
  const listBox = h("section", { "aria-live": "polite" });
  layout.append(kindsNav, listBox);
  main.append(explainBox, h("h2", {}, "Resources"), layout);
  explainForm(explainBox);
  let counts = {};
  async function load() {
    const kinds = state.kinds.length ? state.kinds : await api("/api/v1/kinds");
    state.kinds = kinds;
    const lists = await Promise.all(kinds.map((k) => api(`/api/v1/${encodeURIComponent(kindName(k))}`).catch(() => ({ items: [] }))));
    counts = {};
    kinds.forEach((k, i) => { counts[kindName(k)] = lists[i].items; });
    render();
  }
  function render() {
    const selected = kind ? Object.keys(counts).find((k) => k === kind || k.split(".")[0] === kind) : null;
    const names = Object.keys(counts).map((k) => k.split(".")[0]);
    kindsNav.replaceChildren(h("ul", {}, Object.entries(counts).map(([k, items]) => {
      const [short, ...group] = k.split(".");
      // A kind in two API groups (TCPRoute) says which one.
      const label = names.filter((n) => n === short).length > 1 ? `${short} (${items.length}) ${group[0] || ""}` : `${short} (${items.length})`;
      return h("li", {}, link(`#/policies/${encodeURIComponent(k)}`, label, { "aria-current": k === selected ? "page" : null, title: k }));
    })));
    if (!selected) {
      const all = Object.values(counts).flat().filter((r) => !["Workload"].includes(r.kind));
      listBox.replaceChildren(h("h3", {}, "All resources (workloads on the Overview)"), resourceTable(all));
      return;
    }
    const items = counts[selected];
    const r = name ? items.find((x) => x.metadata.name === name && (x.metadata.namespace || "-") === ns) : null;
    listBox.replaceChildren(h("h3", {}, selected), resourceTable(items));
    if (name) {
      listBox.append(r ? h("div", { class: "yaml" }, h("h3", { id: "yaml-h" }, `${r.kind} ${r.metadata.namespace ? r.metadata.namespace + "/" : ""}${r.metadata.name}`),
        h("pre", { class: "yaml", tabindex: "0", "aria-labelledby": "yaml-h" }, toYaml(r)))
        : notice(`${selected} ${ns}/${name} not found`, "error"));
    }
  }
  function resourceTable(items) {
    return table([
      { title: "kind", value: (r) => r.kind, sort: (r) => r.kind },
      { title: "namespace", value: (r) => r.metadata.namespace || "–", sort: (r) => r.metadata.namespace || "" },
      { title: "name", value: (r) => link(resourceHref(r), r.metadata.name), sort: (r) => r.metadata.name },
      { title: "target", value: (r) => targetText(r) },
      { title: "created", value: (r) => r.metadata.creationTimestamp || "–", sort: (r) => r.metadata.creationTimestamp || "" },
    ], items, { id: "resources", empty: "none", limit: 300 });
  }
  let listedAt = state.revision;
  const reload = () => load().catch((e) => listBox.replaceChildren(notice(e.message, "error")));
  reload();
  return { update: () => { if (listedAt !== state.revision) { listedAt = state.revision; reload(); } } };
}

function targetText(r) {
  const s = r.spec || {};
  if (s.targetRef) return `${s.targetRef.kind}${s.targetRef.name ? " " + s.targetRef.name : ""}`;
  if (s.parentRefs) return s.parentRefs.map((p) => `${p.kind || "Gateway"} ${p.name}`).join(", ");
  if (s.service) return `Service ${s.service}`;
  if (s.selector) return Object.entries(s.selector).map(([k, v]) => `${k}=${v}`).join(", ");
  return "–";
}

function explainForm(box) {
  const opts = [...new Set([...state.workloads.map((w) => `workload/${w.metadata.name}`), ...services().map((s) => `svc/${s.name}`)])];
  const hosts = services().map((s) => s.name);
  const source = h("input", { id: "ex-source", name: "source", required: true, list: "ex-sources", placeholder: "workload/magnanimo", value: opts.find((o) => o.startsWith("workload/")) || "" });
  const dest = h("input", { id: "ex-dest", name: "destination", required: true, list: "ex-hosts", placeholder: "benigno:5000", value: hosts[0] || "" });
  const method = h("select", { id: "ex-method", name: "method" }, ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"].map((m) => h("option", {}, m)));
  const path = h("input", { id: "ex-path", name: "path", value: "/" });
  const headers = h("input", { id: "ex-headers", name: "headers", placeholder: "x-user: alice; x-canary: 1" });
  const result = h("div", { id: "explain-result", "aria-live": "polite" });
  const form = h("form", { class: "explain", onsubmit: async (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams({ source: source.value.trim(), destination: dest.value.trim(), method: method.value, path: path.value || "/" });
    for (const hd of headers.value.split(";").map((x) => x.trim()).filter(Boolean)) q.append("header", hd.replace(/\s*:\s*/, ":"));
    result.replaceChildren(notice("asking…"));
    try {
      const data = await api(`/api/v1/explain?${q}`);
      result.replaceChildren(renderExplanation(data));
    } catch (e) {
      result.replaceChildren(e instanceof ApiError && e.notAvailable ? notAvailable("Explain", "explain API (/api/v1/explain)") : notice(e.message, "error"));
    }
  } },
  h("datalist", { id: "ex-sources" }, opts.map((o) => h("option", { value: o }))),
  h("datalist", { id: "ex-hosts" }, hosts.map((o) => h("option", { value: o }))),
  h("div", { class: "fields" },
    h("label", {}, "Source", source), h("label", {}, "Destination", dest), h("label", {}, "Method", method),
    h("label", {}, "Path", path), h("label", {}, "Headers", headers),
    h("button", { type: "submit" }, "Explain")));
  box.replaceChildren(h("h2", { id: "explain-h" }, "Explain a request"),
    h("p", { class: "hint" }, "Where would this request go, and why? (The same answer as `gossamer explain`.)"), form, result);
}

function renderExplanation(d) {
  return h("div", { class: "explanation" },
    h("p", { class: `summary outcome-${d.outcome === "routed" ? "ok" : "bad"}` }, h("strong", {}, d.outcome || ""), " — ", d.summary || ""),
    table([
      { title: "stage", value: (s) => s.stage },
      { title: "decision", value: (s) => s.decision },
      { title: "detail", value: (s) => s.detail },
      { title: "resource", value: (s) => s.resource || "–" },
    ], d.steps || [], { caption: "Steps" }),
    (d.backends || []).length ? table([
      { title: "backend", value: (b) => b.service },
      { title: "weight", value: (b) => (b.share !== undefined && b.share !== null ? `${b.weight} (${pct(b.share, 0)})` : b.weight), numeric: true },
      { title: "healthy endpoints", value: (b) => `${b.healthyEndpoints} of ${Array.isArray(b.endpoints) ? b.endpoints.length : b.endpoints}`, numeric: true },
      { title: "endpoints", value: (b) => endpointList(b).map((e) => `${e.address}${e.workload ? ` (${e.workload})` : ""}${e.healthy === false ? " unhealthy" : ""}`).join(", ") || "–" },
    ], d.backends, { caption: "Backends" }) : null);
}

// A backend's endpoints: a list of {address, workload, healthy} (or just a count).
function endpointList(b) {
  return Array.isArray(b.endpoints) ? b.endpoints : [];
}

// --- traces --------------------------------------------------------------------------------------
function traces(main) {
  main.append(h("h1", {}, "Traces"));
  const svc = h("input", { id: "trace-service", type: "search", list: "trace-svcs", placeholder: "any service", onchange: () => load() });
  const box = h("section", { "aria-live": "polite" });
  main.append(h("label", { for: "trace-service" }, "Service "), svc, h("datalist", { id: "trace-svcs" }, services().map((s) => h("option", { value: s.name }))), box);
  async function load() {
    const q = new URLSearchParams({ limit: "50" });
    if (svc.value.trim()) q.set("service", svc.value.trim());
    try {
      const data = await optional(`/api/v1/traces?${q}`);
      if (!data) { box.replaceChildren(notAvailable("Traces", "trace collector (/api/v1/traces)")); return; }
      box.replaceChildren(table([
        { title: "trace", value: (t) => link(`#/trace/${encodeURIComponent(t.traceId)}`, `${t.rootService} ${t.rootName}`), sort: (t) => t.rootService },
        { title: "started", value: (t) => time(t.startUs / 1e6), sort: (t) => t.startUs },
        { title: "duration", value: (t) => ms(t.durationUs / 1000), sort: (t) => t.durationUs, numeric: true },
        { title: "spans", value: (t) => t.spans, numeric: true },
        { title: "services", value: (t) => (t.services || []).join(" → ") },
        { title: "error", value: (t) => (t.error ? badge("error", "bad") : "–"), sort: (t) => (t.error ? 0 : 1) },
      ], data.items, { id: "traces", empty: "no traces collected yet" }));
    } catch (e) { box.replaceChildren(notice(e.message, "error")); }
  }
  load();
  const timer = setInterval(() => { if (!document.hidden) load(); }, 5000);
  return { destroy: () => clearInterval(timer) };
}

function tracePage(main, [id]) {
  main.append(h("h1", {}, "Trace ", h("span", { class: "mono small" }, id)), link("#/traces", "← all traces"));
  const box = h("section");
  main.append(box);
  optional(`/api/v1/traces/${encodeURIComponent(id)}`).then((t) => {
    if (!t) { box.replaceChildren(notAvailable("Traces", "trace collector")); return; }
    box.replaceChildren(waterfall(t.spans || []));
  }).catch((e) => box.replaceChildren(notice(e.message, "error")));
  return {};
}

function waterfall(spans) {
  if (!spans.length) return notice("this trace has no spans");
  const start = Math.min(...spans.map((s) => s.timestamp || 0));
  const end = Math.max(...spans.map((s) => (s.timestamp || 0) + (s.duration || 0)));
  const total = Math.max(1, end - start);
  const byParent = new Map();
  const ids = new Set(spans.map((s) => s.id));
  for (const s of spans) {
    const p = s.parentId && ids.has(s.parentId) ? s.parentId : "";
    if (!byParent.has(p)) byParent.set(p, []);
    byParent.get(p).push(s);
  }
  const ordered = [];
  (function walk(parent, depth) {
    for (const s of (byParent.get(parent) || []).sort((a, b) => a.timestamp - b.timestamp)) {
      ordered.push([s, depth]);
      if (depth < 50) walk(s.id, depth + 1);
    }
  })("", 0);
  const rows = ordered.map(([s, depth]) => {
    const left = ((s.timestamp - start) / total) * 100;
    const width = Math.max(0.3, ((s.duration || 0) / total) * 100);
    const error = s.tags && (s.tags.error !== undefined || /^5/.test(s.tags["http.status_code"] || ""));
    return h("div", { class: "span-row", role: "row" },
      h("div", { class: "span-name", role: "cell", style: `padding-left:${depth * 14}px` },
        h("details", {},
          h("summary", {}, h("strong", {}, s.localEndpoint?.serviceName || "?"), " ", s.name || "", " ", h("span", { class: "small" }, s.kind || "")),
          h("dl", { class: "facts small" }, Object.entries(s.tags || {}).flatMap(([k, v]) => [h("dt", {}, k), h("dd", { class: "mono" }, v)]),
            s.remoteEndpoint ? [h("dt", {}, "remote"), h("dd", { class: "mono" }, `${s.remoteEndpoint.serviceName || ""} ${s.remoteEndpoint.ipv4 || s.remoteEndpoint.ipv6 || ""}:${s.remoteEndpoint.port || ""}`)] : null))),
      h("div", { class: "span-track", role: "cell" },
        h("div", { class: "span-lane" },
          h("div", { class: `span-bar${error ? " span-error" : ""}`, style: `left:${left}%;width:${width}%`, title: JSON.stringify(s.tags || {}) })),
        h("span", { class: "span-dur" }, ms((s.duration || 0) / 1000))));
  });
  return h("div", { class: "waterfall", role: "table", "aria-label": `waterfall, ${spans.length} spans, ${ms(total / 1000)}` },
    h("div", { class: "span-row span-head", role: "row" }, h("div", { role: "columnheader" }, "span"), h("div", { role: "columnheader" }, `0 – ${ms(total / 1000)}`)),
    ...rows);
}

// --- tap ------------------------------------------------------------------------------------------------
function tap(main) {
  main.append(h("h1", {}, "Tap"), h("p", { class: "hint" }, "Live requests seen by the sidecars of a service or workload (headers redacted)."));
  const targets = [...services().map((s) => `svc/${s.name}`), ...state.workloads.map((w) => `workload/${w.metadata.name}`)];
  const target = h("select", { id: "tap-target" }, targets.map((t) => h("option", {}, t)));
  const path = h("input", { id: "tap-path", placeholder: "/" });
  const method = h("select", { id: "tap-method" }, ["", "GET", "POST", "PUT", "DELETE"].map((m) => h("option", { value: m }, m || "any")));
  const status = h("p", { role: "status", class: "hint" }, "stopped");
  const rows = [];
  const body = h("tbody");
  const tbl = h("table", { class: "data", id: "tap-table" }, h("caption", {}, "Requests, newest first (at most 200 kept)"),
    h("thead", {}, h("tr", {}, ["time", "proxy", "dir", "method", "authority", "path", "status", "latency", "from", "to", "trace"].map((t) => h("th", { scope: "col" }, t)))), body);
  let stop = null;
  const startBtn = h("button", { type: "submit" }, "Start");
  const stopBtn = h("button", { type: "button", disabled: true, onclick: () => halt("stopped") }, "Stop");
  function halt(msg) {
    if (stop) stop();
    stop = null;
    startBtn.disabled = false;
    stopBtn.disabled = true;
    status.textContent = msg;
  }
  function row(r) {
    return h("tr", { class: r.status >= 500 ? "row-bad" : null },
      h("td", {}, time(r.time)), h("td", {}, r.proxy), h("td", {}, r.direction), h("td", {}, r.method),
      h("td", { class: "mono" }, r.authority), h("td", { class: "mono" }, r.path), h("td", { class: "num" }, r.status),
      h("td", { class: "num" }, ms(r.latencyMs)), h("td", { class: "small" }, r.source?.workload || r.source?.identity || "–"),
      h("td", {}, r.destination?.workload || r.destination?.service || "–"),
      h("td", {}, r.traceId ? link(`#/trace/${encodeURIComponent(r.traceId)}`, r.traceId.slice(0, 8)) : "–"));
  }
  const form = h("form", { class: "explain", onsubmit: (ev) => {
    ev.preventDefault();
    halt("starting…");
    rows.length = 0;
    body.replaceChildren();
    const q = new URLSearchParams({ target: target.value, duration: "300", limit: "5000" });
    if (path.value.trim()) q.set("path", path.value.trim());
    if (method.value) q.set("method", method.value);
    startBtn.disabled = true;
    stopBtn.disabled = false;
    status.textContent = `tapping ${target.value}…`;
    let n = 0;
    stop = ndjsonStream(`/api/v1/tap?${q}`, (item) => {
      if (item.type === "end") { halt(`ended: ${item.reason || "done"} (${n} requests)`); return; }
      if (item.type !== "request") return;
      n++;
      body.prepend(row(item));
      while (body.children.length > 200) body.lastChild.remove();
      status.textContent = `tapping ${target.value}: ${n} requests`;
    }, (err) => {
      if (!err) { if (stop) halt(`ended (${n} requests)`); return; }
      halt(err instanceof ApiError && err.notAvailable ? "Tap: not available — this control plane has no tap API (/api/v1/tap) yet." : `error: ${err.message}`);
    });
  } },
  h("div", { class: "fields" }, h("label", {}, "Target", target), h("label", {}, "Path prefix", path), h("label", {}, "Method", method), startBtn, stopBtn));
  main.append(form, status, tbl);
  return { destroy: () => halt("stopped") };
}

// --- token and router ---------------------------------------------------------------------------
function tokenDialog() {
  const dlg = document.getElementById("token-dialog");
  const input = dlg.querySelector("input");
  input.value = sessionStorage.getItem(TOKEN_KEY) || "";
  dlg.showModal();
  dlg.querySelector("form").onsubmit = (ev) => {
    if (ev.submitter?.value === "cancel") return;
    if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    else sessionStorage.removeItem(TOKEN_KEY);
    loadInventory().then(() => route());
  };
}

const routes = {
  overview: [overview, "Overview"], service: [servicePage, "Service"], topology: [topology, "Topology"],
  proxies: [proxies, "Proxies"], proxy: [proxyPage, "Proxy"], policies: [policies, "Policies"],
  traces: [traces, "Traces"], trace: [tracePage, "Trace"], tap: [tap, "Tap"],
};
const navOf = { service: "overview", proxy: "proxies", trace: "traces" };
let current = null;

function route(ev) {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const name = routes[parts[0]] ? parts[0] : "overview";
  if (current?.destroy) current.destroy();
  listeners.clear();
  const main = document.getElementById("main");
  main.replaceChildren();
  if (state.error instanceof ApiError && state.error.status === 401) {
    main.append(notice("The control plane needs a token for reads from this address: set one with “Token”.", "error"));
  }
  const [render, title] = routes[name];
  document.title = `${title}${parts[1] ? " " + parts.slice(1).join("/") : ""} · Gossamer`;
  for (const a of document.querySelectorAll("nav.top a")) {
    a.setAttribute("aria-current", a.dataset.page === (navOf[name] || name) ? "page" : "false");
  }
  try {
    current = render(main, parts.slice(1)) || {};
  } catch (e) {
    main.append(notice(`this page failed: ${e.message}`, "error"));
    current = {};
  }
  if (current.update) listeners.add(() => { try { current.update(); } catch (e) { console.error(e); } });
  // After a navigation, keyboard and screen reader users land on the new content.
  if (ev) main.focus({ preventScroll: true });
}

async function start() {
  document.getElementById("token-button").addEventListener("click", tokenDialog);
  document.getElementById("libs").textContent = [
    libs.charts ? null : "charts", libs.graph ? null : "graph", libs.yaml ? null : "YAML",
  ].filter(Boolean).map((x) => `${x} library missing`).join(", ");
  // The inventory first (the browser opens six connections at most); metrics fill in after.
  await loadInventory();
  window.addEventListener("hashchange", route);
  route();
  loadStats();
  startWatch();
  startStats();
  document.body.dataset.ready = "true";
}

window.gossamer = { state, services };
start();
