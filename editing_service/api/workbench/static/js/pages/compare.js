// Two edits side by side: their rows and how the edited row differs.
import { api, enc } from "../api.js";
import { fmt, h, table } from "../dom.js";
import { METRICS, rowsTable } from "../widgets/reportview.js";

export async function render(main, [projectId, a, b], ctx) {
  const get = (id) => api.get(`/projects/${enc(projectId)}/edits/${enc(id)}/report`);
  const [ra, rb] = await Promise.all([get(a), get(b)]);
  if (!ctx.isCurrent()) return;
  const rowOf = (report, name) => report.rows.find((r) => r.name === name) || {};
  const names = [...new Set([...ra.rows, ...rb.rows].map((r) => r.name))];
  main.append(
    h("h1", {}, "Compare edits"),
    h("div", { class: "side-by-side" },
      [[a, ra], [b, rb]].map(([id, report]) => h("section", { class: "compare-col" },
        h("h2", {}, `Edit ${id}`), h("p", {}, `${report.flags.length} flags · ${report.flag_policy.statement || ""}`),
        rowsTable(report)))),
    h("h2", {}, `Differences (edit ${b} minus edit ${a})`),
    table([
      { label: "Row", value: (n) => n },
      ...METRICS.map((m) => ({ label: m.label, value: (n) => {
        const x = rowOf(ra, n)[m.key]; const y = rowOf(rb, n)[m.key];
        return typeof x === "number" && typeof y === "number" ? fmt(y - x, 3) : "–";
      } })),
    ], names, { class: "list", id: "compare-diff" }));
}
