// Edits: create one from the current flags, follow its job, open its report, pick two to compare.
import { api, can, enc, followJob, session } from "../api.js";
import { clear, h, table, when } from "../dom.js";
import { jobProgress } from "./project.js";

export async function render(main, [projectId], ctx) {
  const base = `/projects/${enc(projectId)}`;
  const listBox = h("div", { id: "edit-list" });
  const error = h("p", { class: "field-error", role: "alert" });
  main.append(h("h1", {}, "Edits"));
  if (can("edits:create", projectId)) {
    const reviewer = h("input", { id: "edit-reviewer", value: session.reviewer, maxlength: 200 });
    main.append(h("form", { class: "card", id: "create-edit", onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      session.reviewer = reviewer.value.trim();
      try {
        const created = await api.post(`${base}/edits`, { reviewer: session.reviewer });
        await show();
        follow(created.job);
      } catch (err) { error.textContent = err.message; }
    } },
    h("p", {}, "An edit ablates every feature currently flagged spurious, retrains the head and writes the report."),
    h("label", { for: "edit-reviewer" }, "Reviewer"), reviewer, error,
    h("button", { type: "submit", class: "primary" }, "Create an edit from the current flags")));
  }
  const compareButton = h("button", { type: "button", id: "compare", disabled: true, onclick: () => {
    const [a, b] = [...listBox.querySelectorAll("input.pick:checked")].map((c) => c.value);
    location.hash = `#/p/${enc(projectId)}/compare/${enc(a)}/${enc(b)}`;
  } }, "Compare the two selected edits");
  main.append(listBox, compareButton);
  await show();

  async function show() {
    const edits = (await api.get(`${base}/edits`)).items;
    if (!ctx.isCurrent()) return;
    clear(listBox).append(edits.length ? table([
      { label: "Compare", value: (e) => h("input", { type: "checkbox", class: "pick", value: e.id,
        "aria-label": `select edit ${e.id} to compare`, disabled: e.status !== "succeeded", onchange: picked }) },
      { label: "Edit", value: (e) => e.status === "succeeded" ? h("a", { href: `#/p/${enc(projectId)}/e/${enc(e.id)}` }, e.id) : e.id },
      { label: "Status", value: (e) => h("div", { dataset: { editJob: e.job_id } }, e.status) },
      { label: "Flags", value: (e) => e.flags.length },
      { label: "How chosen", value: (e) => e.policy },
      { label: "Created", value: (e) => when(e.created_at) },
    ], edits, { class: "list" }) : h("p", {}, "No edit yet."));
    edits.filter((e) => ["queued", "running"].includes(e.status)).forEach((e) => follow({ id: e.job_id }));
  }

  function picked() {
    compareButton.disabled = listBox.querySelectorAll("input.pick:checked").length !== 2;
  }

  async function follow(job) {
    await followJob(job.id, (j) => {
      const cell = listBox.querySelector(`[data-edit-job="${CSS.escape(j.id)}"]`);
      if (cell) cell.replaceChildren(jobProgress(j));
    }, { isStale: () => !ctx.isCurrent() });
    if (ctx.isCurrent()) await show();
  }
}
