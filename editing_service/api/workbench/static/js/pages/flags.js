// Flags and audit: the current flags (filter by state, site, reviewer), the audit log, and exports.
import { api, download, enc } from "../api.js";
import { clear, h, table, when } from "../dom.js";
import { flagBadge } from "../widgets/flagform.js";

export async function render(main, [projectId], ctx) {
  const base = `/projects/${enc(projectId)}`;
  const [flags, audit] = await Promise.all([api.get(`${base}/flags`), api.get(`${base}/audit?limit=10000`)]);
  if (!ctx.isCurrent()) return;
  const options = (key) => [...new Set(flags.items.map((f) => f[key]))].sort();
  const select = (id, label, values) => h("label", { for: id }, label,
    h("select", { id, onchange: showFlags }, h("option", { value: "" }, "all"),
      values.map((v) => h("option", { value: v }, v))));
  const flagsBox = h("div", { id: "flag-table" });
  main.append(
    h("h1", {}, "Flags and audit"),
    h("div", { class: "row no-print" },
      h("button", { type: "button", id: "export-flags",
        onclick: () => download(`${base}/flags.yaml`, `flags-${projectId}.yaml`) }, "Export flags (YAML flags file)"),
      h("button", { type: "button", id: "export-audit",
        onclick: () => download(`${base}/audit.csv`, `audit-${projectId}.csv`) }, "Export audit log (CSV)")),
    h("p", { class: "help" }, "The flags file applies with ", h("code", {}, "editing-service edit --out RUN --flags FILE"), "."),
    h("h2", {}, `Current flags (${flags.items.length})`),
    h("div", { class: "row filters" },
      select("filter-state", "State ", ["spurious", "task_relevant"]),
      select("filter-site", "Site ", options("site")),
      select("filter-reviewer", "Reviewer ", options("reviewer"))),
    flagsBox,
    h("h2", {}, `Audit log (${audit.total} entries)`),
    table([
      { label: "When", value: (e) => when(e.at) },
      { label: "Feature", value: (e) => e.site === null ? "–"
        : h("a", { href: `#/p/${enc(projectId)}/f/${enc(e.site)}/${e.feature}` }, `${e.site}/${e.feature}`) },
      { label: "Action", value: actionText },
      { label: "Reviewer", value: (e) => e.reviewer }, { label: "Principal", value: (e) => e.principal },
      { label: "Source", value: (e) => e.source }, { label: "Why", value: (e) => e.rationale },
    ], audit.items, { class: "list", id: "audit-table" }));
  showFlags();

  function actionText(e) {
    if (e.action === "clear") return `cleared (was ${e.previous_state})`;
    if (e.action === "set") return `set ${e.state}`;
    return `${e.action.replaceAll("_", " ")}${e.subject ? ` ${e.subject}` : ""}`; // project and access events
  }

  function showFlags() {
    const state = main.querySelector("#filter-state").value;
    const site = main.querySelector("#filter-site").value;
    const reviewer = main.querySelector("#filter-reviewer").value;
    const shown = flags.items.filter((f) => (!state || f.state === state) && (!site || f.site === site)
      && (!reviewer || f.reviewer === reviewer));
    clear(flagsBox).append(table([
      { label: "Feature", value: (f) => h("a", { href: `#/p/${enc(projectId)}/f/${enc(f.site)}/${f.feature}` }, f.id) },
      { label: "State", value: (f) => flagBadge(f.state) }, { label: "Reviewer", value: (f) => f.reviewer },
      { label: "Source", value: (f) => f.source }, { label: "Why", value: (f) => f.rationale },
      { label: "Updated", value: (f) => when(f.updated_at) },
    ], shown, { class: "list" }));
  }
}
