// A project: its jobs with live progress, the discovery's summary and the SAE quality per site.
import { api, can, enc, followJob } from "../api.js";
import { clear, fmt, h, table, when } from "../dom.js";

const ACTIVE = ["queued", "running"];

export function jobProgress(job) {
  return h("div", { class: "job", dataset: { jobId: job.id, status: job.status } },
    h("span", { class: `status ${job.status}` }, job.status),
    " ", h("span", { class: "step" }, job.step || ""),
    " ", h("progress", { max: 1, value: job.progress, "aria-label": `${job.kind} job progress` }),
    " ", h("span", { class: "fraction" }, `${Math.round(100 * job.progress)}%`),
    job.error ? h("p", { class: "error" }, job.error) : null);
}

export async function render(main, [projectId], ctx) {
  const base = `/projects/${enc(projectId)}`;
  const project = await api.get(base);
  if (!ctx.isCurrent()) return;
  const jobsBox = h("section", { id: "jobs" });
  const summaryBox = h("section", { id: "discovery" });
  main.append(
    h("h1", {}, project.name),
    h("dl", { class: "facts" },
      h("dt", {}, "Id"), h("dd", {}, project.id),
      h("dt", {}, "Model"), h("dd", {}, project.model || "embedded default (MiniLM)"),
      h("dt", {}, "Dataset"), h("dd", {}, project.dataset),
      h("dt", {}, "Created"), h("dd", {}, when(project.created_at)),
      h("dt", {}, "Settings"), h("dd", {}, h("code", {}, JSON.stringify(project.settings)))),
    jobsBox, summaryBox);
  await showJobs();

  async function showJobs() {
    const jobs = (await api.get(`${base}/jobs`)).items;
    if (!ctx.isCurrent()) return;
    clear(jobsBox).append(h("h2", {}, "Jobs"));
    const running = jobs.find((j) => ACTIVE.includes(j.status));
    if (can("jobs:discover", projectId) && !running) {
      jobsBox.append(h("button", { type: "button", class: "primary", id: "discover", onclick: discover },
        jobs.some((j) => j.kind === "discover") ? "Run discovery again" : "Run discovery"));
    }
    jobsBox.append(jobs.length ? table([
      { label: "Job", value: (j) => j.id }, { label: "Kind", value: (j) => j.kind },
      { label: "Progress", value: (j) => jobProgress(j) }, { label: "Created", value: (j) => when(j.created_at) },
      { label: "Finished", value: (j) => when(j.finished_at) },
    ], jobs, { class: "list" }) : h("p", {}, "No job yet: run the discovery to find the circuit."));
    if (running) follow(running);
    else await showDiscovery();
  }

  async function follow(job) {
    const done = await followJob(job.id, (j) => {
      const row = jobsBox.querySelector(`[data-job-id="${CSS.escape(j.id)}"]`);
      if (row) row.replaceWith(jobProgress(j));
    }, { isStale: () => !ctx.isCurrent() });
    if (ctx.isCurrent() && done) await showJobs();
  }

  async function discover() {
    try {
      await api.post(`${base}/jobs`, { kind: "discover" });
    } catch (err) {
      jobsBox.append(h("p", { class: "error", role: "alert" }, err.message));
      return;
    }
    await showJobs();
  }

  async function showDiscovery() {
    clear(summaryBox);
    let found;
    try {
      found = await api.get(`${base}/discovery`);
    } catch (err) {
      if (err.status === 409) return;
      throw err;
    }
    if (!ctx.isCurrent()) return;
    summaryBox.append(
      h("h2", {}, "Discovery"),
      h("p", {}, `${Object.values(found.circuit_per_site).reduce((a, b) => a + b, 0)} circuit features over `,
        `${found.sites.length} sites, ${found.cards} with cards (measured on the ${found.cards_split} split)`,
        found.seconds !== null ? `, in ${fmt(found.seconds, 1)} s.` : "."),
      h("p", {}, "Suggestions: ", Object.entries(found.suggestions).map(([k, n]) => `${n} by the ${k} rule`).join(", ") || "none"),
      h("h3", {}, "SAE quality per site"),
      table([
        { label: "Site", value: (s) => s },
        { label: "Circuit features", value: (s) => found.circuit_per_site[s] || 0 },
        { label: "Error node score", value: (s) => found.error_scores[s] },
        { label: "FVU (validate)", value: (s) => quality(s, "validate", "fvu") },
        { label: "L0 (validate)", value: (s) => quality(s, "validate", "l0") },
        { label: "Dead fraction", value: (s) => quality(s, "train", "dead_fraction") },
        { label: "FVU (train)", value: (s) => quality(s, "train", "fvu") },
      ], found.sites, { class: "list", id: "sae-quality" }),
      h("p", {}, h("a", { href: `#/p/${enc(projectId)}/circuit` }, "Open the circuit"), " · ",
        h("a", { href: `#/p/${enc(projectId)}/queue` }, "Start reviewing")));

    function quality(site, split, key) {
      const entry = found.sae_quality[site];
      return entry && entry[split] ? entry[split][key] : null;
    }
  }
}
