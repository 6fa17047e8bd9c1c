// Sign in with a bearer token: checked against the API before it is kept (in this tab only).
import { api, session } from "../api.js";
import { h } from "../dom.js";
import { loadPrincipal, signedIn } from "../app.js";

export function render(main) {
  const error = h("p", { id: "token-error", class: "field-error", role: "alert" });
  const token = h("input", { id: "token", name: "token", type: "password", autocomplete: "current-password",
    required: true, "aria-describedby": "token-help token-error" });
  const reviewer = h("input", { id: "reviewer", name: "reviewer", type: "text", autocomplete: "name",
    value: session.reviewer, "aria-describedby": "reviewer-help" });
  const form = h("form", { class: "card narrow", onsubmit: submit },
    h("h1", {}, "Sign in"),
    h("label", { for: "token" }, "API token"), token,
    h("p", { id: "token-help", class: "help" }, "Kept in this browser tab only and sent in the Authorization header."),
    error,
    h("label", { for: "reviewer" }, "Your name (recorded with every flag)"), reviewer,
    h("p", { id: "reviewer-help", class: "help" }, "Defaults to the token's principal."),
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  main.append(form);
  token.focus();

  async function submit(event) {
    event.preventDefault();
    error.textContent = "";
    session.token = token.value.trim();
    try {
      await api.get("/projects?limit=1");
      await loadPrincipal();
    } catch (err) {
      session.token = null;
      error.textContent = err.status === 401 ? "This token is not valid." : err.message;
      return;
    }
    session.reviewer = reviewer.value.trim() || (session.me && session.me.name) || "";
    signedIn();
    location.hash = "#/projects";
  }
}
