// A feature card: what a reviewer needs to judge one feature, and the flag controls.
import { api, enc, q } from "../api.js";
import { fmt, h, table, when } from "../dom.js";
import { histogram } from "./charts.js";
import { flagBadge, flagForm } from "./flagform.js";
import { shadedTokens } from "./tokens.js";

const featureHref = (projectId, id) => `#/p/${enc(projectId)}/f/${id.split("/").map(enc).join("/")}`;

/** The card of `feature` (GET .../features/{site}/{feature}); `onFlag(state)` after a flag change. */
export function cardView(projectId, feature, { onFlag = () => {}, compact = false, history = true } = {}) {
  const card = feature.card;
  const root = h("article", { class: "feature-card", "aria-labelledby": `card-title-${feature.feature}`,
    dataset: { featureId: feature.id } });
  root.append(h("header", {},
    h("h2", { id: `card-title-${feature.feature}` }, feature.label || "(no label)"),
    h("p", { class: "meta" },
      h("a", { href: featureHref(projectId, feature.id) }, feature.id), " · score ", fmt(feature.score, 4),
      " · rank ", String(feature.rank), card && card.pushes ? ` · pushes toward ${card.pushes}` : "",
      " · ", flagBadge(feature.flag),
      feature.suggestions.map((s) => h("span", { class: "badge suggestion" }, `suggested: ${s}`)))));
  root.append(flagForm(projectId, feature, onFlag));
  if (!card) {
    root.append(h("p", {}, "This feature has no card (only the strongest features of each site get one)."));
    return root;
  }
  root.append(h("section", { class: "examples" },
    h("h3", {}, `Top-activating examples (${card.split} split)`),
    card.top_examples.map((ex) => h("div", { class: "example" },
      h("p", { class: "example-meta" }, `example ${ex.example} · max ${fmt(ex.max_value)}`,
        ex.label ? ` · class ${ex.label}` : "",
        ex.groups ? Object.entries(ex.groups).map(([k, v]) => ` · ${k} ${v}`).join("") : ""),
      shadedTokens(ex.tokens, ex.values, { scale: card.max_activation, peak: ex.max_value_token_index })))));
  if (compact) return root;
  root.append(h("div", { class: "grid" },
    h("section", {}, h("h3", {}, "Activation"),
      h("p", {}, `fires on ${fmt(100 * card.frac_nonzero, 1)}% of ${card.n_tokens} tokens; max ${fmt(card.max_activation)}`),
      histogram(card.activation_histogram)),
    h("section", {}, h("h3", {}, "Top tokens"),
      table([{ label: "Token", value: (t) => t.token }, { label: "Share", value: (t) => t.share },
        { label: "Count", value: (t) => t.count }], card.top_tokens)),
    h("section", {}, h("h3", {}, "Mean activation per class"),
      table([{ label: "Class", value: (r) => r[0] }, { label: "Mean", value: (r) => r[1].mean },
        { label: "Active", value: (r) => r[1].frac_active }, { label: "n", value: (r) => r[1].n }],
      Object.entries(card.by_class))),
    Object.entries(card.by_group).map(([attribute, g]) => h("section", {},
      h("h3", {}, `Per ${attribute} group`),
      table([{ label: "Group", value: (r) => r[0] }, { label: "Mean", value: (r) => r[1] },
        { label: "n", value: (r) => g.n[r[0]] }], Object.entries(g.mean)),
      h("p", {}, `AUROC (${g.positive_group} vs rest) ${fmt(g.auroc)}; within class: `,
        Object.entries(g.auroc_by_class || {}).map(([c, a]) => `${c} ${fmt(a)}`).join(", ")))),
    card.class_effects ? h("section", {}, h("h3", {}, "Effect on each class logit"),
      table([{ label: "Class", value: (r) => r[0] }, { label: "Effect", value: (r) => r[1] }],
        Object.entries(card.class_effects))) : null,
    h("section", {}, h("h3", {}, "Neighbours (decoder cosine)"),
      h("ul", {}, card.neighbours.map((n) => h("li", {},
        n.in_cards ? h("a", { href: featureHref(projectId, n.id) }, n.id) : n.id, ` · ${fmt(n.cosine)}`)))),
    card.suggestions.length ? h("section", { class: "evidence" }, h("h3", {}, "Why it is suggested"),
      card.suggestions.map((sg) => h("div", {},
        h("p", {}, `${sg.kind} rule, score ${fmt(sg.score)}`),
        h("dl", {}, Object.entries(sg.evidence || {}).flatMap(([k, v]) => [h("dt", {}, k),
          h("dd", {}, typeof v === "object" ? JSON.stringify(v) : fmt(v))]))))) : null));
  if (history) root.append(historyView(projectId, feature));
  return root;
}

function historyView(projectId, feature) {
  const section = h("section", { class: "history" }, h("h3", {}, "Flag history"));
  api.get(`/projects/${enc(projectId)}/audit${q({ site: feature.site, feature: feature.feature })}`).then((log) => {
    section.append(log.items.length ? table([
      { label: "When", value: (e) => when(e.at) }, { label: "Who", value: (e) => `${e.reviewer || "–"} (${e.principal})` },
      { label: "What", value: (e) => e.action === "clear" ? `cleared (was ${e.previous_state})` : e.state },
      { label: "Why", value: (e) => e.rationale }, { label: "Source", value: (e) => e.source },
    ], log.items) : h("p", {}, "Never flagged."));
  }).catch((err) => section.append(h("p", { class: "error" }, err.message)));
  return section;
}

export async function loadFeature(projectId, site, feature) {
  return api.get(`/projects/${enc(projectId)}/features/${enc(site)}/${feature}`);
}
