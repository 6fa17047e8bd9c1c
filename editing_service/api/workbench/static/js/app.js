// The workbench's shell: sign-in gate, hash routes, the project navigation.
import { api, session } from "./api.js";
import { clear, h } from "./dom.js";
import * as signin from "./pages/signin.js";
import * as projects from "./pages/projects.js";
import * as project from "./pages/project.js";
import * as circuit from "./pages/circuit.js";
import * as card from "./pages/card.js";
import * as queue from "./pages/queue.js";
import * as flags from "./pages/flags.js";
import * as edits from "./pages/edits.js";
import * as report from "./pages/report.js";
import * as compare from "./pages/compare.js";
import * as playground from "./pages/playground.js";

const ROUTES = [
  [/^\/projects$/, projects, "Projects"],
  [/^\/p\/([^/]+)$/, project, "Project"],
  [/^\/p\/([^/]+)\/circuit$/, circuit, "Circuit"],
  [/^\/p\/([^/]+)\/f\/([^/]+)\/(\d+)$/, card, "Feature"],
  [/^\/p\/([^/]+)\/queue$/, queue, "Review queue"],
  [/^\/p\/([^/]+)\/flags$/, flags, "Flags and audit"],
  [/^\/p\/([^/]+)\/edits$/, edits, "Edits"],
  [/^\/p\/([^/]+)\/e\/([^/]+)$/, report, "Edit report"],
  [/^\/p\/([^/]+)\/compare\/([^/]+)\/([^/]+)$/, compare, "Compare edits"],
  [/^\/p\/([^/]+)\/play$/, playground, "Playground"],
];
const PROJECT_PAGES = [
  ["", "Overview"], ["/circuit", "Circuit"], ["/queue", "Review queue"], ["/flags", "Flags and audit"],
  ["/edits", "Edits"], ["/play", "Playground"],
];

const PRINCIPAL_TTL_MS = 10000; // how long GET /v1/me's answer is trusted before a page asks again
let generation = 0;

function renderNav(projectId, path) {
  const nav = clear(document.getElementById("nav"));
  if (!projectId) return;
  const base = `/p/${projectId}`;
  nav.append(h("ul", {}, PROJECT_PAGES.map(([suffix, label]) => {
    const current = path === base + suffix;
    return h("li", {}, h("a", { href: `#${base}${suffix}`, "aria-current": current ? "page" : null }, label));
  })));
}

function renderWho() {
  const who = clear(document.getElementById("who"));
  if (!session.token) return;
  const me = session.me;
  if (me) who.append(h("span", { class: "principal" }, me.name, me.role ? ` (${me.role})` : ""));
  who.append(h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"));
}

export function signOut() {
  session.token = null;
  session.me = null;
  route.principalAt = 0;
  location.hash = "#/signin";
}

/** Who the token belongs to (GET /v1/me), when the service has that route. */
export async function loadPrincipal() {
  try {
    session.me = await api.get("/me");
  } catch (err) {
    if (err.status === 401) throw err;
    session.me = null; // an older service without /v1/me: every control is shown, the API decides
  }
}

async function route() {
  const mine = ++generation;
  const path = decodeURI(location.hash.replace(/^#/, "")) || "/projects";
  const main = clear(document.getElementById("main"));
  const ctx = { isCurrent: () => mine === generation };
  if (!session.token || path === "/signin") {
    renderNav(null, path);
    renderWho();
    document.title = "Sign in · workbench";
    signin.render(main, [], ctx);
    return;
  }
  if (Date.now() - (route.principalAt || 0) > PRINCIPAL_TTL_MS) { // memberships can change: asked again
    try { await loadPrincipal(); } catch { return; }
    route.principalAt = Date.now();
  }
  renderWho();
  for (const [pattern, page, title] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    const params = match.slice(1).map(decodeURIComponent);
    renderNav(path.startsWith("/p/") ? params[0] : null, path);
    document.title = `${title} · workbench`;
    try {
      await page.render(main, params, ctx);
    } catch (err) {
      if (ctx.isCurrent()) main.append(h("p", { class: "error", role: "alert" }, err.message || String(err)));
    }
    return;
  }
  main.append(h("p", { class: "error" }, "No such page."), h("a", { href: "#/projects" }, "Projects"));
}

window.addEventListener("signed-out", () => {
  session.token = null;
  session.me = null;
  route.principalAt = 0;
  if (!document.getElementById("token")) location.hash = "#/signin"; // not while on the sign-in page
});
window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
/** After the sign-in page loaded the principal. */
export function signedIn() { route.principalAt = Date.now(); }
