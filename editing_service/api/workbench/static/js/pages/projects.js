// Projects: the list, and a form to create one, with the API's validation messages beside each field.
import { api, can } from "../api.js";
import { h, table, when } from "../dom.js";

const FIELDS = ["name", "model", "dataset", "settings", "upload"];

/** The form field an API error message is about (the API names the problem, not a field id). */
export function fieldOf(message) {
  const m = message.toLowerCase();
  const loc = /^invalid request: ([a-z_]+)/.exec(m);
  if (loc && FIELDS.includes(loc[1])) return loc[1];
  if (loc && loc[1] === "project") return "dataset";
  if (m.includes("upload") || m.includes("data file") && m.includes("must end")) return "upload";
  if (m.includes("settings")) return "settings";
  if (m.includes("model")) return "model";
  if (m.includes("spec") || m.includes("dataset") || m.includes("data file")) return "dataset";
  if (m.includes("name")) return "name";
  return null;
}

export async function render(main, _params, ctx) {
  const page = await api.get("/projects?limit=500");
  if (!ctx.isCurrent()) return;
  main.append(h("h1", {}, "Projects"));
  main.append(page.items.length
    ? table([
      { label: "Name", value: (p) => h("a", { href: `#/p/${encodeURIComponent(p.id)}` }, p.name) },
      { label: "Id", value: (p) => p.id },
      { label: "Model", value: (p) => p.model || "embedded default (MiniLM)" },
      { label: "Dataset", value: (p) => p.dataset },
      { label: "Features", value: (p) => p.features },
      { label: "Created", value: (p) => when(p.created_at) },
    ], page.items, { class: "list", id: "project-list" })
    : h("p", {}, "No project yet."));
  if (can("projects:create")) main.append(createForm());
}

function field(name, label, control, help) {
  return h("div", { class: "field" },
    h("label", { for: `f-${name}` }, label), control,
    help ? h("p", { class: "help", id: `f-${name}-help` }, help) : null,
    h("p", { class: "field-error", id: `f-${name}-error`, role: "alert" }));
}

function createForm() {
  const name = h("input", { id: "f-name", name: "name", required: true, maxlength: 200,
    "aria-describedby": "f-name-error" });
  const model = h("input", { id: "f-model", name: "model", placeholder: "empty: the embedded default",
    "aria-describedby": "f-model-help f-model-error" });
  const source = h("select", { id: "f-source", name: "source" },
    h("option", { value: "shipped" }, "A shipped spec"),
    h("option", { value: "inline" }, "An inline spec (JSON)"),
    h("option", { value: "upload" }, "An uploaded data file with an inline spec"));
  const spec = h("input", { id: "f-dataset", name: "dataset", value: "biasbios_surgeon_nurse", "aria-label": "Shipped spec name",
    "aria-describedby": "f-dataset-help f-dataset-error" });
  const inline = h("textarea", { id: "f-inline", name: "inline", rows: 8, hidden: true,
    "aria-label": "Inline dataset spec (JSON)", "aria-describedby": "f-dataset-error",
    placeholder: '{"name": "my_data", "source": {...}, ...}' });
  const upload = h("input", { id: "f-upload", name: "upload", type: "file", accept: ".csv,.jsonl,.json,.parquet",
    "aria-describedby": "f-upload-error" });
  const uploadField = field("upload", "Data file", upload);
  uploadField.hidden = true;
  const settings = h("textarea", { id: "f-settings", name: "settings", rows: 4, placeholder: "{}",
    "aria-describedby": "f-settings-help f-settings-error" });
  const formError = h("p", { class: "field-error", id: "f-form-error", role: "alert" });
  source.addEventListener("change", () => {
    spec.hidden = source.value !== "shipped";
    inline.hidden = source.value === "shipped";
    uploadField.hidden = source.value !== "upload";
  });
  const form = h("form", { class: "card", id: "create-project", onsubmit: submit, novalidate: true },
    h("h2", {}, "New project"),
    field("name", "Name", name),
    field("model", "Model folder", model, "A folder under the service's allowed model roots."),
    h("div", { class: "field" }, h("label", { for: "f-source" }, "Dataset"), source),
    h("div", { class: "field" }, spec, inline,
      h("p", { class: "help", id: "f-dataset-help" }, "A shipped spec name, or a whole spec as JSON."),
      h("p", { class: "field-error", id: "f-dataset-error", role: "alert" })),
    uploadField,
    field("settings", "Settings (JSON overrides)", settings, 'For example {"sae": {"d_sae": 2048}}.'),
    formError,
    h("button", { type: "submit", class: "primary" }, "Create project"));
  return form;

  function show(fieldName, message) {
    const target = fieldName ? form.querySelector(`#f-${fieldName}-error`) : formError;
    target.textContent = message;
    const control = fieldName && form.querySelector(`#f-${fieldName}`);
    if (control) { control.setAttribute("aria-invalid", "true"); control.focus(); }
  }

  function parseJson(text, fieldName, what) {
    if (!text.trim()) return {};
    try { return JSON.parse(text); } catch (err) { show(fieldName, `${what} is not valid JSON: ${err.message}`); return null; }
  }

  async function submit(event) {
    event.preventDefault();
    form.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
    const parsedSettings = parseJson(settings.value, "settings", "Settings");
    if (parsedSettings === null) return;
    let dataset = { spec: spec.value.trim() };
    if (source.value !== "shipped") {
      const parsed = parseJson(inline.value, "dataset", "The inline spec");
      if (parsed === null) return;
      dataset = { inline: parsed };
    }
    const body = { name: name.value.trim(), model: model.value.trim() || null, dataset, settings: parsedSettings };
    try {
      let created;
      if (source.value === "upload") {
        if (!upload.files.length) { show("upload", "Choose a data file to upload."); return; }
        const data = new FormData();
        data.append("project", JSON.stringify(body));
        data.append("data", upload.files[0]);
        created = await api.upload("/projects/upload", data);
      } else {
        created = await api.post("/projects", body);
      }
      location.hash = `#/p/${encodeURIComponent(created.id)}`;
    } catch (err) {
      show(fieldOf(err.message), err.message);
    }
  }
}
