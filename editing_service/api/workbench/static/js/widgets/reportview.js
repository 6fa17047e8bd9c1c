// An edit's report (GET .../report): the rows, the chart, the cells with intervals, the findings.
import { fmt, h, table } from "../dom.js";
import { metricBars } from "./charts.js";

export const METRICS = [
  { key: "accuracy", label: "Accuracy" },
  { key: "group_balanced_accuracy", label: "Group-balanced accuracy" },
  { key: "worst_group_accuracy", label: "Worst-group accuracy" },
  { key: "protected_attribute_accuracy", label: "Protected-attribute accuracy" },
];

const interval = (row, key) => {
  const ci = row.intervals && row.intervals[key];
  return ci ? `${fmt(row[key])} [${fmt(ci[0], 2)}, ${fmt(ci[1], 2)}]` : fmt(row[key]);
};

export function rowsTable(report, attrs = {}) {
  return table([
    { label: "Row", value: (r) => r.name },
    ...METRICS.map((m) => ({ label: m.label, value: (r) => interval(r, m.key) })),
    { label: "Worst group", value: (r) => r.worst_group ? `${r.worst_group.label} / ${r.worst_group.group}` : "–" },
    { label: "n", value: (r) => r.n },
  ], report.rows, { class: "list rows", ...attrs });
}

export function reportView(report) {
  const findings = Object.entries((report.comparison && report.comparison.versus) || {});
  return h("article", { class: "report" },
    h("h2", {}, report.title),
    h("p", {}, `Evaluated on ${report.dataset.evaluated_on || (report.dataset.subsets || {}).evaluate || "–"}; `,
      `protected attribute ${report.attribute}; created ${report.created_at}.`),
    h("h3", {}, "Rows"), rowsTable(report),
    metricBars(report.rows, METRICS.slice(1, 3), { label: "Group-balanced and worst-group accuracy with 95% intervals" }),
    h("h3", {}, "Findings"),
    findings.length ? table([
      { label: "Versus", value: (f) => f[0] },
      ...["group_balanced_accuracy", "worst_group_accuracy"].map((key) => ({
        label: key.replaceAll("_", " "),
        value: (f) => f[1][key] ? `${f[1][key].verdict} (${fmt(f[1][key].difference, 3)})` : "–",
      })),
    ], findings, { class: "list" }) : h("p", {}, "No baseline to compare with."),
    h("h3", {}, "Accuracy per (class, group) cell"),
    report.rows.map((row) => h("section", { class: "cells" }, h("h4", {}, row.name),
      table([
        { label: "Class", value: (c) => c.label }, { label: "Group", value: (c) => c.group },
        { label: "Count", value: (c) => c.count }, { label: "Accuracy", value: (c) => c.accuracy },
        { label: "95% interval", value: (c) => c.ci ? `[${fmt(c.ci[0], 2)}, ${fmt(c.ci[1], 2)}]` : "–" },
      ], row.cells || []))),
    h("h3", {}, `Flags applied (${report.flags.length})`),
    h("p", {}, report.flag_policy && report.flag_policy.statement),
    table([
      { label: "Feature", value: (f) => `${f.site}/${f.feature}` }, { label: "Label", value: (f) => f.label },
      { label: "Who", value: (f) => f.who }, { label: "Why", value: (f) => f.why }, { label: "Source", value: (f) => f.source },
    ], report.flags, { class: "list" }),
    h("h3", {}, "Limitations"), h("ul", {}, report.limitations.map((l) => h("li", {}, l))),
    report.warnings.length ? [h("h3", {}, "Warnings"), h("ul", {}, report.warnings.map((w) => h("li", {}, w)))] : null);
}
