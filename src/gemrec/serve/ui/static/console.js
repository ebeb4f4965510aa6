// gemrec console: loads each page's server-rendered part with the API key, draws graphs as SVG,
// follows live events. Hand-written, no dependencies.
"use strict";

const KEY = "gemrec-api-key";
const SVG = "http://www.w3.org/2000/svg";

function status(text, isError) {
  const el = document.getElementById("status");
  el.textContent = text || "";
  el.className = isError ? "error" : "";
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = sessionStorage.getItem(KEY);
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

async function api(url, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = headers(opts.headers);
  const response = await fetch(url, opts);
  if (response.status === 401) {
    status("This needs the API key: enter it above and press Use.", true);
    document.getElementById("key").focus();
    throw new Error("API key required");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = body.message || (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
    } catch (e) { /* not JSON */ }
    status(`${url}: ${response.status} ${detail}`, true);
    throw new Error(detail);
  }
  return response;
}

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// ------------------------------------------------------------------ recommendations
async function showRecs(list, userId, onSelect) {
  const r = await api(`/v1/users/${encodeURIComponent(userId)}/recommendations?k=10`);
  const body = await r.json();
  list.replaceChildren();
  list.dataset.strategy = body.strategy;
  for (const item of body.items) {
    const li = el("li", { "data-item": item.item_id, tabindex: "0" });
    li.append(el("a", { href: `/ui/items/${encodeURIComponent(item.item_id)}` }, item.item_id));
    li.append(el("small", {}, ` ${item.score.toFixed(3)}`));
    if (item.reason) li.append(el("div", { class: "reason" }, item.reason));
    if (onSelect) {
      li.addEventListener("click", (ev) => {
        if (ev.target.tagName === "A") return;
        for (const other of list.children) other.classList.remove("on");
        li.classList.add("on");
        onSelect(item.item_id);
      });
    }
    list.append(li);
  }
  return body;
}

// ------------------------------------------------------------------ graphs
function layout(graph, width, height) {
  const layers = new Map();
  for (const n of graph.nodes) {
    if (!layers.has(n.layer)) layers.set(n.layer, []);
    layers.get(n.layer).push(n);
  }
  const order = [...layers.keys()].sort((a, b) => a - b);
  const pos = new Map();
  order.forEach((layer, col) => {
    const nodes = layers.get(layer);
    const x = order.length === 1 ? width / 2 : 70 + (col * (width - 140)) / (order.length - 1);
    nodes.forEach((n, row) => pos.set(n.id, [x, ((row + 1) * height) / (nodes.length + 1)]));
  });
  return pos;
}

function drawGraph(container, graph, downloadName, graphmlUrl) {
  const rows = Math.max(...graph.nodes.map((n) => graph.nodes.filter((m) => m.layer === n.layer).length));
  const width = 640, height = Math.max(160, 34 * rows + 40);
  const pos = layout(graph, width, height);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "graph-svg");
  const maxW = Math.max(1e-9, ...graph.edges.map((e) => Math.abs(e.weight)));
  for (const e of graph.edges) {
    const [x1, y1] = pos.get(e.source), [x2, y2] = pos.get(e.target);
    const line = document.createElementNS(SVG, "line");
    Object.entries({ x1, y1, x2, y2, class: "edge", "stroke-width": 1 + (4 * Math.abs(e.weight)) / maxW })
      .forEach(([k, v]) => line.setAttribute(k, v));
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${e.source} → ${e.target}: weight ${e.weight}`;
    line.append(title);
    svg.append(line);
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", (x1 + x2) / 2);
    label.setAttribute("y", (y1 + y2) / 2 - 3);
    label.setAttribute("class", "edge-label");
    label.textContent = `${e.label ? e.label + " " : ""}${Number(e.weight).toPrecision(2)}`;
    svg.append(label);
  }
  for (const n of graph.nodes) {
    const [x, y] = pos.get(n.id);
    const g = document.createElementNS(SVG, "g");
    g.setAttribute("class", `node ${n.kind} ${n.role}`);
    g.setAttribute("data-id", n.id);
    g.setAttribute("data-label", n.label);
    const c = document.createElementNS(SVG, "circle");
    c.setAttribute("cx", x);
    c.setAttribute("cy", y);
    c.setAttribute("r", n.role === "target" ? 11 : 8);
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", x);
    t.setAttribute("y", y + 22);
    t.setAttribute("text-anchor", "middle");
    t.textContent = n.label;
    g.append(c, t);
    if (n.kind === "item" || n.kind === "user") {
      g.addEventListener("click", () => {
        window.location = `/ui/${n.kind === "item" ? "items" : "users"}/${encodeURIComponent(n.label)}`;
      });
    }
    svg.append(g);
  }
  const bar = el("p", { class: "downloads" });
  const json = el("button", { type: "button", class: "download-json" }, "Download node-link JSON");
  json.addEventListener("click", () =>
    save(new Blob([JSON.stringify(graph, null, 1)], { type: "application/json" }), downloadName + ".json"));
  const graphml = el("button", { type: "button", class: "download-graphml" }, "Download GraphML");
  graphml.addEventListener("click", async () => {
    const r = await api(graphmlUrl);
    save(await r.blob(), downloadName + ".graphml");
  });
  bar.append(json, graphml);
  container.replaceChildren(el("h3", {}, graph.graph.name), svg, bar);
}

function save(blob, name) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function graphInto(container, url, name) {
  const r = await api(url + (url.includes("?") ? "&" : "?") + "format=json");
  drawGraph(container, await r.json(), name, url + (url.includes("?") ? "&" : "?") + "format=graphml");
}

// ------------------------------------------------------------------ pages
const hooks = {
  async user() {
    const list = document.getElementById("recs");
    if (!list) return;
    const userId = list.dataset.user;
    const graph = document.getElementById("graph");
    await showRecs(list, userId, (itemId) =>
      graphInto(graph, `/ui/graph/explain?user_id=${encodeURIComponent(userId)}&item_id=${encodeURIComponent(itemId)}`,
        `explain-${userId}-${itemId}`));
  },
  async item() {
    const graph = document.getElementById("graph");
    await graphInto(graph, graph.dataset.src, "item-" + document.title.split(" ")[0]);
  },
  async live() {
    const list = document.getElementById("recs");
    const watched = () => document.getElementById("watch-user").value.trim();
    document.getElementById("watch-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      showRecs(list, watched());
    });
    document.getElementById("post-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const event = {
        user_id: document.getElementById("post-user").value.trim(),
        item_id: document.getElementById("post-item").value.trim(),
        event_type: document.getElementById("post-type").value.trim(),
      };
      const r = await api("/v1/events", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ events: [event] }),
      });
      const body = await r.json();
      document.getElementById("post-result").textContent =
        `accepted ${body.accepted}, duplicates ${body.duplicates}`;
    });
    follow(async (event) => {
      const events = document.getElementById("events");
      const li = el("li", { "data-seq": event.seq });
      li.append(el("span", { class: `ev ev-${event.event_type}` }, event.event_type), " ");
      li.append(el("a", { href: `/ui/users/${encodeURIComponent(event.user_id)}` }, event.user_id), " → ");
      li.append(el("a", { href: `/ui/items/${encodeURIComponent(event.item_id)}` }, event.item_id));
      events.prepend(li);
      while (events.children.length > 200) events.lastChild.remove();
      if (watched() && event.user_id === watched()) await showRecs(list, watched());
    });
  },
  async runs() {
    const part = document.getElementById("part");
    part.querySelectorAll("a.sort").forEach((a) => a.addEventListener("click", (ev) => {
      ev.preventDefault();
      loadPart("/ui/part/runs?order_by=" + encodeURIComponent(a.dataset.metric));
    }));
    part.querySelectorAll("a.curves").forEach((a) => a.addEventListener("click", async (ev) => {
      ev.preventDefault();
      const r = await api("/ui/part/runs/" + encodeURIComponent(a.dataset.run));
      document.getElementById("curves").innerHTML = await r.text();
    }));
    document.getElementById("compare-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams({
        user_id: document.getElementById("cmp-user").value.trim(),
        model_a: document.getElementById("cmp-a").value.trim(),
        model_b: document.getElementById("cmp-b").value.trim(),
      });
      const dataset = document.getElementById("cmp-dataset").value.trim();
      if (dataset) q.set("dataset", dataset);
      const body = await (await api("/ui/compare?" + q)).json();
      const out = document.getElementById("compare");
      out.replaceChildren();
      for (const l of body.lists) {
        const s = el("section", { class: "compare-list" });
        s.append(el("h3", {}, `${l.model} (${l.model_dir})`), el("p", { class: "hint" }, l.strategy));
        const ol = el("ol");
        for (const item of l.items) ol.append(el("li", {}, `${item.item_id} ${item.score.toFixed(3)}`));
        s.append(ol);
        out.append(s);
      }
    });
  },
  async overview() {},
};

// server-sent events read with fetch (EventSource cannot send the API key)
async function follow(onEvent) {
  const state = document.getElementById("stream-state");
  const r = await api("/ui/events/stream", { headers: { Accept: "text/event-stream" } });
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let kind = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) kind = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (kind === "ready") {
        state.textContent = "connected: new events appear here";
        state.dataset.ready = "true";
      } else if (data) await onEvent(JSON.parse(data));
    }
  }
  state.textContent = "stream closed";
}

async function loadPart(url) {
  const part = document.getElementById("part");
  if (!url) return;
  part.setAttribute("aria-busy", "true");
  try {
    const r = await api(url);
    part.innerHTML = await r.text();
    status("");
    await hooks[document.body.dataset.page]();
  } catch (e) {
    // api() has said what went wrong in the status line
  } finally {
    part.setAttribute("aria-busy", "false");
    document.body.dataset.loaded = "true";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const key = document.getElementById("key");
  key.value = sessionStorage.getItem(KEY) || "";
  document.getElementById("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (key.value) sessionStorage.setItem(KEY, key.value);
    else sessionStorage.removeItem(KEY);
    loadPart(document.getElementById("part").dataset.part);
  });
  const part = document.getElementById("part").dataset.part;
  if (part) loadPart(part);
  else document.body.dataset.loaded = "true";
});
