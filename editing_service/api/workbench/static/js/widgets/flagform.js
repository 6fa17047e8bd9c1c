// Flag a feature spurious or task-relevant, or clear its flag, with a rationale and the reviewer's name.
import { api, can, enc, q, session } from "../api.js";
import { h, toast } from "../dom.js";

export async function setFlag(projectId, site, feature, state, rationale) {
  const path = `/projects/${enc(projectId)}/features/${enc(site)}/${feature}/flag`;
  if (state === null) {
    await api.del(path + q({ reviewer: session.reviewer, rationale }));
    return null;
  }
  return api.put(path, { state, rationale, reviewer: session.reviewer });
}

/** The flag controls of one feature (absent when the principal may not flag). `onChange(state)`. */
export function flagForm(projectId, feature, onChange) {
  if (!can("flags:write", projectId)) return h("p", { class: "help", id: "read-only" }, "Your role may read features but not flag them.");
  const rationale = h("textarea", { id: `rationale-${feature.feature}`, class: "rationale", rows: 2,
    maxlength: 4000, placeholder: "Why? (shown in the audit log and the report)" });
  const reviewer = h("input", { id: `reviewer-${feature.feature}`, class: "reviewer", value: session.reviewer,
    maxlength: 200, required: true });
  const error = h("p", { class: "field-error", role: "alert" });
  async function submit(state) {
    error.textContent = "";
    session.reviewer = reviewer.value.trim();
    const why = rationale.value.trim();
    if (!session.reviewer) { error.textContent = "Give your name as the reviewer."; reviewer.focus(); return; }
    if (state !== null && !why) { error.textContent = "Give a rationale."; rationale.focus(); return; }
    try {
      await setFlag(projectId, feature.site, feature.feature, state, why);
      rationale.value = "";
      toast(state ? `${feature.id} flagged ${state.replace("_", "-")}` : `${feature.id} flag cleared`);
      onChange(state);
    } catch (err) {
      error.textContent = err.message;
    }
  }
  return h("div", { class: "flag-form" },
    h("label", { for: rationale.id }, "Rationale"), rationale,
    h("label", { for: reviewer.id }, "Reviewer"), reviewer,
    h("div", { class: "row" },
      h("button", { type: "button", class: "spurious", onclick: () => submit("spurious") }, "Flag spurious"),
      h("button", { type: "button", class: "relevant", onclick: () => submit("task_relevant") }, "Flag task-relevant"),
      feature.flag ? h("button", { type: "button", onclick: () => submit(null) }, "Clear flag") : null),
    error);
}

export function flagBadge(state) {
  if (!state) return h("span", { class: "badge none" }, "unflagged");
  return h("span", { class: `badge ${state}` }, state === "task_relevant" ? "task-relevant" : state);
}
