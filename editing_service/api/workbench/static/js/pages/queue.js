// The review queue: suggested features first, then the strongest unflagged ones, one after another,
// driven from the keyboard; and "apply all suggestions of a kind" with a confirmation.
import { api, can, enc, q, session } from "../api.js";
import { clear, confirmDialog, h, toast } from "../dom.js";
import { cardView, loadFeature } from "../widgets/cardview.js";
import { setFlag } from "../widgets/flagform.js";

const KINDS = ["lexicon", "protected_attribute"];
export const SHORTCUTS = [
  ["j / →", "next"], ["k / ←", "previous"], ["s", "flag spurious"], ["t", "flag task-relevant"],
  ["x", "skip"], ["r", "write the rationale (Esc leaves the field)"],
];

async function unflagged(base, params) {
  return (await api.get(`${base}/features${q({ flag: "none", limit: 1000, ...params })}`)).items;
}

export async function render(main, [projectId], ctx) {
  const base = `/projects/${enc(projectId)}`;
  const [suggested, ranked] = await Promise.all([
    Promise.all(KINDS.map((kind) => unflagged(base, { suggestion: kind }))).then((lists) => lists.flat()),
    unflagged(base, { sort: "rank", limit: 200 }),
  ]);
  if (!ctx.isCurrent()) return;
  const seen = new Set();
  const items = [...suggested, ...ranked].filter((f) => !seen.has(f.id) && seen.add(f.id));
  const done = new Set();
  let index = 0;
  const counter = h("p", { id: "remaining", "aria-live": "polite" });
  const slot = h("div", { id: "queue-card" });
  main.append(
    h("h1", {}, "Review queue"),
    h("p", {}, "Suggested features first, then the strongest unflagged features."),
    applyBar(),
    h("details", { class: "shortcuts", open: true }, h("summary", {}, "Keyboard shortcuts"),
      h("dl", {}, SHORTCUTS.flatMap(([key, what]) => [h("dt", {}, h("kbd", {}, key)), h("dd", {}, what)]))),
    counter,
    slot);
  await show();

  const onKey = async (event) => {
    if (!ctx.isCurrent()) { document.removeEventListener("keydown", onKey); return; }
    if (event.ctrlKey || event.metaKey || event.altKey || document.querySelector("dialog[open]")) return;
    const typing = ["TEXTAREA", "INPUT", "SELECT"].includes(event.target.tagName);
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const key = event.key;
    if (key === "j" || key === "ArrowRight" || key === "x") { event.preventDefault(); move(1); }
    else if (key === "k" || key === "ArrowLeft") { event.preventDefault(); move(-1); }
    else if (key === "r" && rationale()) { event.preventDefault(); rationale().focus(); }
    else if ((key === "s" || key === "t") && can("flags:write", projectId)) {
      event.preventDefault();
      await flagCurrent(key === "s" ? "spurious" : "task_relevant");
    }
  };
  document.addEventListener("keydown", onKey);

  const rationale = () => slot.querySelector("textarea.rationale");

  function left() { return items.filter((f) => !done.has(f.id)).length; }

  async function show() {
    counter.textContent = `${left()} of ${items.length} left to review · item ${Math.min(index + 1, items.length)}`;
    clear(slot);
    if (!items.length) { slot.append(h("p", {}, "Nothing left to review.")); return; }
    const item = items[index];
    const record = await loadFeature(projectId, item.site, item.feature);
    if (!ctx.isCurrent()) return;
    clear(slot).append(cardView(projectId, record, {
      compact: true, history: false,
      onFlag: (state) => { if (state) done.add(item.id); else done.delete(item.id); show(); },
    }));
  }

  function move(step) {
    index = Math.max(0, Math.min(items.length - 1, index + step));
    show();
  }

  async function flagCurrent(state) {
    const item = items[index];
    if (!item) return;
    const field = rationale();
    const why = field ? field.value.trim() : "";
    if (!why) { toast("Write a rationale first (press r)."); if (field) field.focus(); return; }
    if (!session.reviewer) { toast("Set your name as the reviewer on the card first."); return; }
    try {
      await setFlag(projectId, item.site, item.feature, state, why);
    } catch (err) { toast(err.message); return; }
    done.add(item.id);
    toast(`${item.id} flagged ${state.replace("_", "-")}`);
    if (index < items.length - 1) index += 1;
    await show();
  }

  function applyBar() {
    if (!can("flags:write", projectId)) return h("div");
    return h("div", { class: "row apply" }, KINDS.map((kind) => h("button", { type: "button", id: `apply-${kind}`,
      onclick: () => applyAll(kind) }, `Apply all ${kind.replace("_", " ")} suggestions`)));
  }

  async function applyAll(kind) {
    const pending = (await api.get(`${base}/features${q({ suggestion: kind, limit: 1000 })}`)).items
      .filter((f) => f.flag === null); // the API leaves flagged features alone
    if (!pending.length) { toast(`No ${kind.replace("_", " ")} suggestion left to apply.`); return; }
    if (!session.reviewer) { toast("Set your name as the reviewer on the card first."); return; }
    const ok = await confirmDialog(`Flag ${pending.length} feature${pending.length > 1 ? "s" : ""} suggested by the `
      + `${kind.replace("_", " ")} rule as spurious?`, `Flag ${pending.length} spurious`);
    if (!ok) return;
    try {
      const changed = await api.post(`${base}/suggestions/apply`, { kind, reviewer: session.reviewer });
      changed.items.forEach((f) => done.add(f.id));
      toast(`${changed.items.length} features flagged spurious.`);
      await show();
    } catch (err) { toast(err.message); }
  }
}
