// The playground: a text through the original and the edited model, and where the ablated features fire.
import { api, enc } from "../api.js";
import { clear, fmt, h, table } from "../dom.js";
import { shadedTokens } from "../widgets/tokens.js";

export async function render(main, [projectId], ctx) {
  const base = `/projects/${enc(projectId)}`;
  const edits = (await api.get(`${base}/edits`)).items.filter((e) => e.status === "succeeded");
  if (!ctx.isCurrent()) return;
  main.append(h("h1", {}, "Playground"));
  if (!edits.length) {
    main.append(h("p", {}, "The playground needs a finished edit: ", h("a", { href: `#/p/${enc(projectId)}/edits` }, "create one"), "."));
    return;
  }
  const edit = h("select", { id: "play-edit" }, edits.map((e) => h("option", { value: e.id }, `${e.id} (${e.flags.length} flags)`)));
  const text = h("textarea", { id: "play-text", rows: 4, maxlength: 20000, placeholder: "Type or paste a text" });
  const out = h("div", { id: "play-out", "aria-live": "polite" });
  const error = h("p", { class: "field-error", role: "alert" });
  main.append(h("form", { class: "card", id: "play-form", onsubmit: run },
    h("label", { for: "play-edit" }, "Edit"), edit,
    h("label", { for: "play-text" }, "Text"), text, error,
    h("button", { type: "submit", class: "primary" }, "Classify")), out);

  async function run(event) {
    event.preventDefault();
    error.textContent = "";
    if (!text.value.trim()) { error.textContent = "Type a text first."; return; }
    let result;
    try {
      result = await api.post(`${base}/edits/${enc(edit.value)}/explain`, { text: text.value });
    } catch (err) { error.textContent = err.message; return; }
    const fired = result.features.filter((f) => f.values.some((v) => v > 0));
    const scale = Math.max(1e-9, ...fired.flatMap((f) => f.values));
    clear(out).append(
      h("h2", {}, "Predictions"),
      table([
        { label: "Model", value: (r) => r[0] },
        { label: "Prediction", value: (r) => h("strong", { class: "prediction" }, r[1].label) },
        ...result.classes.map((c, i) => ({ label: `P(${c})`, value: (r) => fmt(r[1].probabilities[i], 4) })),
      ], [["original", result.original], ["edited", result.edited]], { class: "list", id: "predictions" }),
      h("h2", {}, `Ablated features that fire (${fired.length} of ${result.features.length})`),
      fired.length ? h("div", { id: "fired" }, fired.map((f) => h("div", { class: "example" },
        h("p", { class: "example-meta" },
          h("a", { href: `#/p/${enc(projectId)}/f/${enc(f.site)}/${f.feature}` }, f.id), ` · ${f.label || ""} · max ${fmt(Math.max(...f.values))}`),
        shadedTokens(result.tokens, f.values, { scale }))))
        : h("p", {}, "None of the edit's ablated features fires on this text."));
  }
}
