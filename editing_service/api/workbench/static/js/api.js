// The /v1 API with the signed-in token. The token lives in this tab's sessionStorage (gone when the tab
// closes) and is sent only in the Authorization header: never in a URL, never in a cookie.

const TOKEN_KEY = "editing-service.token";
const REVIEWER_KEY = "editing-service.reviewer";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
  },
  get reviewer() { return sessionStorage.getItem(REVIEWER_KEY) || ""; },
  set reviewer(value) { sessionStorage.setItem(REVIEWER_KEY, value); },
  me: null, // GET /v1/me: {name, role, permissions, all_projects, memberships: [{project_id, permissions}]}
};

/** Whether the signed-in principal may do `permission` (a value of roles.py's Permission), on
 *  `projectId` when given. Controls it may not use are left out of the page; the API refuses them anyway. */
export function can(permission, projectId) {
  const me = session.me;
  if (!me) return true; // a service without /v1/me: the API decides
  if (me.all_projects || !projectId) return me.permissions.includes(permission);
  const membership = me.memberships.find((m) => m.project_id === projectId);
  return Boolean(membership) && membership.permissions.includes(permission);
}

async function request(method, path, { json, form, raw } = {}) {
  const headers = { Authorization: `Bearer ${session.token}` };
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  const response = await fetch(`/v1${path}`, { method, headers, body, credentials: "omit", cache: "no-store" });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
    if (response.status === 401) window.dispatchEvent(new CustomEvent("signed-out", { detail }));
    throw new ApiError(response.status, detail);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, json) => request("POST", path, { json }),
  put: (path, json) => request("PUT", path, { json }),
  del: (path) => request("DELETE", path),
  upload: (path, form) => request("POST", path, { form }),
  raw: (path) => request("GET", path, { raw: true }),
};

export const q = (params) => {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") search.set(k, v);
  const text = search.toString();
  return text ? `?${text}` : "";
};

export const enc = encodeURIComponent;

/** Fetch `path` with the token and save it under `filename` (the browser's download). */
export async function download(path, filename) {
  const response = await api.raw(path);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Poll a job until it ends, calling `onUpdate(job)` at each answer. */
export async function followJob(jobId, onUpdate, { interval = 700, isStale = () => false } = {}) {
  for (;;) {
    const job = await api.get(`/jobs/${enc(jobId)}`);
    if (isStale()) return job;
    onUpdate(job);
    if (["succeeded", "failed", "cancelled"].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, interval));
  }
}
