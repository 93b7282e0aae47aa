// flareflow console: sign-in, routing and the page frame. The views live in their own modules.
//
// Routes (hash based, so any static host can serve the single page):
//   #/runs[?workflow=&status=&id=]   the runs list (default)
//   #/runs/{id}                      one run
//   #/workflows                      the declared workflows

import { api, adoptTokenFromHash, getToken, setToken, clearToken, onUnauthorized, errorText, ApiError,
  restoreTokenBeforeLink } from "./api.js";
import { h, setChildren } from "./dom.js";
import { mountRuns } from "./runs.js";
import { mountRun } from "./run.js";
import { mountWorkflows } from "./workflows.js";

const main = document.getElementById("main");
const loginView = document.getElementById("login-view");
const loginForm = document.getElementById("login");
const tokenInput = document.getElementById("token");
const loginError = document.getElementById("login-error");
const loginSubmit = document.getElementById("login-submit");
const signOut = document.getElementById("sign-out");
const versionEl = document.getElementById("version");
const nav = document.getElementById("nav");

let current = null; // {destroy, seqs?, state?} of the mounted view
let workflowCache = null;

// Tests and power users read the open run's events and state from here.
window.flareflowConsole = {
  seqs: () => (current && current.seqs ? current.seqs() : []),
  state: () => (current && current.state ? current.state() : undefined),
};

/** The workflow list, fetched once per sign-in (filters and the workflows view share it). */
function workflows() {
  if (!workflowCache) {
    workflowCache = api("/workflows").then((data) => (data && Array.isArray(data.workflows) ? data.workflows : []));
    workflowCache.catch(() => (workflowCache = null));
  }
  return workflowCache;
}

function unmount() {
  if (current) {
    const view = current;
    current = null;
    if (typeof view === "function") view();
    else if (view.destroy) view.destroy();
  }
}

function parseRoute() {
  const raw = (location.hash || "").replace(/^#/, "");
  const [path, q = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean);
  const params = new URLSearchParams(q);
  if (parts[0] === "workflows") return { name: "workflows", params };
  if (parts[0] === "runs" && parts[1]) {
    let id = parts[1];
    try {
      id = decodeURIComponent(id);
    } catch {
      /* malformed escapes (#/runs/%E0): shown as "Not a run id" below */
    }
    return { name: "run", id, params };
  }
  return { name: "runs", params };
}

function setNav(name) {
  for (const link of nav.querySelectorAll("a")) {
    const active = link.dataset.route === (name === "run" ? "runs" : name);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  if (!getToken()) {
    showLogin("");
    return;
  }
  hideLogin();
  const r = parseRoute();
  unmount();
  setNav(r.name);
  main.replaceChildren();
  main.className = `view view-${r.name}`;
  if (r.name === "run") {
    if (!/^[0-9a-f]{8,64}$/.test(r.id)) {
      setChildren(main, h("div", { class: "card empty" }, h("h1", null, "Not a run id"),
        h("p", null, "Run ids are 8 to 64 hexadecimal characters."), h("p", null, h("a", { href: "#/runs" }, "Back to the runs"))));
      return;
    }
    document.title = "Run — flareflow";
    current = mountRun(main, r.id);
  } else if (r.name === "workflows") {
    document.title = "Workflows — flareflow";
    current = { destroy: mountWorkflows(main, { workflows, reloadWorkflows: () => (workflowCache = null) }) };
  } else {
    document.title = "Runs — flareflow";
    current = { destroy: mountRuns(main, r.params, { workflows }) };
  }
  // Move focus to the new view's heading for keyboard and screen-reader users, except on the first load.
  if (route.started) {
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }
  route.started = true;
}

function showLogin(message) {
  unmount();
  main.replaceChildren();
  document.body.classList.add("signed-out");
  loginView.hidden = false;
  loginError.textContent = message;
  loginError.hidden = !message;
  document.title = "Sign in — flareflow";
  tokenInput.focus();
}

function hideLogin() {
  document.body.classList.remove("signed-out");
  loginView.hidden = true;
}

loginForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = tokenInput.value.trim();
  if (!token) {
    loginError.textContent = "Paste the token flareflow printed when it started.";
    loginError.hidden = false;
    tokenInput.focus();
    return;
  }
  loginSubmit.disabled = true;
  loginSubmit.textContent = "Signing in…";
  try {
    // Check the token before keeping it: an authenticated call that is cheap everywhere.
    const data = await api("/workflows", { token, quiet401: true });
    setToken(token);
    workflowCache = Promise.resolve(data && Array.isArray(data.workflows) ? data.workflows : []);
    tokenInput.value = "";
    loginError.hidden = true;
    route.started = false;
    route();
  } catch (err) {
    loginError.textContent = err instanceof ApiError && err.status === 401 ? "That token was refused by the server." : errorText(err);
    loginError.hidden = false;
    tokenInput.select();
  } finally {
    loginSubmit.disabled = false;
    loginSubmit.textContent = "Sign in";
  }
});

signOut.addEventListener("click", () => {
  clearToken();
  workflowCache = null;
  showLogin("You are signed out.");
});

onUnauthorized(() => {
  if (restoreTokenBeforeLink()) {
    // the link carried a refused token: keep working with the one that was signed in
    workflowCache = null;
    route.started = false;
    route();
    return;
  }
  clearToken();
  workflowCache = null;
  showLogin("That token was refused by the server. Sign in again.");
});

window.addEventListener("hashchange", () => {
  if (adoptTokenFromHash()) workflowCache = null;
  // In-page anchors (the "Skip to content" link's #main) are not routes: let the browser jump.
  if (location.hash && !location.hash.startsWith("#/")) return;
  route();
});

// The version in the header comes from the public health check, which also tells early on
// whether the server answers at all.
api("/health", { token: null }).then((data) => {
  if (data && data.version) versionEl.textContent = `v${data.version}`;
}).catch(() => {
  versionEl.textContent = "server unreachable";
  versionEl.classList.add("bad");
});

adoptTokenFromHash();
route();
