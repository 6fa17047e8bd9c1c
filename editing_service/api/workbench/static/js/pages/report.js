// One edit: its report, the downloads, and printing (the print stylesheet gives a clean page).
import { api, download, enc } from "../api.js";
import { h } from "../dom.js";
import { reportView } from "../widgets/reportview.js";

export async function render(main, [projectId, editId], ctx) {
  const base = `/projects/${enc(projectId)}/edits/${enc(editId)}`;
  const report = await api.get(`${base}/report`);
  if (!ctx.isCurrent()) return;
  main.append(
    h("h1", {}, `Edit ${editId}`),
    h("div", { class: "row no-print" },
      h("button", { type: "button", id: "download-edited", onclick: () => download(`${base}/model`, `${editId}-edited.tar.gz`) }, "Edited model (.tar.gz)"),
      h("button", { type: "button", onclick: () => download(`${base}/model?which=original`, `${editId}-original.tar.gz`) }, "Original model"),
      h("button", { type: "button", id: "download-card", onclick: () => download(`${base}/model_card.md`, `${editId}-model-card.md`) }, "Model card"),
      h("button", { type: "button", onclick: () => download(`${base}/report.html`, `${editId}-report.html`) }, "HTML report"),
      h("button", { type: "button", onclick: () => window.print() }, "Print")),
    reportView(report));
}
