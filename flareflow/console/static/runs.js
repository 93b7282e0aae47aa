// The runs list: filters, cursor paging and a live refresh of page 1 every two seconds.
//
// Rows are keyed by run id and updated in place, so a refresh never steals focus from a row or a
// copy button, and a status that changes only repaints its badge.

import { api, query, errorText } from "./api.js";
import { h, setChildren, setText, badge, timeEl, formatDuration, formatTime, parseTime, idChip, debounce } from "./dom.js";

export const STATUSES = ["running", "waiting", "paused", "completed", "failed", "cancelled"];
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const PAGE = 50;
const POLL_MS = 2000;

/** What a waiting run waits for, in a few words: "event approval", "answer: Ship it?", "timer until 14:05". */
export function waitingText(waits) {
  if (!Array.isArray(waits) || !waits.length) return "";
  return waits.map((w) => {
    const until = w.until ? ` until ${formatTime(w.until, { short: true })}` : "";
    if (w.kind === "sleep") return `timer${w.until ? until : ` ${w.name ?? ""}`}`;
    if (w.kind === "event") return `event ${w.event_type || w.name || ""}${until}`;
    if (w.kind === "input") return `answer: ${w.prompt || w.name || "?"}`;
    if (w.kind === "code") return `code: ${w.message || w.name || "?"}`;
    return `${w.kind ?? "wait"} ${w.name ?? ""}${until}`;
  }).join(" · ");
}

function waitingTitle(waits) {
  if (!Array.isArray(waits) || !waits.length) return "";
  return waits.map((w) => `${w.kind} “${w.name}”${w.until ? ` until ${w.until} (UTC)` : ""}`).join("\n");
}

/** Newest first, as the server orders: created_at, then id, both descending. */
function compareRuns(a, b) {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

function runDuration(run, now) {
  const start = parseTime(run.created_at);
  const end = TERMINAL.has(run.status) ? parseTime(run.updated_at) : now;
  return end - start;
}

function readFilters(params) {
  return {
    workflow: params.get("workflow") || "",
    status: STATUSES.includes(params.get("status")) ? params.get("status") : "",
    id: (params.get("id") || "").toLowerCase().replace(/[^0-9a-f]/g, ""),
  };
}

export function mountRuns(root, params, { workflows }) {
  const filters = readFilters(params);
  let runs = []; // newest first
  let cursor = null; // next_cursor of the last page loaded by "Load more" (or page 1)
  let generation = 0; // bumps on every filter change so stale answers are dropped
  let pollTimer = 0;
  let destroyed = false;
  const rowById = new Map();

  const workflowSelect = h("select", { id: "filter-workflow", "aria-label": "Filter by workflow" },
    h("option", { value: "" }, "All workflows"));
  const statusSelect = h("select", { id: "filter-status", "aria-label": "Filter by status" },
    h("option", { value: "" }, "All statuses"), STATUSES.map((s) => h("option", { value: s }, s)));
  const idInput = h("input", {
    id: "filter-id", type: "search", inputmode: "latin", autocomplete: "off", spellcheck: "false",
    placeholder: "Run id starts with…", "aria-label": "Filter by run id prefix (hex)", maxlength: "64",
  });
  const idHint = h("p", { class: "field-error inline", hidden: true, "aria-live": "polite" });
  const count = h("span", { class: "muted small", "aria-live": "polite" });
  const errorBox = h("p", { class: "banner error", hidden: true, role: "alert" });
  const tbody = h("tbody");
  const table = h("table", { id: "runs", class: "runs" },
    h("caption", { class: "sr-only" }, "Runs, newest first. Press Enter on a row to open the run."),
    h("thead", null, h("tr", null,
      h("th", { scope: "col" }, "Run"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Workflow"),
      h("th", { scope: "col" }, "Waiting for"), h("th", { scope: "col" }, "Created"),
      h("th", { scope: "col" }, "Updated"), h("th", { scope: "col", class: "num" }, "Duration"))),
    tbody);
  // The empty state is a row of the table, so #runs is always there to find (and to read).
  const empty = h("td", { colspan: "7", class: "empty" });
  const emptyRow = h("tr", { class: "empty-row", hidden: true }, empty);
  const more = h("button", { id: "more", type: "button", class: "btn", hidden: true }, "Load more");

  setChildren(root,
    h("div", { class: "view-head" },
      h("h1", null, "Runs"),
      count),
    h("form", { class: "filters", role: "search", "aria-label": "Filter runs", onsubmit: (e) => e.preventDefault() },
      h("label", { class: "filter" }, h("span", { class: "label" }, "Workflow"), workflowSelect),
      h("label", { class: "filter" }, h("span", { class: "label" }, "Status"), statusSelect),
      h("label", { class: "filter grow" }, h("span", { class: "label" }, "Run id"), idInput, idHint)),
    errorBox,
    h("div", { class: "table-wrap" }, table),
    h("div", { class: "more-row" }, more));

  statusSelect.value = filters.status;
  idInput.value = filters.id;

  workflows().then((list) => {
    if (destroyed) return;
    for (const wf of list) workflowSelect.appendChild(h("option", { value: wf.name }, wf.name));
    if (filters.workflow && !list.some((w) => w.name === filters.workflow)) {
      workflowSelect.appendChild(h("option", { value: filters.workflow }, filters.workflow));
    }
    workflowSelect.value = filters.workflow;
  }).catch(() => {
    if (filters.workflow) workflowSelect.appendChild(h("option", { value: filters.workflow }, filters.workflow));
    workflowSelect.value = filters.workflow;
  });

  // Filters live in the URL (#/runs?status=failed) so a reload or a shared link keeps them.
  const syncUrl = () => {
    const q = new URLSearchParams();
    if (filters.workflow) q.set("workflow", filters.workflow);
    if (filters.status) q.set("status", filters.status);
    if (filters.id) q.set("id", filters.id);
    const s = q.toString();
    history.replaceState(history.state, "", `${location.pathname}${location.search}#/runs${s ? "?" + s : ""}`);
  };

  const apiQuery = (extra) => query({
    workflow: filters.workflow, status: filters.status, id_prefix: filters.id, limit: PAGE, ...extra,
  });

  const showError = (err) => {
    if (!err) {
      errorBox.hidden = true;
      return;
    }
    errorBox.textContent = errorText(err);
    errorBox.hidden = false;
  };

  function makeRow(run) {
    const cells = {
      id: h("td", { class: "cell-id", "data-label": "Run" }),
      status: h("td", { class: "cell-status", "data-label": "Status" }),
      workflow: h("td", { class: "cell-wf", "data-label": "Workflow" }),
      waiting: h("td", { class: "cell-wait", "data-label": "Waiting for" }),
      created: h("td", { class: "cell-time", "data-label": "Created" }),
      updated: h("td", { class: "cell-time", "data-label": "Updated" }),
      duration: h("td", { class: "cell-dur num", "data-label": "Duration" }),
    };
    const tr = h("tr", { dataset: { runId: run.id }, tabindex: "0", class: "run-row" }, Object.values(cells));
    tr._cells = cells;
    tr._key = {};
    setChildren(cells.id, idChip(run.id, { length: 22, label: "Copy run id" }));
    const open = () => (location.hash = `#/runs/${run.id}`);
    tr.addEventListener("click", (e) => {
      if (e.target.closest("button, a")) return;
      if (window.getSelection && String(window.getSelection()).length) return; // selecting text, not opening
      open();
    });
    tr.addEventListener("keydown", (e) => {
      if (e.target !== tr) return;
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        open();
      } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const next = e.key === "ArrowDown" ? tr.nextElementSibling : tr.previousElementSibling;
        if (next) next.focus();
      }
    });
    return tr;
  }

  function updateRow(tr, run, now) {
    const c = tr._cells;
    const k = tr._key;
    if (k.status !== run.status) {
      k.status = run.status;
      setChildren(c.status, badge(run.status));
    }
    setText(c.workflow, run.workflow);
    const wait = waitingText(run.waiting_for);
    if (k.wait !== wait) {
      k.wait = wait;
      setChildren(c.waiting, wait ? h("span", { class: "wait-text", title: waitingTitle(run.waiting_for) }, wait) : h("span", { class: "muted" }, "—"));
    }
    if (k.created !== run.created_at) {
      k.created = run.created_at;
      setChildren(c.created, timeEl(run.created_at));
    }
    if (k.updated !== run.updated_at) {
      k.updated = run.updated_at;
      setChildren(c.updated, timeEl(run.updated_at));
    }
    setText(c.duration, formatDuration(runDuration(run, now)));
    tr.setAttribute("aria-label", `Run ${run.id}, ${run.workflow}, ${run.status}${wait ? ", waiting for " + wait : ""}`);
  }

  function render() {
    const now = Date.now();
    const wanted = new Set(runs.map((r) => r.id));
    for (const [id, tr] of rowById) {
      if (!wanted.has(id)) {
        tr.remove();
        rowById.delete(id);
      }
    }
    let prev = null;
    for (const run of runs) {
      let tr = rowById.get(run.id);
      if (!tr) {
        tr = makeRow(run);
        rowById.set(run.id, tr);
      }
      updateRow(tr, run, now);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (tr !== want) tbody.insertBefore(tr, want);
      prev = tr;
    }
    more.hidden = !cursor;
    const filtered = filters.workflow || filters.status || filters.id;
    if (!runs.length) {
      if (emptyRow.parentNode !== tbody) tbody.appendChild(emptyRow);
      emptyRow.hidden = false;
      setChildren(empty, filtered
        ? [h("p", null, "No runs match these filters."), h("button", { type: "button", class: "btn", onclick: clearFilters }, "Clear filters")]
        : [h("p", null, "No runs yet."), h("p", { class: "muted" }, "Start one from ", h("a", { href: "#/workflows" }, "Workflows"), ".")]);
    } else emptyRow.hidden = true;
    count.textContent = runs.length ? `${runs.length}${cursor ? "+" : ""} run${runs.length === 1 ? "" : "s"}` : "";
    // A user-timing mark when the first page of runs is drawn: what benchmarks/console.py reads
    // (and what a developer sees in the browser's performance panel).
    if (!performance.getEntriesByName("flareflow:runs").length) performance.mark("flareflow:runs");
  }

  function clearFilters() {
    filters.workflow = filters.status = filters.id = "";
    workflowSelect.value = statusSelect.value = idInput.value = "";
    idHint.hidden = true;
    reload();
  }

  /** Page 1 from scratch (a filter changed). */
  async function reload() {
    const gen = ++generation;
    syncUrl();
    clearTimeout(pollTimer);
    root.classList.add("loading");
    try {
      const data = await api("/runs" + apiQuery({}));
      if (gen !== generation || destroyed) return;
      runs = (data.runs || []).slice().sort(compareRuns);
      cursor = data.next_cursor || null;
      showError(null);
      render();
    } catch (err) {
      if (gen !== generation || destroyed) return;
      showError(err);
      if (!runs.length) render();
    } finally {
      if (gen === generation) root.classList.remove("loading");
      schedulePoll();
    }
  }

  /**
   * Merge a fresh page 1 into what is shown. Page 1 is the truth for its own range (from its
   * oldest run up): runs missing there no longer match the filters (a status changed) and go;
   * older runs loaded with "Load more" stay as they are.
   */
  function merge(page, nextCursor) {
    const fresh = new Map(page.map((r) => [r.id, r]));
    if (!nextCursor) {
      // Page 1 holds everything that matches.
      runs = page.slice().sort(compareRuns);
      cursor = null;
      return;
    }
    const oldest = page.slice().sort(compareRuns)[page.length - 1];
    const kept = runs.filter((r) => !fresh.has(r.id) && compareRuns(r, oldest) > 0);
    runs = [...page, ...kept].sort(compareRuns);
    if (!kept.length && runs.length === page.length) cursor = nextCursor;
  }

  async function poll() {
    pollTimer = 0;
    if (destroyed) return;
    if (document.visibilityState !== "visible") return; // resumed by visibilitychange
    const gen = generation;
    try {
      const data = await api("/runs" + apiQuery({}));
      if (gen !== generation || destroyed) return;
      merge(data.runs || [], data.next_cursor || null);
      showError(null);
      render();
    } catch (err) {
      if (gen !== generation || destroyed) return;
      showError(err);
    } finally {
      if (gen === generation) schedulePoll();
    }
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    if (!destroyed && document.visibilityState === "visible") pollTimer = setTimeout(poll, POLL_MS);
  }

  const onVisibility = () => {
    if (document.visibilityState === "visible") {
      clearTimeout(pollTimer);
      poll();
    } else clearTimeout(pollTimer);
  };
  document.addEventListener("visibilitychange", onVisibility);

  more.addEventListener("click", async () => {
    if (!cursor) return;
    const gen = generation;
    more.disabled = true;
    more.textContent = "Loading…";
    try {
      const data = await api("/runs" + apiQuery({ cursor }));
      if (gen !== generation || destroyed) return;
      const known = new Set(runs.map((r) => r.id));
      runs = [...runs, ...(data.runs || []).filter((r) => !known.has(r.id))].sort(compareRuns);
      cursor = data.next_cursor || null;
      showError(null);
      render();
    } catch (err) {
      showError(err);
    } finally {
      more.disabled = false;
      more.textContent = "Load more";
    }
  });

  workflowSelect.addEventListener("change", () => {
    filters.workflow = workflowSelect.value;
    reload();
  });
  statusSelect.addEventListener("change", () => {
    filters.status = statusSelect.value;
    reload();
  });
  const onId = debounce(() => {
    const raw = idInput.value.trim().toLowerCase();
    if (raw && !/^[0-9a-f]*$/.test(raw)) {
      idHint.textContent = "Run ids are hexadecimal: 0–9 and a–f only.";
      idHint.hidden = false;
      idInput.setAttribute("aria-invalid", "true");
      return;
    }
    idHint.hidden = true;
    idInput.removeAttribute("aria-invalid");
    if (raw === filters.id) return;
    filters.id = raw;
    reload();
  }, 250);
  idInput.addEventListener("input", onId);

  // Durations of unfinished runs tick between polls.
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const run of runs) {
      if (!TERMINAL.has(run.status)) {
        const tr = rowById.get(run.id);
        if (tr) setText(tr._cells.duration, formatDuration(runDuration(run, now)));
      }
    }
  }, 1000);

  reload();

  return () => {
    destroyed = true;
    generation++;
    clearTimeout(pollTimer);
    clearInterval(ticker);
    onId.cancel();
    document.removeEventListener("visibilitychange", onVisibility);
  };
}
