// A feature's own page: its card.
import { h } from "../dom.js";
import { cardView, loadFeature } from "../widgets/cardview.js";

export async function render(main, [projectId, site, feature], ctx) {
  const show = async () => {
    const record = await loadFeature(projectId, site, Number(feature));
    if (!ctx.isCurrent()) return;
    main.replaceChildren(h("p", {}, h("a", { href: `#/p/${encodeURIComponent(projectId)}/circuit` }, "← circuit")),
      h("h1", {}, `Feature ${record.id}`),
      cardView(projectId, record, { onFlag: show }));
  };
  await show();
}
