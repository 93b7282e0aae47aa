// The run timeline: what ran when, built from the run's events (and the describe's steps).
//
// The model is fed one event at a time (`apply`) so a live run never re-reads its history; the
// view re-lays out at most a few times a second. Lanes are assigned greedily by time overlap, so
// parallel steps sit in separate lanes and a sequential run stays on one line.

import { h, setChildren, formatDuration, formatTime, parseTime, errorBlock, jsonBlock, badge } from "./dom.js";

const LANE_H = 30;
const AXIS_H = 24;
const MIN_BAR_PX = 6;
const MIN_WIDTH = 560;
// Beyond this many bars the DOM gets slow and the picture unreadable: show the latest ones.
const MAX_BARS = 400;

/** One step, sleep, event wait or question, with its attempts. */
function newItem(key, name, kind) {
  return {
    key, name: name || key, kind, status: "running", start: NaN, end: NaN,
    attempts: [], backoffs: [], until: NaN, eventType: null, prompt: null, schema: null,
    result: undefined, error: null, logs: null, seqs: [],
  };
}

export class TimelineModel {
  constructor() {
    this.items = new Map();
    this.runStart = NaN;
    this.runEnd = NaN;
    this.lastAt = NaN;
    this.pauses = []; // [{start, end}] while an operator held the run
    this.version = 0; // bumped on every change so the view knows when to re-render
  }

  item(key, name, kind) {
    let item = this.items.get(key);
    if (!item) {
      item = newItem(key, name, kind);
      this.items.set(key, item);
    } else if (kind && item.kind === "step" && kind !== "step") {
      item.kind = kind;
    }
    if (name && item.name === item.key) item.name = name;
    return item;
  }

  attempt(item, number, at, durationMs) {
    // Attempts guessed from the describe give way as soon as real events speak for the step.
    if (item.attempts.some((a) => a.synthetic)) item.attempts = item.attempts.filter((a) => !a.synthetic);
    let attempt = item.attempts.find((a) => a.attempt === number);
    if (!attempt) {
      // A finished attempt whose start we never saw (the start is not always recorded durably).
      const start = Number.isFinite(durationMs) ? at - durationMs : at;
      attempt = { attempt: number, start, end: NaN, status: "running", error: null, durationMs: null };
      item.attempts.push(attempt);
      item.attempts.sort((a, b) => a.attempt - b.attempt);
      if (!(item.start <= start)) item.start = start;
    }
    return attempt;
  }

  apply(event) {
    const at = parseTime(event.at);
    this.version++;
    if (Number.isFinite(at)) this.lastAt = Number.isFinite(this.lastAt) ? Math.max(this.lastAt, at) : at;
    switch (event.type) {
      case "run.started":
        this.runStart = at;
        break;
      case "step.started": {
        const item = this.item(event.step, event.name, "step");
        if (event.branch) item.branch = event.branch; // the run.parallel helper it runs in
        item.seqs.push(event.seq);
        const attempt = this.attempt(item, event.attempt ?? item.attempts.length + 1, at, NaN);
        attempt.start = at;
        attempt.status = "running";
        if (!(item.start <= at)) item.start = at;
        item.status = "running";
        item.end = NaN;
        // The backoff that preceded this attempt ends here.
        const backoff = item.backoffs[item.backoffs.length - 1];
        if (backoff && !Number.isFinite(backoff.end)) backoff.end = at;
        break;
      }
      case "step.completed":
      case "step.failed":
      case "step.retrying": {
        const item = this.item(event.step, event.name, null);
        item.seqs.push(event.seq);
        const attempt = this.attempt(item, event.attempt ?? 1, at, event.duration_ms);
        attempt.end = at;
        attempt.durationMs = event.duration_ms ?? at - attempt.start;
        if (event.type === "step.completed") {
          attempt.status = "completed";
          item.status = "completed";
          item.result = event.result;
          item.error = null;
          item.end = at;
        } else if (event.type === "step.failed") {
          attempt.status = "failed";
          attempt.error = event.error ?? null;
          item.status = "failed";
          item.error = event.error ?? null;
          item.result = undefined;
          item.end = at;
        } else {
          attempt.status = "failed";
          attempt.error = event.error ?? null;
          item.status = "retrying";
          const retryAt = parseTime(event.retry_at);
          item.backoffs.push({ start: at, end: NaN, until: Number.isFinite(retryAt) ? retryAt : at + (event.delay ?? 0) * 1000 });
        }
        if (Array.isArray(event.logs)) attempt.logs = event.logs;
        break;
      }
      case "run.waiting": {
        if (event.reason === "code") break; // the run is held for its code: no step of its own waits
        const kind = ["sleep", "event", "input"].includes(event.reason) ? event.reason : "wait";
        const item = this.item(event.step, event.name, kind);
        item.seqs.push(event.seq);
        if (!Number.isFinite(item.start)) item.start = at;
        item.status = "waiting";
        item.until = parseTime(event.until);
        if (event.event_type) item.eventType = event.event_type;
        break;
      }
      case "input.requested": {
        const item = this.item(event.step, null, "input");
        item.seqs.push(event.seq);
        if (!Number.isFinite(item.start)) item.start = at;
        item.status = "waiting";
        item.prompt = event.prompt ?? null;
        item.schema = event.schema;
        if (item.name === item.key && event.prompt) item.name = String(event.prompt);
        break;
      }
      case "input.received": {
        const item = this.items.get(event.step);
        if (item) {
          item.seqs.push(event.seq);
          item.status = "completed";
          item.end = at;
          item.result = event.value;
        }
        break;
      }
      case "event.received": {
        // The oldest open wait for this type takes it (an early event waits in the inbox instead).
        for (const item of this.items.values()) {
          if (item.kind === "event" && item.status === "waiting" && item.eventType === event.event_type) {
            item.seqs.push(event.seq);
            item.status = "completed";
            item.end = at;
            item.result = event.payload;
            break;
          }
        }
        break;
      }
      case "run.paused":
        this.pauses.push({ start: at, end: NaN });
        break;
      case "run.retried":
        this.runEnd = NaN; // running again
        break;
      case "run.resumed": {
        const open = this.pauses[this.pauses.length - 1];
        if (open && !Number.isFinite(open.end)) open.end = at;
        break;
      }
      case "run.completed":
      case "run.failed":
      case "run.cancelled": {
        this.runEnd = at;
        // Whatever was still open ended with the run: a wait the run was cancelled in, a step a
        // failure elsewhere cut short. Drawn as stopped, not as waiting forever.
        const stopped = event.type === "run.cancelled" ? "cancelled" : "interrupted";
        for (const item of this.items.values()) {
          if (!["waiting", "running", "retrying"].includes(item.status)) continue;
          item.status = stopped;
          item.end = at;
          for (const a of item.attempts) {
            if (a.status === "running") {
              a.status = stopped;
              a.end = at;
            }
          }
          const backoff = item.backoffs[item.backoffs.length - 1];
          if (backoff && !Number.isFinite(backoff.end)) backoff.end = Math.min(at, backoff.until);
        }
        break;
      }
      default:
        break;
    }
  }

  /** Fill in what events do not say: when a sleep ended, logs, steps whose events we lack. */
  mergeSteps(steps) {
    if (!Array.isArray(steps)) return;
    this.version++;
    for (const s of steps) {
      if (!s || !s.step) continue;
      const item = this.item(s.step, s.name, s.kind || "step");
      const started = parseTime(s.started_at);
      if (!Number.isFinite(item.start) && Number.isFinite(started)) item.start = started;
      const updated = parseTime(s.updated_at);
      if ((s.status === "completed" || s.status === "failed") && item.kind !== "step") {
        if (!Number.isFinite(item.end) && Number.isFinite(updated)) item.end = updated;
        item.status = s.status;
        if (s.result !== undefined && s.result !== null && item.result === undefined) item.result = s.result;
        if (s.error && !item.error) item.error = s.error;
      }
      if (s.wake_at && item.status === "waiting") item.until = parseTime(s.wake_at);
      // The describe's logs are every attempt's, flattened with an "attempt" number: hand them to
      // attempts the events left without (a history loaded before logs were recorded, say).
      if (Array.isArray(s.logs) && s.logs.length) {
        item.logs = s.logs;
        for (const a of item.attempts) {
          if (!a.logs || !a.logs.length) {
            const mine = s.logs.filter((entry) => entry.attempt === a.attempt);
            if (mine.length) a.logs = mine;
          }
        }
      }
      if (s.kind === "step" && !item.attempts.length && !item.seqs.length && Number.isFinite(started)) {
        // Known only from describe (events trimmed or not loaded yet): one attempt from start to update.
        item.attempts.push({ attempt: s.attempts || 1, start: started, end: s.status === "running" ? NaN : updated,
          status: s.status === "completed" ? "completed" : s.status === "failed" ? "failed" : "running",
          error: s.error || null, durationMs: null, synthetic: true });
        item.status = s.status;
        if (s.status !== "running") item.end = updated;
        if (s.status === "completed") item.result = s.result;
        if (s.error) item.error = s.error;
      }
    }
  }

  /** Items that have started, in start order (the order lanes are filled and Tab walks them). */
  list() {
    return [...this.items.values()].filter((i) => Number.isFinite(i.start)).sort((a, b) => a.start - b.start || (a.key < b.key ? -1 : 1));
  }
}

// --- view --------------------------------------------------------------------------------------

const TICKS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5,
  36e5, 72e5, 108e5, 216e5, 432e5, 864e5, 1728e5, 6048e5];

function offsetLabel(ms) {
  if (ms === 0) return "0";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60e3) return `${+(ms / 1000).toFixed(1)} s`;
  if (ms < 36e5) return `${+(ms / 60e3).toFixed(1)} m`;
  if (ms < 864e5) return `${+(ms / 36e5).toFixed(1)} h`;
  return `${+(ms / 864e5).toFixed(1)} d`;
}

const KIND_LABEL = { step: "step", sleep: "sleep", event: "event wait", input: "question", wait: "wait" };

function iso(ms) {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

function describeAttempt(a) {
  const took = Number.isFinite(a.durationMs) ? ` after ${formatDuration(a.durationMs)}` : "";
  if (a.status === "failed") {
    const err = a.error ? `: ${a.error.type ? a.error.type + ": " : ""}${a.error.message ?? ""}` : "";
    return `Attempt ${a.attempt} failed${took}${err}`;
  }
  if (a.status === "completed") return `Attempt ${a.attempt} completed${took}`;
  if (a.status !== "running") return `Attempt ${a.attempt} ${a.status} when the run ended`;
  return `Attempt ${a.attempt} running`;
}

export class TimelineView {
  /**
   * @param {HTMLElement} root  the #timeline element
   * @param {{onSelect(key: string|null): void}} opts
   */
  constructor(root, model, { onSelect }) {
    this.root = root;
    this.model = model;
    this.onSelect = onSelect;
    this.zoom = 1;
    this.selected = null;
    this.bars = new Map();
    this.live = true;
    this.showAll = false;
    this.renderedVersion = -1;
    this.lastRender = 0;
    this.timer = 0;

    this.zoomLabel = h("span", { class: "muted small", "aria-live": "polite" }, "Fit");
    const zoomBtn = (label, text, fn) => h("button", { type: "button", class: "btn small ghost", "aria-label": label, title: label, onclick: fn }, text);
    this.toolbar = h("div", { class: "tl-toolbar" },
      h("div", { class: "tl-legend", "aria-hidden": "true" },
        h("span", { class: "legend lg-completed" }, "completed"),
        h("span", { class: "legend lg-running" }, "running"),
        h("span", { class: "legend lg-failed" }, "failed attempt"),
        h("span", { class: "legend lg-backoff" }, "retry delay"),
        h("span", { class: "legend lg-wait" }, "waiting")),
      h("div", { class: "tl-zoom" },
        zoomBtn("Zoom out", "−", () => this.setZoom(this.zoom / 2)),
        this.zoomLabel,
        zoomBtn("Zoom in", "+", () => this.setZoom(this.zoom * 2)),
        zoomBtn("Fit to width", "Fit", () => this.setZoom(1))));
    this.axis = h("div", { class: "tl-axis", "aria-hidden": "true" });
    this.lanes = h("div", { class: "tl-lanes" });
    this.pauseLayer = h("div", { class: "tl-pauses", "aria-hidden": "true" });
    this.nowLine = h("div", { class: "tl-now", "aria-hidden": "true", hidden: true });
    this.canvas = h("div", { class: "tl-canvas" }, this.axis, this.pauseLayer, this.lanes, this.nowLine);
    this.scroller = h("div", { class: "tl-scroll" }, this.canvas);
    this.empty = h("p", { class: "muted tl-empty" }, "No steps yet.");
    this.capNote = h("p", { class: "muted small tl-cap", hidden: true });
    setChildren(root, this.toolbar, this.capNote, this.scroller, this.empty);
    this.resize = new ResizeObserver(() => this.render(true));
    this.resize.observe(this.scroller);
  }

  destroy() {
    this.resize.disconnect();
    clearTimeout(this.timer);
    clearTimeout(this.tick);
  }

  setZoom(zoom) {
    this.zoom = Math.min(256, Math.max(1, zoom));
    this.zoomLabel.textContent = this.zoom === 1 ? "Fit" : `${this.zoom}×`;
    this.render(true);
  }

  /** Re-render soon: at most ~5 times a second, however fast events arrive. */
  schedule() {
    if (this.timer) return;
    const wait = Math.max(0, 200 - (performance.now() - this.lastRender));
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.render();
    }, wait);
  }

  select(key) {
    this.selected = key;
    for (const [k, bar] of this.bars) {
      bar.classList.toggle("selected", k === key);
      bar.setAttribute("aria-pressed", String(k === key));
    }
  }

  render(force = false) {
    const model = this.model;
    const now = Date.now();
    if (!force && this.renderedVersion === model.version && !this.live) return;
    this.renderedVersion = model.version;
    this.lastRender = performance.now();
    const all = model.list();
    this.empty.hidden = all.length > 0;
    this.scroller.hidden = all.length === 0;
    if (!all.length) return;
    const capped = !this.showAll && all.length > MAX_BARS;
    const items = capped ? all.slice(all.length - MAX_BARS) : all;
    this.capNote.hidden = !capped;
    if (capped) {
      setChildren(this.capNote, `Showing the latest ${MAX_BARS} of ${all.length.toLocaleString()} steps. `,
        h("button", { type: "button", class: "link", onclick: () => { this.showAll = true; this.render(true); } }, "Show all (slow)"));
    }

    const finished = Number.isFinite(model.runEnd);
    const t0 = Number.isFinite(model.runStart) && !capped ? Math.min(model.runStart, items[0].start) : items[0].start;
    let t1 = finished ? model.runEnd : Math.max(now, model.lastAt || now);
    for (const item of items) {
      if (Number.isFinite(item.end)) t1 = Math.max(t1, item.end);
      for (const b of item.backoffs) t1 = Math.max(t1, Number.isFinite(b.end) ? b.end : b.until);
    }
    // A deadline shortly after the end widens the axis to show it; one days away would squash
    // everything else into a sliver, so it is only labelled at the bar's end instead.
    let span = Math.max(t1 - t0, 100);
    for (const item of items) {
      if (item.status === "waiting" && Number.isFinite(item.until) && item.until > t1 && item.until - t0 <= span * 1.5) t1 = item.until;
    }
    span = Math.max(t1 - t0, 100);

    // On a phone "fit" would crush the bars: below MIN_WIDTH the timeline scrolls sideways instead.
    const viewport = this.scroller.clientWidth || 600;
    const width = Math.round(Math.max(viewport - 16, MIN_WIDTH) * this.zoom);
    const px = (t) => ((t - t0) / span) * width;

    // Greedy lanes: each item goes in the first lane free at its start.
    const laneEnds = [];
    const placed = items.map((item) => {
      const end = this.itemEnd(item, t1);
      let lane = laneEnds.findIndex((e) => e <= item.start);
      if (lane === -1) {
        lane = laneEnds.length;
        laneEnds.push(end);
      } else laneEnds[lane] = end;
      return { item, lane, end };
    });
    // Label room: up to the next item in the same lane.
    const nextInLane = new Map();
    const lastByLane = new Map();
    for (const p of placed) {
      const prev = lastByLane.get(p.lane);
      if (prev) nextInLane.set(prev.item.key, p.item.start);
      lastByLane.set(p.lane, p);
    }

    this.canvas.style.width = width + 16 + "px";
    this.lanes.style.height = laneEnds.length * LANE_H + "px";
    this.renderAxis(t0, span, width);
    this.renderPauses(px, t1, laneEnds.length);

    const seen = new Set();
    for (const p of placed) {
      seen.add(p.item.key);
      let bar = this.bars.get(p.item.key);
      if (!bar) {
        bar = this.makeBar(p.item.key);
        this.bars.set(p.item.key, bar);
      }
      const left = px(p.item.start);
      const right = Math.max(px(p.end), left + MIN_BAR_PX);
      const next = nextInLane.get(p.item.key);
      const room = (next !== undefined ? px(next) : width + 16) - left - 4;
      this.fillBar(bar, p.item, left, right - left, room, px, t1);
      bar.style.top = p.lane * LANE_H + "px";
      bar.dataset.lane = String(p.lane);
    }
    for (const [key, bar] of this.bars) {
      if (!seen.has(key)) {
        bar.remove();
        this.bars.delete(key);
      }
    }
    // DOM order = start order, so Tab walks the bars left to right.
    let prev = null;
    for (const p of placed) {
      const bar = this.bars.get(p.item.key);
      const want = prev ? prev.nextSibling : this.lanes.firstChild;
      if (bar !== want) this.lanes.insertBefore(bar, want);
      prev = bar;
    }

    this.nowLine.hidden = finished;
    if (!finished) this.nowLine.style.left = 8 + px(now) + "px";
    this.live = !finished;
    if (this.live) {
      clearTimeout(this.tick);
      this.tick = setTimeout(() => this.render(true), 1000); // running bars grow with the clock
    }
  }

  itemEnd(item, t1) {
    if (Number.isFinite(item.end)) return item.end;
    if (item.kind === "sleep" && Number.isFinite(item.until) && item.until <= this.model.lastAt) return item.until;
    return t1;
  }

  makeBar(key) {
    const bar = h("div", {
      class: "step-bar", role: "button", tabindex: "0", dataset: { step: key }, "aria-pressed": "false",
    });
    const activate = () => this.onSelect(this.selected === key ? null : key);
    bar.addEventListener("click", activate);
    bar.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        activate();
      }
    });
    return bar;
  }

  fillBar(bar, item, left, width, room, px, t1) {
    // Position changes with every render (the axis grows with the clock); content only when the
    // item does, so a 400-bar timeline re-renders by moving boxes, not by rebuilding them.
    bar.style.left = 8 + left + "px";
    bar.style.width = width + "px";
    const end = this.itemEnd(item, t1);
    const untilPx = Number.isFinite(item.until) ? px(item.until) - left : NaN;
    const deadlineOnAxis = item.status === "waiting" && Number.isFinite(item.until) && (untilPx <= width + 1 || item.until <= t1);
    const sig = [
      item.kind, item.status, item.name, item.prompt, item.start, end, item.until, deadlineOnAxis, this.selected === item.key,
      item.attempts.map((a) => `${a.attempt}:${a.status}:${a.start}:${a.end}`).join(","),
      item.backoffs.map((b) => `${b.start}:${b.end}:${b.until}`).join(","),
    ].join("|");
    if (bar._sig === sig) {
      bar._label.style.maxWidth = Math.max(room - 6, 24) + "px";
      return;
    }
    bar._sig = sig;
    bar.className = `step-bar kind-${item.kind} status-${item.status}${this.selected === item.key ? " selected" : ""}`;
    const segs = [];
    const total = Math.max(end - item.start, 1);
    const pos = (a, b) => {
      const l = ((a - item.start) / total) * 100;
      const w = Math.max(((b - a) / total) * 100, 0);
      return [l, w];
    };
    const titleLines = [`${item.name} — ${KIND_LABEL[item.kind] || item.kind}, ${item.status}`];
    if (item.kind === "step") {
      for (const b of item.backoffs) {
        const bEnd = Number.isFinite(b.end) ? b.end : Math.min(b.until, end);
        segs.push(this.seg("seg-backoff", ...pos(b.start, bEnd), `Retry delay until ${formatTime(iso(b.until))}`));
      }
      for (const a of item.attempts) {
        const aEnd = Number.isFinite(a.end) ? a.end : end;
        const cls = a.status === "failed" ? "seg-failed" : a.status === "completed" ? "seg-completed"
          : a.status === "running" ? "seg-running" : "seg-stopped";
        const text = describeAttempt(a);
        titleLines.push(text);
        segs.push(this.seg(cls, ...pos(a.start, aEnd), text));
      }
    } else {
      const cls = item.status === "failed" ? "seg-failed" : item.status === "completed" ? "seg-wait-done"
        : item.status === "waiting" ? "seg-wait" : "seg-stopped";
      segs.push(this.seg(cls, 0, 100, null));
      if (Number.isFinite(item.until)) titleLines.push(`Deadline ${formatTime(iso(item.until))}`);
      if (item.kind === "event" && item.eventType) titleLines.push(`Waits for event “${item.eventType}”`);
    }
    const duration = end - item.start;
    titleLines.push(`Started ${formatTime(iso(item.start))}, ${Number.isFinite(item.end) ? "took" : "for"} ${formatDuration(duration)}`);
    bar.title = titleLines.join("\n");
    bar.setAttribute("aria-label", `${KIND_LABEL[item.kind] || item.kind} ${item.name}: ${item.status}, ${formatDuration(duration)}`);

    // A question is known by what it asks; its step name ("ask") says little. A deadline beyond
    // the axis goes into the label: a second pill would cover the first on a short bar.
    let text = item.kind === "input" && item.prompt ? item.prompt : item.name;
    const waiting = item.status === "waiting" && Number.isFinite(item.until);
    if (waiting && !deadlineOnAxis) text += ` · until ${formatTime(iso(item.until), { short: true })} →`;
    const label = h("span", { class: "bar-label" }, text);
    label.style.maxWidth = Math.max(room - 6, 24) + "px";
    bar._label = label;
    const children = [...segs, label];
    if (waiting && deadlineOnAxis) {
      const mark = h("span", { class: "deadline", title: `Deadline ${formatTime(iso(item.until))}` });
      mark.style.left = Math.min(Math.max(((item.until - item.start) / total) * 100, 0), 100) + "%";
      children.push(mark);
    }
    setChildren(bar, children);
  }

  seg(cls, leftPct, widthPct, title) {
    const el = h("span", { class: `seg ${cls}`, title });
    el.style.left = leftPct + "%";
    el.style.width = widthPct + "%";
    return el;
  }

  renderAxis(t0, span, width) {
    const target = span / Math.max(width / 110, 1);
    const step = TICKS.find((t) => t >= target) || TICKS[TICKS.length - 1];
    const ticks = [];
    for (let ms = 0; ms <= span + 1; ms += step) {
      const tick = h("span", { class: "tick", title: formatTime(iso(t0 + ms)) }, offsetLabel(ms));
      tick.style.left = 8 + (ms / span) * width + "px";
      ticks.push(tick);
      if (ticks.length > 400) break;
    }
    setChildren(this.axis, ticks);
    this.canvas.style.setProperty("--tick-px", (step / span) * width + "px");
  }

  renderPauses(px, t1, lanes) {
    const bands = this.model.pauses.map((p) => {
      const band = h("span", { class: "pause-band", title: "Paused" });
      const l = px(p.start);
      band.style.left = 8 + l + "px";
      band.style.width = Math.max(px(Number.isFinite(p.end) ? p.end : t1) - l, 2) + "px";
      band.style.height = lanes * LANE_H + "px";
      return band;
    });
    setChildren(this.pauseLayer, bands);
  }
}

/** What an attempt printed and logged: one line per entry, stderr and warnings marked. */
function logView(entries, label) {
  const lines = entries.map((entry) => {
    if (typeof entry === "string") return h("div", { class: "log-line" }, h("span", { class: "log-text" }, entry));
    const level = entry.stream === "log" ? String(entry.level || "LOG") : String(entry.stream || "");
    const bad = entry.stream === "stderr" || /^(WARNING|ERROR|CRITICAL)$/.test(level);
    return h("div", { class: `log-line${bad ? " log-bad" : ""}` },
      entry.at ? h("time", { class: "log-at", datetime: entry.at, title: `${entry.at} (UTC)` }, formatTime(entry.at, { millis: true })) : null,
      h("span", { class: "log-stream" }, level, entry.logger ? ` ${entry.logger}` : ""),
      h("span", { class: "log-text" }, String(entry.text ?? entry.message ?? "")));
  });
  return h("div", { class: "logs", tabindex: "0", role: "log", "aria-label": label }, lines);
}

/** The #step-panel contents for one item. */
export function stepPanel(item, onClose) {
  const close = h("button", { type: "button", class: "btn small ghost", "aria-label": "Close step details", onclick: onClose }, "Close");
  const rows = [];
  const meta = (k, v) => rows.push(h("dt", null, k), h("dd", null, v));
  meta("Kind", KIND_LABEL[item.kind] || item.kind);
  meta("Key", h("code", null, item.key));
  if (item.branch) meta("Branch", h("code", null, item.branch));
  meta("Started", Number.isFinite(item.start) ? h("time", { datetime: iso(item.start), title: `${iso(item.start)} (UTC)` }, formatTime(iso(item.start))) : "—");
  if (Number.isFinite(item.end)) {
    meta("Ended", h("time", { datetime: iso(item.end), title: `${iso(item.end)} (UTC)` }, formatTime(iso(item.end))));
    meta("Took", formatDuration(item.end - item.start));
  }
  if (Number.isFinite(item.until)) meta("Deadline", h("time", { datetime: iso(item.until), title: `${iso(item.until)} (UTC)` }, formatTime(iso(item.until))));
  if (item.eventType) meta("Event type", h("code", null, item.eventType));
  if (item.prompt) meta("Question", item.prompt);

  const parts = [
    h("div", { class: "panel-head" }, h("h3", null, item.name, " ", badge(item.status)), close),
    h("dl", { class: "meta" }, rows),
  ];
  if (item.attempts.length) {
    parts.push(h("h4", null, `Attempts (${item.attempts.length})`));
    parts.push(h("ol", { class: "attempts" }, item.attempts.map((a) =>
      h("li", { class: `attempt attempt-${a.status}` },
        h("div", { class: "attempt-head" },
          h("strong", null, `#${a.attempt}`), " ", badge(a.status), " ",
          h("span", { class: "muted" }, Number.isFinite(a.start) ? formatTime(iso(a.start)) : ""),
          Number.isFinite(a.durationMs) ? h("span", { class: "muted" }, ` · ${formatDuration(a.durationMs)}`) : null),
        a.error ? errorBlock(a.error) : null,
        a.logs && a.logs.length ? logView(a.logs, `Output of attempt ${a.attempt}`) : null))));
  }
  if (item.backoffs.length) {
    parts.push(h("p", { class: "muted small" }, item.backoffs.map((b) => `Retry delay until ${formatTime(iso(b.until))}`).join(" · ")));
  }
  if (item.error && !item.attempts.some((a) => a.error)) parts.push(h("h4", null, "Error"), errorBlock(item.error));
  if (item.result !== undefined) parts.push(h("h4", null, item.kind === "step" ? "Result" : "Received"), jsonBlock(item.result, { label: "step result" }));
  if (item.schema !== undefined && item.schema !== null) parts.push(h("h4", null, "Answer schema"), jsonBlock(item.schema, { label: "answer schema" }));
  // Logs of attempts the panel could not place (no attempt with that number is known).
  if (Array.isArray(item.logs) && item.logs.length) {
    const known = new Set(item.attempts.map((a) => a.attempt));
    const orphans = item.logs.filter((entry) => !known.has(entry.attempt));
    if (orphans.length) parts.push(h("h4", null, "Output"), logView(orphans, "Step output"));
  }
  if (item.seqs.length) parts.push(h("p", { class: "muted small" }, `Events: ${item.seqs.map((s) => "#" + s).join(", ")}`));
  return parts;
}
