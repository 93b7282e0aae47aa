// Small DOM and formatting helpers shared by every view.
//
// Elements are always built with `h()` and text nodes, never from HTML strings: run data (names,
// errors, payloads) is user-controlled and the CSP forbids inline styles anyway.

/**
 * h("button", {class: "x", onclick: fn, dataset: {step: "a"}}, "text", child…)
 * Attributes whose value is false/null/undefined are left out; `true` sets an empty attribute.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
      else if (key === "value") el.value = value;
      else if (key === "checked" || key === "disabled" || key === "selected" || key === "hidden") el[key] = Boolean(value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Set text only when it changed (keeps selection and avoids needless layout). */
export function setText(el, text) {
  const s = String(text ?? "");
  if (el.textContent !== s) el.textContent = s;
}

// --- time -------------------------------------------------------------------------------------

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const msTimeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3 });
const shortTimeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const yearFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

export function parseTime(iso) {
  if (!iso) return NaN;
  return Date.parse(iso);
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** Local time, as short as it can be while unambiguous: the date appears only when not today. */
export function formatTime(iso, { short = false, millis = false } = {}) {
  const ms = parseTime(iso);
  if (Number.isNaN(ms)) return "—";
  const d = new Date(ms);
  const now = new Date();
  if (sameDay(d, now)) return short ? shortTimeFmt.format(d) : millis ? msTimeFmt.format(d) : timeFmt.format(d);
  if (d.getFullYear() === now.getFullYear()) return dateTimeFmt.format(d);
  return yearFmt.format(d);
}

/** A <time> element: local time as text, the UTC ISO string in the title (and a spelled-out local date). */
export function timeEl(iso, opts) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const ms = parseTime(iso);
  const title = Number.isNaN(ms) ? iso : `${iso} (UTC)\n${fullFmt.format(new Date(ms))}`;
  return h("time", { datetime: iso, title }, formatTime(iso, opts));
}

/** 850 ms, 1.2 s, 3 m 04 s, 2 h 05 m, 3 d 4 h. */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  const hr = Math.floor(m / 60);
  if (hr < 24) return `${hr} h ${String(m % 60).padStart(2, "0")} m`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

// --- JSON -------------------------------------------------------------------------------------

/** Pretty JSON; `undefined` (absent) is shown as such rather than as an empty string. */
export function pretty(value) {
  if (value === undefined) return "(none)";
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

export function compact(value) {
  if (value === undefined) return "";
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

export function truncate(text, max) {
  const s = String(text);
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

// --- clipboard --------------------------------------------------------------------------------

async function writeClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      /* permission refused: try the old way */
    }
  }
  const area = h("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
  area.value = text;
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** A small "Copy" button; `getText` is called at click time so the value can change. */
export function copyButton(getText, label = "Copy") {
  const text = typeof getText === "function" ? getText : () => getText;
  const btn = h("button", {
    type: "button",
    class: "copy",
    title: label,
    "aria-label": label,
  }, "Copy");
  btn.addEventListener("click", async (event) => {
    event.stopPropagation(); // inside clickable rows and bars
    const ok = await writeClipboard(text());
    btn.textContent = ok ? "Copied" : "Failed";
    btn.classList.toggle("copied", ok);
    clearTimeout(btn._timer);
    btn._timer = setTimeout(() => {
      btn.textContent = "Copy";
      btn.classList.remove("copied");
    }, 1400);
  });
  btn.addEventListener("keydown", (event) => event.stopPropagation());
  return btn;
}

/**
 * A JSON value in a <pre>, with a copy button; values longer than `max` characters are folded
 * behind a "Show all" toggle so a 1 MB output cannot freeze the page on first paint.
 */
export function jsonBlock(value, { max = 4000, label = "value", id } = {}) {
  const full = pretty(value);
  const pre = h("pre", { class: "json", id, tabindex: "0", "aria-label": label });
  const wrap = h("div", { class: "json-wrap" }, pre);
  const tools = h("div", { class: "json-tools" }, copyButton(() => full, `Copy ${label}`));
  if (full.length > max) {
    pre.textContent = full.slice(0, max) + "\n…";
    const more = h("button", { type: "button", class: "link" }, `Show all (${full.length.toLocaleString()} characters)`);
    more.addEventListener("click", () => {
      const open = more.dataset.open === "1";
      pre.textContent = open ? full.slice(0, max) + "\n…" : full;
      more.dataset.open = open ? "0" : "1";
      more.textContent = open ? `Show all (${full.length.toLocaleString()} characters)` : "Show less";
    });
    tools.prepend(more);
  } else {
    pre.textContent = full;
  }
  wrap.prepend(tools);
  return wrap;
}

/** A long identifier cut for display, full value on hover, with a copy button. */
export function idChip(id, { length = 12, label = "Copy id" } = {}) {
  const text = String(id ?? "");
  return h("span", { class: "id-chip" },
    h("code", { title: text }, truncate(text, length + 1)),
    copyButton(() => text, label));
}

/** An error body `{type, message, traceback?}` rendered as a readable block. */
export function errorBlock(error) {
  if (error === null || error === undefined) return null;
  if (typeof error !== "object") {
    return h("div", { class: "error-block" }, h("p", { class: "error-message" }, String(error)));
  }
  const parts = [];
  parts.push(h("p", { class: "error-message" },
    error.type ? h("strong", null, String(error.type), ": ") : null,
    String(error.message ?? "")));
  if (error.step) parts.push(h("p", { class: "muted small" }, "In step ", h("code", null, String(error.step))));
  if (Array.isArray(error.traceback) && error.traceback.length) {
    const frames = error.traceback.map((frame) =>
      h("li", null,
        h("code", { class: "tb-file" }, `${frame.file ?? "?"}:${frame.line ?? "?"}`),
        " in ",
        h("code", { class: "tb-fn" }, String(frame.function ?? "?")),
        frame.code ? h("pre", { class: "tb-code" }, String(frame.code)) : null));
    parts.push(h("details", { class: "traceback", open: true },
      h("summary", null, `Traceback (${error.traceback.length} frame${error.traceback.length === 1 ? "" : "s"}, most recent call last)`),
      h("ol", null, frames),
      error.traceback_truncated ? h("p", { class: "muted small" }, `${error.traceback_truncated} more frame${error.traceback_truncated === 1 ? "" : "s"} not shown.`) : null));
  } else if (typeof error.traceback === "string" && error.traceback) {
    parts.push(h("details", { class: "traceback", open: true }, h("summary", null, "Traceback"),
      h("pre", { class: "tb-code" }, error.traceback)));
  }
  if (error.cause && typeof error.cause === "object") {
    parts.push(h("div", { class: "error-cause" }, h("p", { class: "muted small" }, "Caused by"), errorBlock(error.cause)));
  }
  const rest = { ...error };
  for (const key of ["type", "message", "traceback", "traceback_truncated", "cause", "step"]) delete rest[key];
  if (Object.keys(rest).length) parts.push(h("pre", { class: "json small" }, pretty(rest)));
  return h("div", { class: "error-block" }, parts);
}

export function badge(status) {
  const s = String(status ?? "unknown");
  const safe = s.replace(/[^a-z0-9_-]/gi, "");
  return h("span", { class: `badge status-${safe}` }, s);
}

/**
 * Debounce with `cancel`; with `maxWait` a steady stream of calls still runs `fn` at least that
 * often (a plain debounce would starve while a run emits events every few milliseconds).
 */
export function debounce(fn, ms, maxWait = Infinity) {
  let timer = null;
  let first = 0;
  const fire = (args) => {
    timer = null;
    first = 0;
    fn(...args);
  };
  const wrapped = (...args) => {
    const now = Date.now();
    if (!first) first = now;
    clearTimeout(timer);
    const wait = Math.min(ms, Math.max(0, first + maxWait - now));
    timer = setTimeout(() => fire(args), wait);
  };
  wrapped.cancel = () => {
    clearTimeout(timer);
    timer = null;
    first = 0;
  };
  return wrapped;
}

/** Announce text to screen readers through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  setTimeout(() => (region.textContent = text), 30);
}
