// The event log: a virtually scrolled list, so 10,000+ events cost as much as the ~20 on screen.
//
// Rows have one fixed height and are absolutely positioned inside a spacer as tall as the whole
// list; only the rows in (and just around) the viewport exist in the DOM. Expanding a row never
// changes its height: the full JSON opens in a detail pane beside the list instead. The list is
// one focusable listbox (arrow keys, Page Up/Down, Home/End, Enter) because virtual rows come and
// go and could not keep focus themselves.

import { h, setChildren, formatTime, formatDuration, compact, truncate, jsonBlock } from "./dom.js";

const ROW_H = 28;
const OVERSCAN = 8;
const MAX_H = 15 * ROW_H + 2;

/** One-line gist of an event, shown after its type. */
export function summarize(e) {
  switch (e.type) {
    case "run.started":
      return `${e.workflow ?? ""}${e.trigger ? ` (${e.trigger})` : ""} input ${truncate(compact(e.input), 80)}`;
    case "step.started":
      return `${e.name ?? e.step}${e.branch ? ` (${e.branch})` : ""} · attempt ${e.attempt}`;
    case "step.completed":
      return `${e.name ?? e.step} · ${formatDuration(e.duration_ms)} → ${truncate(compact(e.result), 80)}`;
    case "step.failed":
    case "step.retrying":
      return `${e.name ?? e.step} · ${e.error ? `${e.error.type ?? "Error"}: ${e.error.message ?? ""}` : ""}${e.type === "step.retrying" ? ` · retry in ${e.delay}s` : ""}`;
    case "step.output":
      return `${e.name ?? e.step} │ ${truncate((e.lines ?? []).map((l) => l.text).join(" ⏎ "), 100)}`;
    case "run.waiting":
      return `${e.reason} ${e.name ?? e.step}${e.event_type ? ` (type ${e.event_type})` : ""}${e.until ? ` until ${formatTime(e.until)}` : ""}`;
    case "input.requested":
      return String(e.prompt ?? "");
    case "input.received":
      return `${e.step} ← ${truncate(compact(e.value), 80)}`;
    case "event.received":
      return `${e.event_type} ${truncate(compact(e.payload), 80)}`;
    case "run.completed":
      return `→ ${truncate(compact(e.output), 100)}`;
    case "run.failed":
      return e.error ? `${e.error.type ?? "Error"}: ${e.error.message ?? ""}` : "";
    case "run.cancelled":
    case "run.paused":
      return String(e.reason ?? "");
    default:
      return "";
  }
}

function typeClass(type) {
  if (/failed|retrying/.test(type)) return "ev-bad";
  if (/completed/.test(type)) return "ev-good";
  if (/waiting|requested|paused/.test(type)) return "ev-wait";
  if (/cancelled/.test(type)) return "ev-muted";
  return "ev-info";
}

export class EventLog {
  /**
   * @param {HTMLElement} list   the #events element (the scroll container)
   * @param {HTMLElement} detail the pane showing the selected event
   * @param {{events: object[], onShowState(index: number): void}} opts
   */
  constructor(list, detail, { events, onShowState }) {
    this.list = list;
    this.detail = detail;
    this.events = events; // shared with the stream: appended to, never replaced
    this.onShowState = onShowState;
    this.filter = "";
    this.view = null; // indexes matching the filter, or null for all
    this.selected = -1; // index into this.events
    this.rows = new Map(); // position → row element
    this.follow = true; // keep the newest event in view until the user scrolls up

    list.setAttribute("role", "listbox");
    list.setAttribute("tabindex", "0");
    list.setAttribute("aria-label", "Events");
    this.spacer = h("div", { class: "ev-spacer" });
    setChildren(list, this.spacer);
    list.addEventListener("scroll", () => {
      this.follow = list.scrollTop + list.clientHeight >= list.scrollHeight - ROW_H;
      this.paint();
    }, { passive: true });
    list.addEventListener("click", (e) => {
      const row = e.target.closest(".ev-row");
      if (row) this.choose(Number(row.dataset.index), { focus: false });
    });
    list.addEventListener("keydown", (e) => this.key(e));
    this.resize = new ResizeObserver(() => this.paint());
    this.resize.observe(list);
    this.showDetail();
  }

  destroy() {
    this.resize.disconnect();
  }

  get length() {
    return this.view ? this.view.length : this.events.length;
  }

  indexAt(pos) {
    return this.view ? this.view[pos] : pos;
  }

  posOf(index) {
    if (!this.view) return index;
    // view is sorted: binary search
    let lo = 0;
    let hi = this.view.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.view[mid] === index) return mid;
      if (this.view[mid] < index) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  matches(e) {
    const f = this.filter;
    if (!f) return true;
    return e.type.toLowerCase().includes(f) || String(e.seq) === f ||
      String(e.step ?? e.name ?? e.event_type ?? "").toLowerCase().includes(f);
  }

  setFilter(text) {
    this.filter = text.trim().toLowerCase();
    if (!this.filter) this.view = null;
    else {
      this.view = [];
      this.events.forEach((e, i) => {
        if (this.matches(e)) this.view.push(i);
      });
    }
    this.clearRows();
    this.paint();
  }

  /** New events were appended to `events` (from index `from`). */
  appended(from) {
    if (this.view) {
      for (let i = from; i < this.events.length; i++) if (this.matches(this.events[i])) this.view.push(i);
    }
    this.paint();
    if (this.follow) this.list.scrollTop = this.list.scrollHeight;
  }

  clearRows() {
    for (const row of this.rows.values()) row.remove();
    this.rows.clear();
  }

  paint() {
    const n = this.length;
    this.spacer.style.height = n * ROW_H + "px";
    // A short log takes only the room it needs; a long one scrolls inside a fixed window.
    const want = Math.min(MAX_H, Math.max(n, 3) * ROW_H + 2);
    if (this.list.style.height !== want + "px") this.list.style.height = want + "px";
    const top = this.list.scrollTop;
    const height = this.list.clientHeight || 400;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(n - 1, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    for (const [pos, row] of this.rows) {
      if (pos < first || pos > last || Number(row.dataset.index) !== this.indexAt(pos)) {
        row.remove();
        this.rows.delete(pos);
      }
    }
    for (let pos = first; pos <= last; pos++) {
      let row = this.rows.get(pos);
      if (!row) {
        row = this.makeRow(pos);
        this.rows.set(pos, row);
        this.spacer.appendChild(row);
      }
      const selected = Number(row.dataset.index) === this.selected;
      row.classList.toggle("selected", selected);
      row.setAttribute("aria-selected", String(selected));
    }
    if (this.selected >= 0) this.list.setAttribute("aria-activedescendant", `ev-${this.events[this.selected]?.seq}`);
  }

  makeRow(pos) {
    const index = this.indexAt(pos);
    const e = this.events[index];
    const row = h("div", {
      class: "ev-row", role: "option", id: `ev-${e.seq}`, dataset: { index: String(index), seq: String(e.seq) },
      "aria-selected": "false",
    },
    h("span", { class: "ev-seq" }, String(e.seq)),
    h("span", { class: `ev-type ${typeClass(e.type)}` }, e.type),
    h("time", { class: "ev-time", datetime: e.at, title: `${e.at} (UTC)` }, formatTime(e.at, { millis: true })),
    h("span", { class: "ev-sum" }, summarize(e)));
    row.style.top = pos * ROW_H + "px";
    return row;
  }

  choose(index, { focus = true } = {}) {
    if (index < 0 || index >= this.events.length) return;
    this.selected = index;
    const pos = this.posOf(index);
    if (pos >= 0) {
      const top = pos * ROW_H;
      if (top < this.list.scrollTop) this.list.scrollTop = top;
      else if (top + ROW_H > this.list.scrollTop + this.list.clientHeight) this.list.scrollTop = top + ROW_H - this.list.clientHeight;
    }
    this.paint();
    this.showDetail();
    if (focus) this.list.focus({ preventScroll: true });
  }

  key(e) {
    const n = this.length;
    if (!n) return;
    let pos = this.selected >= 0 ? this.posOf(this.selected) : -1;
    const page = Math.max(1, Math.floor(this.list.clientHeight / ROW_H) - 1);
    switch (e.key) {
      case "ArrowDown": pos = Math.min(n - 1, pos + 1); break;
      case "ArrowUp": pos = Math.max(0, pos < 0 ? n - 1 : pos - 1); break;
      case "PageDown": pos = Math.min(n - 1, Math.max(pos, 0) + page); break;
      case "PageUp": pos = Math.max(0, pos - page); break;
      case "Home": pos = 0; break;
      case "End": pos = n - 1; break;
      case "Enter":
      case " ":
        if (pos < 0) pos = 0;
        break;
      case "Escape":
        this.selected = -1;
        this.paint();
        this.showDetail();
        e.preventDefault();
        return;
      default:
        return;
    }
    e.preventDefault();
    this.choose(this.indexAt(pos));
  }

  showDetail() {
    const e = this.events[this.selected];
    if (!e) {
      setChildren(this.detail, h("p", { class: "muted" }, "Select an event to see its JSON. Arrow keys move through the list."));
      return;
    }
    const index = this.selected;
    setChildren(this.detail,
      h("div", { class: "panel-head" },
        h("h3", null, `#${e.seq} `, h("span", { class: `ev-type ${typeClass(e.type)}` }, e.type)),
        h("button", { type: "button", class: "btn small", onclick: () => this.onShowState(index) }, "State after this event")),
      h("p", { class: "muted small" }, h("time", { datetime: e.at, title: `${e.at} (UTC)` }, formatTime(e.at))),
      jsonBlock(e, { label: "event JSON", max: 20000 }));
  }
}
