// Small SVG charts built from data with the DOM (no library): a histogram and grouped bars.
import { fmt, h, s } from "../dom.js";

/** The activation histogram of a card: {bin_edges: [n+1], counts: [n]}. */
export function histogram({ bin_edges: edges, counts }, { width = 320, height = 110, label = "Activation histogram" } = {}) {
  const max = Math.max(1, ...counts);
  const bar = width / Math.max(1, counts.length);
  return h("figure", { class: "chart" },
    s("svg", { viewBox: `0 0 ${width} ${height + 16}`, width, height: height + 16, role: "img", "aria-label": label },
      counts.map((c, i) => s("rect", {
        x: (i * bar + 1).toFixed(1), y: (height - (c / max) * height).toFixed(1),
        width: Math.max(1, bar - 2).toFixed(1), height: ((c / max) * height).toFixed(1), class: "bar",
      }, s("title", {}, `${fmt(edges[i])} to ${fmt(edges[i + 1])}: ${c}`))),
      s("text", { x: 0, y: height + 13, class: "axis" }, fmt(edges[0], 3)),
      s("text", { x: width, y: height + 13, class: "axis", "text-anchor": "end" }, fmt(edges[edges.length - 1], 3))),
    h("figcaption", {}, `${label} (nonzero activations; tallest bar ${max})`));
}

/** Bars per row for several metrics in [0, 1], with the interval as a whisker when given. */
export function metricBars(rows, metrics, { width = 560, rowHeight = 18, label = "Metrics by row" } = {}) {
  const left = 150;
  const plot = width - left - 40;
  const groupHeight = rowHeight * metrics.length + 10;
  const height = rows.length * groupHeight + 20;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label });
  rows.forEach((row, r) => {
    const top = r * groupHeight;
    svg.append(s("text", { x: 0, y: top + rowHeight, class: "axis" }, row.name));
    metrics.forEach((metric, m) => {
      const value = row[metric.key];
      if (value === null || value === undefined) return;
      const y = top + m * rowHeight + 4;
      svg.append(s("rect", { x: left, y, width: (value * plot).toFixed(1), height: rowHeight - 4, class: `bar m${m}` },
        s("title", {}, `${row.name} ${metric.label}: ${fmt(value)}`)));
      const ci = row.intervals && row.intervals[metric.key];
      if (ci) svg.append(s("line", { x1: left + ci[0] * plot, x2: left + ci[1] * plot, y1: y + (rowHeight - 4) / 2,
        y2: y + (rowHeight - 4) / 2, class: "whisker" }));
      svg.append(s("text", { x: left + value * plot + 4, y: y + rowHeight - 6, class: "value" }, fmt(value, 2)));
    });
  });
  const legend = h("ul", { class: "legend" }, metrics.map((m, i) => h("li", {}, h("span", { class: `swatch m${i}` }), m.label)));
  return h("figure", { class: "chart" }, svg, legend, h("figcaption", {}, label));
}
