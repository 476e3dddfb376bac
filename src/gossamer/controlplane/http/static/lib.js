// Shared pieces of the dashboard: DOM building, the API client (token, "not available"),
// streams (server-sent events and NDJSON read with fetch, so a token can be sent),
// formatting, YAML, tables and the optional libraries (uPlot, cytoscape, js-yaml).

export const TOKEN_KEY = "gossamer.token";

// --- DOM -------------------------------------------------------------------------------
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function link(href, text, attrs) {
  return h("a", { href, ...(attrs || {}) }, text);
}

export function badge(text, kind) {
  return h("span", { class: `badge badge-${kind}` }, text);
}

export function notice(text, kind = "info") {
  return h("p", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

// A table from column specs: {title, value(row) -> Node|string, sort(row) -> number|string,
// numeric}. Headers are buttons that sort (keyboard reachable); `caption` labels it.
// Sort choices survive re-renders of a table with the same id (live pages rebuild them).
const sortState = new Map();
export function table(columns, rows, opts = {}) {
  const saved = opts.id ? sortState.get(opts.id) : null;
  let sortBy = saved ? saved[0] : opts.sortBy ?? null;
  let descending = saved ? saved[1] : opts.descending ?? false;
  const tbody = h("tbody");
  const thead = h("thead");
  const tableEl = h("table", { class: "data", ...(opts.id ? { id: opts.id } : {}) });
  if (opts.caption) tableEl.append(h("caption", {}, opts.caption));
  tableEl.append(thead, tbody);
  function render() {
    const headRow = h("tr");
    columns.forEach((c, i) => {
      const active = sortBy === i;
      const label = c.sort ? h("button", {
        type: "button", class: "sort",
        onclick: () => {
          descending = active ? !descending : !!c.numeric;
          sortBy = i;
          if (opts.id) sortState.set(opts.id, [sortBy, descending]);
          render();
          thead.querySelectorAll("button")[i]?.focus();
        },
      }, c.title, active ? (descending ? " ▾" : " ▴") : "") : c.title;
      headRow.append(h("th", {
        scope: "col", class: c.numeric ? "num" : null,
        "aria-sort": active ? (descending ? "descending" : "ascending") : null,
      }, label));
    });
    thead.replaceChildren(headRow);
    let data = rows.slice();
    if (sortBy !== null && columns[sortBy].sort) {
      const key = columns[sortBy].sort;
      data.sort((a, b) => {
        const x = key(a), y = key(b);
        const cmp = x === y ? 0 : x === null || x === undefined ? 1 : y === null || y === undefined ? -1 : x < y ? -1 : 1;
        return descending ? -cmp : cmp;
      });
    }
    const limit = opts.limit ?? 500;
    const shown = data.slice(0, limit);
    tbody.replaceChildren(...shown.map((r) => {
      const tr = h("tr", opts.rowAttrs ? opts.rowAttrs(r) : {});
      for (const c of columns) tr.append(h("td", { class: c.numeric ? "num" : null }, c.value(r)));
      return tr;
    }));
    if (!data.length) {
      tbody.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, opts.empty || "none")));
    } else if (data.length > limit) {
      tbody.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" },
        `${data.length - limit} more not shown`)));
    }
  }
  render();
  return tableEl;
}

// --- API -------------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(status, message, notAvailable) {
    super(message);
    this.status = status;
    // The endpoint itself does not exist on this control plane (the generic resource
    // route answers "unknown kind"), as opposed to a 404 about what was asked for.
    this.notAvailable = notAvailable;
  }
}

export function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function errorOf(resp) {
  let message = `${resp.status} ${resp.statusText}`;
  try {
    const body = await resp.json();
    if (body && body.error) message = body.error;
  } catch (e) { /* not JSON */ }
  const notAvailable = resp.status === 404 && /^unknown kind '/.test(message);
  return new ApiError(resp.status, message, notAvailable);
}

export async function api(path, opts = {}) {
  const resp = await fetch(path, { headers: { accept: "application/json", ...authHeaders() }, signal: opts.signal });
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

// Like api(), but an endpoint that does not exist (yet) resolves to null.
export async function optional(path, opts) {
  try {
    return await api(path, opts);
  } catch (e) {
    if (e instanceof ApiError && e.notAvailable) return null;
    throw e;
  }
}

async function* lines(resp, signal) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    while (!signal?.aborted) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let i;
      while ((i = buffer.indexOf("\n")) >= 0) {
        yield buffer.slice(0, i).replace(/\r$/, "");
        buffer = buffer.slice(i + 1);
      }
    }
    if (buffer) yield buffer;
  } finally {
    reader.cancel().catch(() => {});
  }
}

// Server-sent events over fetch: onEvent(name, data) for each event; reconnects after a
// drop (with Last-Event-ID handled by the caller's path if it wants). Returns a stop().
// onState("live"|"reconnecting"|"unavailable"|"error", detail).
export function eventStream(path, onEvent, onState = () => {}) {
  const ctl = new AbortController();
  let stopped = false;
  (async () => {
    let delay = 500;
    while (!stopped) {
      try {
        const resp = await fetch(typeof path === "function" ? path() : path, {
          headers: { accept: "text/event-stream", ...authHeaders() }, signal: ctl.signal,
        });
        if (!resp.ok) {
          const err = await errorOf(resp);
          if (err.notAvailable) { onState("unavailable", err.message); return; }
          throw err;
        }
        onState("live");
        delay = 500;
        let name = "message", data = [], id = null;
        for await (const line of lines(resp, ctl.signal)) {
          if (line === "") {
            if (data.length) {
              let parsed = data.join("\n");
              try { parsed = JSON.parse(parsed); } catch (e) { /* plain text */ }
              onEvent(name, parsed, id);
            }
            name = "message"; data = []; id = null;
          } else if (line.startsWith(":")) {
            continue;
          } else {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") name = value;
            else if (field === "data") data.push(value);
            else if (field === "id") id = value;
          }
        }
      } catch (e) {
        if (stopped) return;
        onState("error", e.message);
      }
      if (stopped) return;
      onState("reconnecting");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  })();
  return () => { stopped = true; ctl.abort(); };
}

// NDJSON over fetch (tap): onItem(obj) per line until the server ends it or stop().
export function ndjsonStream(path, onItem, onDone) {
  const ctl = new AbortController();
  (async () => {
    try {
      const resp = await fetch(path, { headers: { accept: "application/x-ndjson", ...authHeaders() }, signal: ctl.signal });
      if (!resp.ok) throw await errorOf(resp);
      for await (const line of lines(resp, ctl.signal)) {
        if (!line.trim()) continue;
        let item;
        try { item = JSON.parse(line); } catch (e) { continue; }
        onItem(item);
        if (item.type === "end") break;
      }
      onDone(null);
    } catch (e) {
      onDone(ctl.signal.aborted ? null : e);
    }
  })();
  return () => ctl.abort();
}

// --- formatting ----------------------------------------------------------------------------
export function pct(x, digits = 1) {
  return x === null || x === undefined ? "–" : `${(x * 100).toFixed(digits)}%`;
}
export function num(x, digits = 1) {
  return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
}
export function ms(x) {
  return x === null || x === undefined ? "–" : `${Number(x).toFixed(x < 10 ? 2 : 1)} ms`;
}
export function ago(epoch) {
  if (!epoch) return "–";
  const s = Math.max(0, Date.now() / 1000 - epoch);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 86400 * 2) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
export function days(d) {
  if (d === null || d === undefined) return "–";
  return d < 2 ? `${(d * 24).toFixed(1)} h` : `${d.toFixed(0)} days`;
}
export function time(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleTimeString() : "–";
}
// Health class of a success rate: ok ≥ 99%, warn ≥ 95%, bad below, idle without traffic.
export function health(rate) {
  if (rate === null || rate === undefined) return "idle";
  return rate >= 0.99 ? "ok" : rate >= 0.95 ? "warn" : "bad";
}

// --- YAML (js-yaml when installed; a small emitter otherwise) ------------------------------
export function toYaml(obj) {
  if (window.jsyaml) return window.jsyaml.dump(obj, { lineWidth: 100, noRefs: true, noArrayIndent: true });
  return emit(obj, 0).replace(/^\n/, "") + "\n";
}
function scalar(v) {
  if (v === null) return "null";
  if (typeof v === "string") {
    return v === "" || /^[\s\-?:,\[\]{}#&*!|>'"%@`]|[:#]\s|\s$|^(true|false|null|yes|no|~|[-+.\d][\d.eE+-]*)$/i.test(v) || v.includes("\n")
      ? JSON.stringify(v) : v;
  }
  return String(v);
}
function emit(v, indent) {
  const pad = "  ".repeat(indent);
  if (Array.isArray(v)) {
    if (!v.length) return " []";
    return v.map((x) => {
      if (x && typeof x === "object" && !Array.isArray(x) && Object.keys(x).length) {
        const inner = emit(x, indent + 1).replace(/^\n\s*/, "");
        return `\n${pad}- ${inner}`;
      }
      return `\n${pad}-${emit(x, indent + 1)}`;
    }).join("");
  }
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (!keys.length) return " {}";
    return keys.map((k) => `\n${pad}${scalar(k)}:${emit(v[k], indent + 1)}`).join("");
  }
  return ` ${scalar(v)}`;
}

// --- libraries -------------------------------------------------------------------------------
export const libs = {
  get charts() { return typeof window.uPlot === "function"; },
  get graph() { return typeof window.cytoscape === "function"; },
  get yaml() { return !!window.jsyaml; },
};

// Colours with at least 4.5:1 contrast on white (WCAG AA) for lines and text.
export const COLORS = ["#0b5cad", "#b3261e", "#1a7f37", "#8250df", "#9a6700", "#0e7490", "#c2185b"];

// A time-series chart: `series` = [{label, values}] over `times` (epoch s). Draws with uPlot
// when installed; always keeps the last point readable in the figure's data attributes and
// a table (screen readers, tests, and the page without the library).
export function chart({ title, times, series, unit = "", format = (v) => num(v, 2), height = 180, range = null }) {
  const fig = h("figure", { class: "chart", "aria-label": title });
  fig.append(h("figcaption", {}, title));
  const last = {};
  for (const s of series) {
    const vals = s.values;
    let v = null;
    for (let i = vals.length - 1; i >= 0; i--) if (vals[i] !== null && vals[i] !== undefined) { v = vals[i]; break; }
    last[s.label] = v;
  }
  fig.dataset.last = JSON.stringify(last);
  fig.dataset.points = String(times.length);
  const plot = h("div", { class: "plot" });
  fig.append(plot);
  if (libs.charts && times.length) {
    const draw = () => {
      const width = Math.max(280, plot.clientWidth || 480);
      const opts = {
        width, height,
        legend: { live: true },
        scales: { x: { time: true }, ...(range ? { y: { range } } : {}) },
        axes: [{}, { values: (u, ticks) => ticks.map((t) => format(t) + unit), size: 64 }],
        series: [{}, ...series.map((s, i) => ({
          label: s.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false,
          points: { show: true, size: 4 },
          value: (u, v) => (v === null || v === undefined ? "–" : format(v) + unit),
        }))],
      };
      plot.replaceChildren();
      new window.uPlot(opts, [times, ...series.map((s) => s.values)], plot);
    };
    requestAnimationFrame(draw);
  } else if (!times.length) {
    plot.append(notice("no data points yet"));
  }
  fig.append(h("details", { class: "chart-table" }, h("summary", {}, "last values"),
    table([{ title: "series", value: (r) => r[0] }, { title: "last", value: (r) => (r[1] === null ? "–" : format(r[1]) + unit), numeric: true }],
      Object.entries(last))));
  return fig;
}
