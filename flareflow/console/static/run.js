// One run: header, what it waits for (and the forms to unblock it), timeline, state and events.
//
// Two sources feed the view. The event stream (live.js) is the fast one: every event updates the
// timeline, the state versions and the log at once. The describe (GET /runs/{id}) is the slower
// truth for status, waits and step end times the events do not carry; it is re-fetched, debounced,
// whenever an event may have changed it.

import { api, runPath, errorText, ApiError } from "./api.js";
import {
  h, setChildren, setText, badge, timeEl, formatDuration, parseTime, jsonBlock, errorBlock, idChip, debounce, announce, pretty,
} from "./dom.js";
import { RunStream, FINISHED } from "./live.js";
import { TimelineModel, TimelineView, stepPanel } from "./timeline.js";
import { EventLog } from "./eventlog.js";
import { applyPatch } from "./jsonpatch.js";
import { aiCallsCard } from "./aicalls.js";
import { schemaForm, parseRejection, FieldError } from "./form.js";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
// Events after which the describe (status, waits, steps) is worth re-reading.
const REFRESH_ON = new Set([
  "run.waiting", "run.paused", "run.resumed", "run.completed", "run.failed", "run.cancelled", "run.retried",
  "input.requested", "input.received", "event.received", "step.failed",
]);
// Events that can open or close a wait (the Act card is redrawn only for these).
const WAITS_ON = new Set([
  "run.waiting", "input.requested", "input.received", "event.received", "step.failed", "step.started",
  "run.paused", "run.resumed", "run.completed", "run.failed", "run.cancelled", "run.retried",
]);

function section(title, id, ...body) {
  const headingId = `${id}-title`;
  return h("section", { class: "card", "aria-labelledby": headingId }, h("h2", { id: headingId }, title), ...body);
}

/** JSON typed by hand: "" → empty, else parsed; throws a sentence when it is not JSON. */
function parseJsonField(text) {
  const raw = text.trim();
  if (raw === "") return { empty: true };
  try {
    return { value: JSON.parse(raw) };
  } catch (err) {
    throw new Error(`This is not valid JSON: ${err.message}.`);
  }
}

export function mountRun(root, runId) {
  let destroyed = false;
  let info = null; // the last describe
  const events = []; // shared with the event log; the stream's list is the same content
  const versions = []; // [{index, state}] one per event that carried a patch
  let patchError = null;
  let sliderFollows = true;
  let selectedStep = null;
  let questionKeys = "";
  let prefilledType = "";
  const model = new TimelineModel();
  const aiCalls = aiCallsCard(runId); // the run's run.ai calls, from the call log

  // --- skeleton ---------------------------------------------------------------------------------
  const statusEl = h("span", { id: "run-status", class: "badge", "aria-live": "polite" }, "…");
  const liveEl = h("span", { id: "live", class: "live", "aria-live": "polite", title: "Event stream connection" }, "reconnecting…");
  const titleEl = h("h1", { class: "run-title" }, "Run");
  const metaEl = h("dl", { class: "meta run-meta" });
  const ioEl = h("div", { class: "io" });
  const loadError = h("p", { class: "banner error", hidden: true, role: "alert" });

  const waitsEl = h("ul", { class: "waits" });
  const questionWrap = h("div", { class: "question-wrap" });
  const actError = h("p", { id: "act-error", class: "form-error", hidden: true, role: "alert" });
  const cancelBtn = h("button", { id: "act-cancel", type: "button", class: "btn danger", disabled: true }, "Cancel run…");
  const pauseBtn = h("button", { id: "act-pause", type: "button", class: "btn", disabled: true }, "Pause");
  const resumeBtn = h("button", { id: "act-resume", type: "button", class: "btn", disabled: true }, "Resume");
  const cancelReason = h("input", { id: "act-reason", type: "text", placeholder: "Reason (optional)", "aria-label": "Reason for cancelling (optional)", maxlength: "500" });
  const cancelConfirm = h("button", { id: "act-cancel-confirm", type: "button", class: "btn danger" }, "Yes, cancel the run");
  const cancelKeep = h("button", { id: "act-cancel-keep", type: "button", class: "btn ghost" }, "Keep it");
  const retryBtn = h("button", { id: "act-retry", type: "button", class: "btn primary", hidden: true, disabled: true }, "Retry");
  const restartStep = h("select", { id: "act-restart-step", "aria-label": "Restart from step" });
  const restartBtn = h("button", { id: "act-restart", type: "button", class: "btn", disabled: true }, "Restart from step");
  const recoverEl = h("div", { class: "recover", role: "group", "aria-label": "Recover" },
    h("p", { class: "muted small" }, "Retry continues a failed run from its failed step. Restart starts a new run of the same input that reuses the results before the chosen step; this run stays as it is."),
    h("div", { class: "row" }, retryBtn, restartStep, restartBtn));
  const confirmBox = h("div", { class: "confirm", hidden: true, role: "group", "aria-label": "Confirm cancelling" },
    h("p", null, "Cancel this run? It stops for good: the running step is interrupted and nothing else runs."),
    h("div", { class: "row" }, cancelReason, cancelConfirm, cancelKeep));

  const eventType = h("input", { id: "event-type", type: "text", autocomplete: "off", spellcheck: "false", required: true, maxlength: "256" });
  const eventPayload = h("textarea", { id: "event-payload", rows: "3", class: "mono", spellcheck: "false", placeholder: '{"by": "ada"}  (empty sends null)' });
  const eventSend = h("button", { id: "event-send", type: "submit", class: "btn" }, "Send event");
  const eventResult = h("p", { id: "event-result", class: "form-result", "aria-live": "polite" });
  const eventForm = h("form", { id: "send-event", class: "send-event", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "event-type", class: "label" }, "Event type"), eventType),
    h("div", { class: "field" }, h("label", { for: "event-payload", class: "label" }, "Payload (JSON)"), eventPayload),
    h("div", { class: "row" }, eventSend, eventResult));

  const timelineEl = h("div", { id: "timeline", class: "timeline", role: "group", "aria-label": "Timeline of steps" });
  const stepPanelEl = h("div", { id: "step-panel", class: "step-panel", hidden: true, "aria-live": "polite" });

  const slider = h("input", { id: "state-slider", type: "range", min: "0", max: "0", value: "0", step: "1", disabled: true, "aria-label": "Show the state after event" });
  const sliderLabel = h("output", { for: "state-slider", class: "slider-label" }, "No events yet");
  const latestBtn = h("button", { type: "button", class: "btn small ghost", disabled: true }, "Latest");
  const stateNote = h("p", { class: "form-error", hidden: true });
  const statePre = h("pre", { id: "state-json", class: "json state-json", tabindex: "0", "aria-label": "Run state" }, "{}");

  const eventCount = h("span", { id: "event-count", class: "count" }, "0");
  const eventFilter = h("input", { id: "event-filter", type: "search", placeholder: "Filter: type, step or seq", "aria-label": "Filter events", autocomplete: "off" });
  const eventsEl = h("div", { id: "events", class: "event-list" });
  const eventDetail = h("div", { class: "event-detail", "aria-live": "polite" });

  const eventCol = h("div", null, h("h3", null, "Send an event"), eventForm);
  const controlRow = h("div", { class: "row" }, pauseBtn, resumeBtn, cancelBtn);
  const actCard = h("section", { class: "card act", "aria-labelledby": "act-title" },
    h("h2", { id: "act-title" }, "Act"),
    waitsEl, questionWrap,
    h("div", { class: "act-grid" },
      eventCol,
      h("div", null, h("h3", null, "Control"), controlRow, confirmBox, recoverEl, actError)));

  const sectionEl = h("section", { id: "run", dataset: { runId }, class: "run" },
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/runs" }, "← Runs")),
    h("header", { class: "card run-head" },
      h("div", { class: "run-title-row" }, titleEl, h("div", { class: "run-badges" }, statusEl, liveEl)),
      metaEl, loadError, ioEl),
    actCard,
    section("Timeline", "tl", timelineEl, stepPanelEl),
    aiCalls.el,
    h("section", { class: "card", "aria-labelledby": "ev-title" },
      h("div", { class: "card-head" }, h("h2", { id: "ev-title" }, "Events ", eventCount), eventFilter),
      h("div", { class: "events-grid" }, eventsEl, eventDetail)),
    section("State", "st",
      h("div", { class: "slider-row" }, slider, latestBtn),
      sliderLabel, stateNote, statePre));
  setChildren(root, sectionEl);

  // --- header ---------------------------------------------------------------------------------
  function renderHeader() {
    if (!info) return;
    statusEl.className = `badge status-${String(info.status).replace(/[^a-z0-9_-]/gi, "")}`;
    setText(statusEl, info.status);
    if (!titleEl.dataset.filled) {
      titleEl.dataset.filled = "1"; // once: redrawing would take focus from its copy button
      setChildren(titleEl, h("span", { class: "wf-name" }, info.workflow), " ", idChip(info.id, { length: 16, label: "Copy run id" }));
    }
    document.title = `${info.workflow} ${info.id.slice(0, 8)} · ${info.status} — flareflow`;
    const end = TERMINAL.has(info.status) ? parseTime(info.updated_at) : Date.now();
    const rows = [
      ["Created", timeEl(info.created_at)],
      ["Updated", h("span", { class: "run-updated" }, timeEl(latestUpdate()))],
      ["Duration", h("span", { class: "run-duration" }, formatDuration(end - parseTime(info.created_at)))],
      ["Events", h("span", { class: "run-events" }, String(Math.max(info.last_seq ?? 0, events.length ? events[events.length - 1].seq : 0)))],
    ];
    if (info.idempotency_key) rows.push(["Idempotency key", idChip(info.idempotency_key, { length: 24, label: "Copy idempotency key" })]);
    const origin = info.restarted_from;
    if (origin && typeof origin.run_id === "string") {
      rows.push(["Restarted from", h("span", { class: "restarted-from" },
        h("a", { href: `#/runs/${encodeURIComponent(origin.run_id)}` }, origin.run_id.slice(0, 12)),
        origin.step ? [" at step ", h("code", null, origin.step)] : " from the beginning")]);
    }
    setChildren(metaEl, rows.map(([k, v]) => h("div", null, h("dt", null, k), h("dd", null, v))));
    // Input never changes and output or error arrive with the final status: redraw only then, so
    // a refresh does not fold an unfolded value or reset its scroll.
    if (ioKey !== info.status) {
      ioKey = info.status;
      renderIo();
    }
    renderControls();
    renderWaits();
  }

  /** The describe's updated_at, or the newest event's time when the stream is ahead of it. */
  function latestUpdate() {
    const last = events.length ? events[events.length - 1].at : null;
    if (!info) return last;
    return last && parseTime(last) > parseTime(info.updated_at) ? last : info.updated_at;
  }

  let ioKey = null;
  function renderIo() {
    const io = [h("div", { class: "io-part" }, h("h3", null, "Input"), jsonBlock(info.input, { label: "run input" }))];
    if (info.status === "failed" || (info.error !== null && info.error !== undefined && info.status !== "completed")) {
      io.push(h("div", { class: "io-part" }, h("h3", null, info.status === "cancelled" ? "Cancelled" : "Error"),
        info.status === "cancelled" && typeof info.error === "string" ? h("p", null, info.error) : errorBlock(info.error)));
    } else if (info.status === "completed") {
      io.push(h("div", { class: "io-part" }, h("h3", null, "Output"), jsonBlock(info.output, { label: "run output" })));
    }
    setChildren(ioEl, io);
  }

  function renderControls() {
    const status = info ? info.status : "";
    const open = status && !TERMINAL.has(status);
    cancelBtn.disabled = !open;
    pauseBtn.disabled = !(status === "running" || status === "waiting");
    resumeBtn.disabled = status !== "paused";
    if (!open) confirmBox.hidden = true;
    // A finished run takes no events or controls any more; it can still be retried (failed) or restarted.
    const finished = Boolean(status) && !open;
    eventCol.hidden = finished;
    controlRow.hidden = finished;
    actCard.classList.toggle("finished", finished);
    retryBtn.hidden = status !== "failed";
    retryBtn.disabled = status !== "failed";
    renderRestartSteps();
    restartBtn.disabled = !status;
  }

  /** The step picker: the beginning, then every step in the order the run reached them (kept selected). */
  function renderRestartSteps() {
    const steps = info && Array.isArray(info.steps) ? info.steps : [];
    const key = steps.map((s) => s.step).join("\u0000");
    if (restartStep.dataset.steps === key) return;
    restartStep.dataset.steps = key;
    const chosen = restartStep.value;
    const names = new Map();
    for (const s of steps) names.set(s.name, (names.get(s.name) || 0) + 1);
    setChildren(restartStep, h("option", { value: "" }, "from the beginning"),
      steps.map((s) => h("option", { value: s.step, selected: s.step === chosen }, `from ${names.get(s.name) > 1 ? s.step : s.name}`)));
  }

  // --- waits and the question ------------------------------------------------------------------
  /** Open waits: the describe's, plus any the events opened since it was read. */
  function openWaits() {
    if (!info || TERMINAL.has(info.status)) return [];
    const byKey = new Map();
    for (const w of info.waiting || []) byKey.set(w.step, { ...w });
    for (const item of model.items.values()) {
      if (item.status !== "waiting") {
        byKey.delete(item.key); // answered or delivered after the describe was read
        continue;
      }
      if (!byKey.has(item.key)) {
        byKey.set(item.key, {
          step: item.key, kind: item.kind, name: item.name, until: Number.isFinite(item.until) ? new Date(item.until).toISOString() : null,
          prompt: item.prompt, schema: item.schema, event_type: item.eventType,
        });
      }
    }
    return [...byKey.values()];
  }

  function renderWaits() {
    const waits = openWaits();
    setChildren(waitsEl, waits.map((w) => {
      const until = w.until ? [" until ", timeEl(w.until)] : [];
      if (w.kind === "sleep") return h("li", { class: "wait wait-sleep" }, "Sleeping ", h("strong", null, w.name), ...until);
      if (w.kind === "event") return h("li", { class: "wait wait-event" }, "Waiting for event ", h("code", null, w.event_type || w.name), w.name && w.name !== w.event_type ? [" (", w.name, ")"] : null, ...until);
      if (w.kind === "input") return h("li", { class: "wait wait-input" }, "Waiting for an answer: ", h("strong", null, w.prompt || w.name), ...until);
      if (w.kind === "code") return h("li", { class: "wait wait-code" }, "Held for its code: ", w.message || w.name, w.until ? [" (re-checked at ", timeEl(w.until), ")"] : null);
      return h("li", { class: "wait" }, `Waiting (${w.kind}) `, h("strong", null, w.name), ...until);
    }));
    waitsEl.hidden = waits.length === 0;
    if (!waits.length && info && !TERMINAL.has(info.status)) {
      waitsEl.hidden = false;
      setChildren(waitsEl, h("li", { class: "wait muted" }, info.status === "paused" ? "Paused by an operator." : "Running: not waiting for anything."));
    }
    if (info && TERMINAL.has(info.status)) {
      waitsEl.hidden = false;
      const what = info.status === "cancelled" ? "been cancelled" : info.status;
      const how = info.status === "failed" ? "retry it, or restart it from a step" : "restart it from a step to run it again";
      setChildren(waitsEl, h("li", { class: "wait muted" }, `This run has ${what}; ${how}.`));
    }
    // Prefill the event type with what the run waits for, unless the user typed something else.
    const eventWait = waits.find((w) => w.kind === "event");
    const wanted = eventWait ? eventWait.event_type || eventWait.name || "" : "";
    if (wanted && (eventType.value === "" || eventType.value === prefilledType)) {
      eventType.value = wanted;
      prefilledType = wanted;
    }
    renderQuestion(waits.filter((w) => w.kind === "input"));
  }

  let activeQuestion = null;
  function renderQuestion(questions) {
    const keys = questions.map((q) => q.step + "\u0000" + JSON.stringify(q.schema ?? null)).join("\u0001");
    if (keys === questionKeys) return; // unchanged: keep what the user typed
    questionKeys = keys;
    if (!questions.length) {
      activeQuestion = null;
      setChildren(questionWrap);
      return;
    }
    const pick = activeQuestion && questions.find((q) => q.step === activeQuestion.step) ? activeQuestion : questions[0];
    activeQuestion = pick;
    const errorP = h("p", { id: "question-error", class: "form-error", hidden: true, role: "alert" });
    const resultP = h("p", { class: "form-result", "aria-live": "polite" });
    const submit = h("button", { id: "answer-submit", type: "submit", class: "btn primary" }, "Send answer");
    let sending = false;
    const send = async (value) => {
      if (sending) return;
      sending = true;
      form.clearErrors();
      errorP.hidden = true;
      resultP.textContent = "Sending…";
      formEl.classList.add("busy");
      formEl.querySelectorAll("button").forEach((b) => (b.disabled = true));
      try {
        await api(runPath(runId, "/input"), { method: "POST", body: { value, step: pick.step } });
        resultP.textContent = "Answer sent.";
        announce("Answer sent.");
        refresh();
      } catch (err) {
        resultP.textContent = "";
        showRejection(err);
      } finally {
        sending = false;
        formEl.classList.remove("busy");
        formEl.querySelectorAll("button").forEach((b) => (b.disabled = false));
      }
    };
    const showRejection = (err) => {
      const text = errorText(err);
      const where = err instanceof ApiError ? parseRejection(err.message) : null;
      if (where && form.showError(where.path, text)) return;
      errorP.textContent = text;
      errorP.hidden = false;
    };
    const form = schemaForm(pick.schema, { onAnswer: send });
    const chooser = questions.length > 1
      ? h("label", { class: "field" }, h("span", { class: "label" }, `${questions.length} open questions`),
        h("select", { "aria-label": "Which question to answer", onchange: (e) => { activeQuestion = questions[Number(e.target.value)]; questionKeys = ""; renderQuestion(questions); } },
          questions.map((q, i) => h("option", { value: String(i), selected: q === pick }, q.prompt || q.name))))
      : null;
    const formEl = h("form", { id: "question", class: "question", novalidate: true, dataset: { step: pick.step } },
      h("fieldset", null,
        h("legend", { class: "prompt" }, pick.prompt || pick.name || "The run asks"),
        chooser,
        form.el,
        pick.until ? h("p", { class: "muted small" }, "Answer before ", timeEl(pick.until), ".") : null,
        form.quick ? null : h("div", { class: "row" }, submit, resultP),
        form.quick ? resultP : null,
        errorP));
    formEl.addEventListener("submit", (e) => {
      e.preventDefault();
      form.clearErrors();
      errorP.hidden = true;
      let value;
      try {
        value = form.read();
      } catch (err) {
        if (err instanceof FieldError && form.showError(err.path, err.message)) return;
        errorP.textContent = err.message;
        errorP.hidden = false;
        return;
      }
      send(value);
    });
    setChildren(questionWrap, formEl);
  }

  // --- acting -----------------------------------------------------------------------------------
  eventForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    eventResult.className = "form-result";
    const type = eventType.value.trim();
    if (!type) {
      eventResult.textContent = "Give the event a type.";
      eventResult.classList.add("error");
      eventType.focus();
      return;
    }
    let payload;
    try {
      const parsed = parseJsonField(eventPayload.value);
      payload = parsed.empty ? null : parsed.value;
    } catch (err) {
      eventResult.textContent = err.message;
      eventResult.classList.add("error");
      eventPayload.setAttribute("aria-invalid", "true");
      eventPayload.focus();
      return;
    }
    eventPayload.removeAttribute("aria-invalid");
    eventSend.disabled = true;
    eventResult.textContent = "Sending…";
    try {
      await api(runPath(runId, "/events"), { method: "POST", body: { type, payload } });
      eventResult.textContent = `Event “${type}” delivered.`;
      eventResult.classList.add("ok");
      announce(`Event ${type} delivered.`);
      refresh();
    } catch (err) {
      eventResult.textContent = errorText(err);
      eventResult.classList.add("error");
    } finally {
      eventSend.disabled = false;
    }
  });

  async function control(path, body, button) {
    actError.hidden = true;
    const label = button.textContent;
    button.disabled = true;
    button.textContent = "Working…";
    try {
      const summary = await api(runPath(runId, path), { method: "POST", body });
      if (summary && summary.status && info) {
        info = { ...info, ...summary, waiting: info.waiting };
        renderHeader();
      }
      refresh();
      return true;
    } catch (err) {
      actError.textContent = errorText(err);
      actError.hidden = false;
      return false;
    } finally {
      button.textContent = label;
      renderControls();
    }
  }

  retryBtn.addEventListener("click", async () => {
    if (await control("/retry", {}, retryBtn)) {
      announce("Retrying the run.");
      stream.follow(); // the run is open again: its stream goes on
    }
  });
  restartBtn.addEventListener("click", async () => {
    actError.hidden = true;
    restartBtn.disabled = true;
    const from = restartStep.value;
    try {
      const run = await api(runPath(runId, "/restart"), { method: "POST", body: from ? { from_step: from } : {} });
      announce("Restarted as a new run.");
      location.hash = `#/runs/${run.id}`;
    } catch (err) {
      actError.textContent = errorText(err);
      actError.hidden = false;
    } finally {
      restartBtn.disabled = false;
    }
  });
  pauseBtn.addEventListener("click", () => control("/pause", {}, pauseBtn));
  resumeBtn.addEventListener("click", () => control("/resume", {}, resumeBtn));
  cancelBtn.addEventListener("click", () => {
    confirmBox.hidden = false;
    cancelReason.focus();
  });
  cancelKeep.addEventListener("click", () => {
    confirmBox.hidden = true;
    cancelBtn.focus();
  });
  confirmBox.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      confirmBox.hidden = true;
      cancelBtn.focus();
    } else if (e.key === "Enter" && e.target === cancelReason) {
      e.preventDefault();
      cancelConfirm.click();
    }
  });
  cancelConfirm.addEventListener("click", async () => {
    const reason = cancelReason.value.trim();
    const ok = await control("/cancel", reason ? { reason } : {}, cancelConfirm);
    if (ok) confirmBox.hidden = true;
  });

  // --- timeline -------------------------------------------------------------------------------
  const timeline = new TimelineView(timelineEl, model, {
    onSelect: (key) => {
      selectedStep = key;
      timeline.select(key);
      renderStepPanel();
      if (key) stepPanelEl.scrollIntoView({ block: "nearest", behavior: "smooth" });
    },
  });

  // Escape closes the step panel from the panel or from the bars.
  const closeOnEscape = (e) => {
    if (e.key === "Escape" && selectedStep) {
      e.preventDefault();
      stepPanelEl.querySelector(".panel-head button")?.click();
    }
  };
  stepPanelEl.addEventListener("keydown", closeOnEscape);
  timelineEl.addEventListener("keydown", closeOnEscape);

  function renderStepPanel() {
    const item = selectedStep ? model.items.get(selectedStep) : null;
    if (!item) {
      stepPanelEl.hidden = true;
      setChildren(stepPanelEl);
      return;
    }
    stepPanelEl.hidden = false;
    setChildren(stepPanelEl, stepPanel(item, () => {
      const key = selectedStep;
      selectedStep = null;
      timeline.select(null);
      renderStepPanel();
      const bar = timelineEl.querySelector(`.step-bar[data-step="${CSS.escape(key)}"]`);
      if (bar) bar.focus();
    }));
  }

  // --- state ------------------------------------------------------------------------------------
  function stateAt(index) {
    // The last version at or before `index` (versions are in event order).
    let lo = 0;
    let hi = versions.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (versions[mid].index <= index) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? {} : versions[found].state;
  }

  let shownState;
  function renderState() {
    const n = events.length;
    slider.max = String(Math.max(n - 1, 0));
    slider.disabled = n === 0;
    if (sliderFollows) slider.value = String(Math.max(n - 1, 0));
    const index = Number(slider.value);
    latestBtn.disabled = sliderFollows || n === 0;
    const e = events[index];
    if (e) {
      setChildren(sliderLabel, `After event #${e.seq} of ${events[n - 1].seq} (`, h("code", null, e.type), ") at ", timeEl(e.at), sliderFollows ? " — latest" : "");
      slider.setAttribute("aria-valuetext", `after event ${e.seq}, ${e.type}`);
    }
    const state = n ? stateAt(index) : {};
    if (state !== shownState) {
      shownState = state;
      statePre.textContent = pretty(state);
    }
    stateNote.hidden = !patchError;
    if (patchError) stateNote.textContent = patchError;
  }

  slider.addEventListener("input", () => {
    sliderFollows = Number(slider.value) >= events.length - 1;
    renderState();
  });
  latestBtn.addEventListener("click", () => {
    sliderFollows = true;
    renderState();
    slider.focus();
  });

  // --- events ---------------------------------------------------------------------------------
  const log = new EventLog(eventsEl, eventDetail, {
    events,
    onShowState: (index) => {
      sliderFollows = index >= events.length - 1;
      slider.value = String(index);
      renderState();
      slider.scrollIntoView({ block: "center", behavior: "smooth" });
      slider.focus({ preventScroll: true });
    },
  });
  eventFilter.addEventListener("input", debounce(() => log.setFilter(eventFilter.value), 120));

  // --- data -------------------------------------------------------------------------------------
  let asked = 0; // describes in flight answer out of order: only the newest question's answer counts
  const refresh = debounce(async () => {
    const ask = ++asked;
    try {
      const next = await api(runPath(runId));
      if (destroyed || ask !== asked) return;
      if (info && (next.last_seq ?? 0) < (info.last_seq ?? 0)) return; // older than what is shown
      info = next;
      loadError.hidden = true;
      model.mergeSteps(info.steps);
      renderHeader();
      timeline.schedule();
      if (selectedStep) renderStepPanel();
      aiCalls.refresh();
    } catch (err) {
      if (destroyed) return;
      loadError.textContent = errorText(err);
      loadError.hidden = false;
    }
  }, 150, 1000);

  function onEvents(batch) {
    const from = events.length;
    let needsRefresh = false;
    let needsWaits = false;
    for (const e of batch) {
      const index = events.length;
      events.push(e);
      if (Array.isArray(e.patch) && e.patch.length && !patchError) {
        const prev = versions.length ? versions[versions.length - 1].state : {};
        try {
          versions.push({ index, state: applyPatch(prev, e.patch) });
        } catch (err) {
          patchError = `The state patch of event #${e.seq} could not be applied (${err.message}); the state shown stops before it.`;
        }
      }
      model.apply(e);
      // A step starting after a wait means the run runs again: the describe's status is stale.
      if (REFRESH_ON.has(e.type) || (e.type === "step.started" && info && info.status !== "running")) needsRefresh = true;
      if (WAITS_ON.has(e.type)) needsWaits = true;
    }
    setText(eventCount, events.length.toLocaleString());
    const seqCell = metaEl.querySelector(".run-events");
    if (seqCell) setText(seqCell, String(events[events.length - 1].seq));
    const updatedCell = metaEl.querySelector(".run-updated");
    if (updatedCell) setChildren(updatedCell, timeEl(latestUpdate()));
    log.appended(from);
    renderState();
    timeline.schedule();
    if (selectedStep) renderStepPanel();
    if (needsWaits) renderWaits();
    if (needsRefresh) refresh();
  }

  const stream = new RunStream(runId, {
    onEvents,
    onConnection: (text) => {
      setText(liveEl, text);
      liveEl.className = `live live-${text === FINISHED ? "finished" : text.startsWith("live") ? "on" : text === "offline" ? "off" : "retry"}`;
      if (text === FINISHED) refresh();
    },
    onError: (err) => {
      loadError.textContent = errorText(err);
      loadError.hidden = false;
    },
  });

  // The describe and the event history load side by side: neither needs the other first.
  stream.start();
  (async () => {
    try {
      const first = await api(runPath(runId));
      if (destroyed) return;
      if (!info || (first.last_seq ?? 0) >= (info.last_seq ?? 0)) info = first; // a refresh may have been quicker
    } catch (err) {
      if (destroyed) return;
      if (err instanceof ApiError && err.status === 404) {
        stream.stop();
        setChildren(root, h("div", { class: "card empty" },
          h("h1", null, "No such run"),
          h("p", null, errorText(err)),
          h("p", null, h("a", { href: "#/runs" }, "Back to the runs"))));
        return;
      }
      loadError.textContent = errorText(err);
      loadError.hidden = false;
      refresh(); // try again shortly (the stream's own retries do not re-read the describe)
      return;
    }
    model.mergeSteps(info.steps);
    renderHeader();
    timeline.schedule();
    aiCalls.refresh();
  })();

  const ticker = setInterval(() => {
    if (!info || TERMINAL.has(info.status)) return;
    const d = metaEl.querySelector(".run-duration");
    if (d) setText(d, formatDuration(Date.now() - parseTime(info.created_at)));
  }, 1000);

  return {
    destroy() {
      destroyed = true;
      stream.stop();
      timeline.destroy();
      log.destroy();
      refresh.cancel();
      clearInterval(ticker);
    },
    seqs: () => stream.seqs(),
    state: () => (events.length ? stateAt(Number(slider.value)) : {}),
  };
}
