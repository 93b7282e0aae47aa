// The HTTP side of the console: the token, authenticated JSON calls and error sentences.
//
// Every data call goes through `api()`, so a 401 anywhere lands in one place (the login screen)
// and every failure reaches the views as an `ApiError` whose message is already a sentence a
// person can read; views never have to look at status codes to explain what happened.

const TOKEN_KEY = "flareflow.token";

// localStorage can throw (privacy modes, storage disabled); the console still works for the tab's
// lifetime with the token held in memory.
let memoryToken = null;

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || memoryToken;
  } catch {
    return memoryToken;
  }
}

export function setToken(token) {
  memoryToken = token;
  try {
    localStorage.setItem(TOKEN_KEY, token);
  } catch {
    /* memory only */
  }
}

export function clearToken() {
  memoryToken = null;
  try {
    localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* nothing stored */
  }
}

/**
 * Take a token out of the URL fragment (`#token=…`, `#/runs?token=…&x=1`), store it and remove it
 * from the address bar so it does not linger in history, bookmarks or screenshots.
 */
export function adoptTokenFromHash() {
  const hash = location.hash || "";
  const match = /[#?&]token=([^&]*)/.exec(hash);
  if (!match) return false;
  let token;
  try {
    token = decodeURIComponent(match[1].replace(/\+/g, " "));
  } catch {
    token = match[1];
  }
  if (token) {
    // A link's token replaces the one kept here only once the server accepts it: until then the
    // old one is remembered, so a stale or mistyped link cannot sign a working session out.
    const kept = getToken();
    linkReplaced = kept && kept !== token ? kept : null;
    setToken(token);
  }
  // Rebuild the fragment without the token parameter, keeping any route and other parameters.
  let [route, query = ""] = hash.replace(/^#/, "").split("?");
  if (route.startsWith("token=")) {
    query = route;
    route = "";
  }
  const rest = query.split("&").filter((part) => part && !part.startsWith("token="));
  let cleaned = route && route.startsWith("/") ? route : "/runs";
  if (rest.length) cleaned += "?" + rest.join("&");
  history.replaceState(history.state, "", location.pathname + location.search + "#" + cleaned);
  return Boolean(token);
}

/** An API failure; `message` is a sentence to show as is. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = "", field = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** "answer rejected: x" → "Answer rejected: x." — server messages are lower-case fragments. */
export function sentence(text) {
  const s = String(text ?? "").trim();
  if (!s) return "";
  const first = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?…)]$/.test(first) ? first : first + ".";
}

/** The sentence for anything a promise may reject with (ApiError, TypeError, …). */
export function errorText(err) {
  if (err instanceof ApiError) return err.message;
  if (err && err.name === "AbortError") return "The request was cancelled.";
  return sentence(err && err.message ? err.message : String(err));
}

const listeners = new Set();

/** Called with the ApiError whenever the server refuses the token (HTTP 401). */
let linkReplaced = null;

/** After a 401: bring back the token a refused link replaced. True when there was one. */
export function restoreTokenBeforeLink() {
  const kept = linkReplaced;
  linkReplaced = null;
  if (!kept) return false;
  setToken(kept);
  return true;
}

/** The server accepted the current token: a link's token is now the one to keep. */
export function tokenAccepted() {
  linkReplaced = null;
}

export function onUnauthorized(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function unauthorized(err) {
  for (const fn of listeners) fn(err);
}

/**
 * One JSON call. `body` is JSON-encoded; resolves to the decoded response (null for an empty one).
 * Rejects with an ApiError: status 0 for a network failure, else the server's error sentence.
 */
export async function api(path, { method = "GET", body, signal, token = getToken(), quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
      credentials: "omit",
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    const why = err && err.message ? err.message : "network error";
    throw new ApiError(`The server did not answer (${why}).`, { status: 0, code: "network" });
  }
  const text = await response.text().catch(() => "");
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined; // not JSON: a proxy page, an HTML error
    }
  }
  if (response.ok) {
    if (token && token === getToken()) tokenAccepted();
    if (data === undefined) {
      throw new ApiError(`The server answered ${response.status} with something that is not JSON.`, {
        status: response.status,
        code: "bad_response",
      });
    }
    return data;
  }
  const detail = data && data.error ? data.error : null;
  let message;
  if (detail && detail.message) {
    message = sentence(detail.message);
  } else if (response.status === 401) {
    message = "That token was refused by the server.";
  } else {
    const reason = response.statusText ? ` ${response.statusText}` : "";
    message = `The server answered ${response.status}${reason}.`;
  }
  const err = new ApiError(message, {
    status: response.status,
    code: detail ? detail.code : "",
    field: detail ? detail.field : null,
  });
  if (response.status === 401 && !quiet401) unauthorized(err);
  throw err;
}

/** Query string from an object, skipping empty values. */
export function query(params) {
  const parts = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(String(value)));
  }
  return parts.length ? "?" + parts.join("&") : "";
}

/** Path segment for a run id (ids are hex, but never trust a value pasted into a URL). */
export function runPath(id, suffix = "") {
  return "/runs/" + encodeURIComponent(id) + suffix;
}
