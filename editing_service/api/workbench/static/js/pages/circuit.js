// The circuit: circuit.json drawn with Cytoscape.js, nodes in columns by site (the decision last),
// error nodes marked, edge width by |weight|, node colour by flag and suggestion; threshold controls,
// zoom and pan, search; clicking a node opens its card beside the graph, with the head lens.
import { api, enc, q } from "../api.js";
import { clear, fmt, h, table } from "../dom.js";
import { cardView, loadFeature } from "../widgets/cardview.js";

export const MAX_EDGES = 3000; // the strongest edges drawn; the rest are counted on the page
const COLUMN = 260;
const ROW = 34;
const COLOURS = { spurious: "#c62828", task_relevant: "#2e7d32", suggested: "#ef6c00", none: "#546e7a",
  error: "#6a1b9a", metric: "#0d47a1" };

function nodeColour(n) {
  if (n.kind === "error") return COLOURS.error;
  if (n.kind === "metric") return COLOURS.metric;
  if (n.flag) return COLOURS[n.flag];
  return n.suggestions.length ? COLOURS.suggested : COLOURS.none;
}

/** Cytoscape elements with preset positions: one column per site, strongest nodes on top. */
export function elements(graph) {
  const column = new Map(graph.sites.map((s, i) => [s, i]));
  const bySite = new Map();
  for (const n of graph.nodes) {
    const key = n.kind === "metric" ? "metric" : n.site;
    if (!bySite.has(key)) bySite.set(key, []);
    bySite.get(key).push(n);
  }
  const nodes = [];
  const tallest = Math.max(1, ...[...bySite.values()].map((list) => list.length));
  for (const [site, list] of bySite) {
    list.sort((a, b) => (b.kind === "error") - (a.kind === "error") || Math.abs(b.score) - Math.abs(a.score));
    const x = (site === "metric" ? graph.sites.length : column.get(site) ?? graph.sites.length) * COLUMN;
    list.forEach((n, i) => {
      const label = n.kind === "metric" ? "decision" : n.kind === "error" ? `${n.site} error`
        : `${n.feature}${n.label ? ` ${n.label}` : ""}`;
      nodes.push({ group: "nodes", data: { id: n.id, label: label.length > 28 ? `${label.slice(0, 27)}…` : label,
        kind: n.kind, colour: nodeColour(n), size: 14 + Math.min(22, 400 * Math.abs(n.score) / graph.maxScore),
        node: n }, position: { x, y: site === "metric" ? tallest * ROW / 2 : i * ROW } });
    });
  }
  const edges = [...graph.edges].sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight)).slice(0, MAX_EDGES);
  const maxWeight = Math.max(1e-12, ...edges.map((e) => Math.abs(e.weight)));
  return nodes.concat(edges.map((e, i) => ({ group: "edges", data: {
    id: `e${i}`, source: e.source, target: e.target, weight: e.weight,
    width: 0.6 + 7 * Math.abs(e.weight) / maxWeight, colour: e.weight >= 0 ? "#1565c0" : "#c62828" } })));
}

const STYLE = [
  { selector: "node", style: { "background-color": "data(colour)", width: "data(size)", height: "data(size)",
    label: "data(label)", "font-size": 10, "text-valign": "center", "text-halign": "right", "text-margin-x": 4,
    "min-zoomed-font-size": 7, color: "#1a1a1a" } },
  { selector: "node[kind = 'error']", style: { shape: "diamond", "border-width": 2, "border-color": "#000" } },
  { selector: "node[kind = 'metric']", style: { shape: "round-rectangle", width: 40, height: 24, "font-weight": "bold" } },
  { selector: "node.match", style: { "border-width": 4, "border-color": "#ffd600" } },
  { selector: "node:selected", style: { "border-width": 4, "border-color": "#000" } },
  { selector: "edge", style: { width: "data(width)", "line-color": "data(colour)", opacity: 0.45,
    "curve-style": "straight", "target-arrow-shape": "triangle", "target-arrow-color": "data(colour)", "arrow-scale": 0.6 } },
  { selector: "edge.near", style: { opacity: 0.95 } },
];

export async function render(main, [projectId], ctx) {
  const base = `/projects/${enc(projectId)}`;
  const params = { node_threshold: "", edge_threshold: "", max_nodes: "" };
  const number = (id, label, attrs) => h("label", { for: id }, label, h("input", { id, type: "number", min: 0, ...attrs }));
  const controls = h("form", { class: "row controls", id: "circuit-controls", onsubmit: (e) => { e.preventDefault(); load(); } },
    number("node-threshold", "Node |score| ≥ ", { step: "any" }),
    number("edge-threshold", "Edge |weight| ≥ ", { step: "any" }),
    number("max-nodes", "Nodes per site ≤ ", { step: 1, min: 1 }),
    h("button", { type: "submit" }, "Apply"),
    h("label", { for: "circuit-search" }, "Search ", h("input", { id: "circuit-search", type: "search",
      placeholder: "label or id", oninput: search })),
    h("button", { type: "button", onclick: () => cy && cy.zoom({ level: cy.zoom() * 1.25, renderedPosition: centre() }) }, "Zoom in"),
    h("button", { type: "button", onclick: () => cy && cy.zoom({ level: cy.zoom() / 1.25, renderedPosition: centre() }) }, "Zoom out"),
    h("button", { type: "button", onclick: () => cy && cy.fit(undefined, 20) }, "Fit"));
  const summary = h("p", { id: "circuit-summary", "aria-live": "polite" });
  const matches = h("ul", { id: "search-results", class: "matches" });
  const canvas = h("div", { id: "graph", class: "graph", role: "img",
    "aria-label": "Circuit graph; use the search box to find a node and open its card" });
  const side = h("aside", { id: "side", class: "side", "aria-label": "Feature card and head lens" });
  main.append(h("h1", {}, "Circuit"), controls, summary, legend(), matches, h("div", { class: "circuit-layout" }, canvas, side));
  let cy = null;
  let graph = null;
  const centre = () => ({ x: canvas.clientWidth / 2, y: canvas.clientHeight / 2 });
  await load();

  async function load() {
    params.node_threshold = main.querySelector("#node-threshold").value;
    params.edge_threshold = main.querySelector("#edge-threshold").value;
    params.max_nodes = main.querySelector("#max-nodes").value;
    try {
      graph = await api.get(`${base}/circuit${q(params)}`);
    } catch (err) {
      summary.textContent = err.message;
      return;
    }
    if (!ctx.isCurrent()) return;
    graph.maxScore = Math.max(1e-12, ...graph.nodes.map((n) => Math.abs(n.score)));
    const els = elements(graph);
    const drawn = els.filter((e) => e.group === "edges").length;
    summary.textContent = `${graph.nodes.length} nodes over ${graph.sites.length} sites, ${graph.edges.length} edges`
      + (drawn < graph.edges.length ? ` (the strongest ${drawn} drawn: raise the edge threshold to see the rest)` : "")
      + `; thresholds: node ${fmt(graph.thresholds.node_threshold)}, edge ${fmt(graph.thresholds.edge_threshold)}`
      + (graph.faithfulness ? `. ${graph.faithfulness.statement}` : ".");
    if (cy) cy.destroy();
    cy = window.cytoscape({ container: canvas, elements: els, style: STYLE, layout: { name: "preset" },
      minZoom: 0.05, maxZoom: 4, textureOnViewport: true, hideEdgesOnViewport: true,
      boxSelectionEnabled: false, autoungrabify: true });
    cy.fit(undefined, 20);
    cy.on("tap", "node", (event) => open(event.target.data("node")));
    canvas.dataset.ready = "true";
    lens();
  }

  function search() {
    const text = main.querySelector("#circuit-search").value.trim().toLowerCase();
    clear(matches);
    if (!cy) return;
    cy.nodes().removeClass("match");
    if (!text) return;
    const found = cy.nodes().filter((n) => n.id().toLowerCase().includes(text)
      || (n.data("node").label || "").toLowerCase().includes(text));
    found.addClass("match");
    if (found.length) cy.animate({ center: { eles: found.first() }, zoom: Math.max(cy.zoom(), 0.8) }, { duration: 200 });
    matches.append(...found.slice(0, 20).map((n) => h("li", {}, h("button", { type: "button", class: "link",
      onclick: () => { cy.center(n); open(n.data("node")); } }, n.id(), n.data("node").label ? ` · ${n.data("node").label}` : ""))));
    if (found.length > 20) matches.append(h("li", {}, `… ${found.length - 20} more`));
  }

  async function open(node) {
    cy.elements().unselect();
    const element = cy.getElementById(node.id);
    element.select();
    cy.edges().removeClass("near");
    element.connectedEdges().addClass("near");
    if (node.kind !== "feature") {
      side.replaceChildren(h("h2", {}, node.id), h("p", {}, `score ${fmt(node.score, 4)}`), lensView());
      return;
    }
    const started = performance.now();
    let record;
    try {
      record = await loadFeature(projectId, node.site, node.feature);
    } catch (err) {
      if (err.status !== 404) throw err;
      record = null; // drawn in the graph, but outside the circuit the features table keeps
    }
    if (!ctx.isCurrent()) return;
    side.replaceChildren(record ? cardView(projectId, record, { compact: true, history: false, onFlag: () => load() })
      : h("article", { class: "feature-card" }, h("h2", {}, node.label || node.id),
        h("p", {}, `${node.id} · score ${fmt(node.score, 4)}`),
        h("p", {}, "This node is in the graph but not among the circuit's reviewed features: it has no card.")),
    lensView());
    side.dataset.openedMs = String(Math.round(performance.now() - started));
    side.dataset.feature = node.id;
  }

  function lens() { if (!side.dataset.feature) side.replaceChildren(lensView()); }

  function lensView() {
    const box = h("section", { class: "lens", id: "head-lens" }, h("h2", {}, "Head lens"));
    const lensData = graph && graph.head_lens;
    if (!lensData) return box.append(h("p", {}, "No head lens in this circuit.")), box;
    box.append(h("p", {}, `Accuracy of a probe on each site's pooled activation (${lensData.split} split).`),
      table([
        { label: "Site", value: (r) => r.site }, { label: "Probe", value: (r) => r.probe_accuracy },
        { label: "Head", value: (r) => r.head_accuracy },
        { label: lensData.attribute ? `${lensData.attribute} probe` : "Attribute", value: (r) => r.attribute_accuracy },
      ], lensData.sites));
    return box;
  }
}

function legend() {
  const items = [["spurious", "flagged spurious"], ["task_relevant", "flagged task-relevant"], ["suggested", "suggested"],
    ["none", "unflagged"], ["error", "error node (diamond)"], ["metric", "the decision"]];
  return h("ul", { class: "legend" }, items.map(([key, text]) => h("li", {},
    h("span", { class: `swatch c-${key}` }), text)));
}
