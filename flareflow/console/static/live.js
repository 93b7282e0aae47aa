// A run's event stream: history over HTTP, then live over WebSocket (SSE as the fallback).
//
// The stream holds the gapless, ordered list of events the console knows for one run. Every
// source (history pages, socket frames, SSE messages, gap fetches) goes through `accept`, which is
// the one place that enforces "each seq once, in order": anything at or below the last seq is a
// duplicate from a reconnect and is dropped; anything beyond last+1 means we missed something, so
// it is parked until the gap has been fetched over HTTP. Consumers get batches once per animation
// frame, so a run emitting hundreds of events a second costs one render per frame, not per event.

import { api, getToken, runPath, ApiError } from "./api.js";

const PAGE = 10000;
// A socket that closes within this long of opening did not prove the server healthy: keep backing off.
const STABLE_MS = 3000;
const TERMINAL = new Set(["run.completed", "run.failed", "run.cancelled"]);
// SSE delivers named events (`event: step.started`); EventSource only calls listeners registered
// for that exact name, so every type is listed here (and "message" for unnamed frames).
const EVENT_TYPES = [
  "run.started", "step.started", "step.completed", "step.failed", "step.retrying", "step.output", "run.waiting",
  "input.requested", "input.received", "event.received", "run.completed", "run.failed",
  "run.cancelled", "run.paused", "run.resumed", "run.retried", "message",
];

export const CONNECTING = "connecting…";
export const LIVE = "live";
export const RECONNECTING = "reconnecting…";
export const LIVE_SSE = "live (SSE)";
export const FINISHED = "finished";
export const OFFLINE = "offline";

export class RunStream {
  /**
   * @param {string} runId
   * @param {{onEvents(batch: object[]): void, onConnection(text: string): void, onError(err): void}} handlers
   */
  constructor(runId, handlers) {
    this.runId = runId;
    this.handlers = handlers;
    this.events = [];
    this.lastSeq = 0;
    this.finished = false;
    this.stopped = false;
    this.connection = "";
    this.pending = []; // accepted, not yet handed to the view
    this.parked = new Map(); // seq → event that arrived ahead of a gap
    this.gapFetch = null;
    this.frame = 0;
    this.ws = null;
    this.sse = null;
    this.retryTimer = 0;
    this.gapTimer = 0;
    this.stableTimer = 0;
    this.attempt = 0; // bumped by every reconnect, so a superseded one never opens a second socket
    this.backoff = 500;
    this.failedOpens = 0; // consecutive WebSocket attempts that never opened
    this.mode = typeof WebSocket === "function" ? "ws" : "sse";
    this.onOnline = () => {
      if (!this.stopped && !this.finished && this.connection === OFFLINE) this.reconnectNow();
    };
    window.addEventListener("online", this.onOnline);
    // A phone that slept or changed networks may hold a socket that is silently dead: on coming
    // back, catch up over HTTP (gap-safe through `accept`) and reconnect unless a stream is open.
    this.onVisible = () => {
      if (document.visibilityState !== "visible" || this.stopped || this.finished) return;
      const open = (this.ws && this.ws.readyState === WebSocket.OPEN) || (this.sse && this.sse.readyState === 1);
      if (!open) this.reconnectNow();
      else this.fetchAfter(this.lastSeq).then(() => this.flushNow(), (err) => this.handlers.onError(err));
    };
    document.addEventListener("visibilitychange", this.onVisible);
  }

  /** Load the whole history, then follow live (unless the run already finished). */
  async start() {
    this.setConnection(CONNECTING);
    try {
      await this.fetchAfter(this.lastSeq);
    } catch (err) {
      if (this.stopped) return;
      this.handlers.onError(err);
      if (err instanceof ApiError && (err.status === 401 || err.status === 404)) this.setConnection(OFFLINE);
      else this.scheduleReconnect();
      return;
    }
    this.flushNow();
    if (this.finished) this.setConnection(FINISHED);
    else this.connect();
  }

  /** Follow again after the run was reopened (a retry): catch up, then live. */
  follow() {
    if (this.stopped) return;
    this.finished = false;
    this.reconnectNow();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    document.removeEventListener("visibilitychange", this.onVisible);
    clearTimeout(this.retryTimer);
    clearTimeout(this.gapTimer);
    clearTimeout(this.stableTimer);
    cancelAnimationFrame(this.frame);
    this.closeSockets();
  }

  seqs() {
    return this.events.map((e) => e.seq);
  }

  // --- ordering -------------------------------------------------------------------------------

  /** Fetch every event after `seq` over HTTP, paging until a short page. */
  async fetchAfter(seq) {
    let after = seq;
    for (;;) {
      const data = await api(runPath(this.runId, `/events?after=${after}&limit=${PAGE}`));
      if (this.stopped) return;
      const events = Array.isArray(data && data.events) ? data.events : [];
      for (const event of events) this.accept(event, { fromFetch: true });
      if (events.length < PAGE) return;
      after = events[events.length - 1].seq;
    }
  }

  accept(event, { fromFetch = false } = {}) {
    if (!event || typeof event.seq !== "number") return;
    if (event.seq <= this.lastSeq) return; // already held: a replay after a reconnect
    if (event.seq > this.lastSeq + 1) {
      this.parked.set(event.seq, event);
      if (!fromFetch) this.fillGap();
      return;
    }
    this.take(event);
    // The event may have closed a gap: drain whatever was parked behind it.
    while (this.parked.has(this.lastSeq + 1)) {
      const next = this.parked.get(this.lastSeq + 1);
      this.parked.delete(this.lastSeq + 1);
      this.take(next);
    }
    for (const seq of this.parked.keys()) if (seq <= this.lastSeq) this.parked.delete(seq);
  }

  take(event) {
    this.events.push(event);
    this.pending.push(event);
    this.lastSeq = event.seq;
    // the latest event decides: a retried run has a terminal event followed by run.retried
    this.finished = TERMINAL.has(event.type);
    this.scheduleFlush();
  }

  /** A seq arrived beyond last+1: fetch the missing range over HTTP (once at a time). */
  fillGap() {
    if (this.gapFetch) return;
    this.gapFetch = this.fetchAfter(this.lastSeq)
      .catch((err) => this.handlers.onError(err))
      .finally(() => {
        this.gapFetch = null;
        if (this.parked.size && !this.stopped) {
          // The HTTP answer did not reach the parked seqs yet (they were written after it); try again shortly.
          clearTimeout(this.gapTimer);
          this.gapTimer = setTimeout(() => this.fillGap(), 250);
        }
      });
  }

  scheduleFlush() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.flushNow();
    });
  }

  flushNow() {
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    if (!this.pending.length || this.stopped) return;
    const batch = this.pending;
    this.pending = [];
    this.handlers.onEvents(batch);
    if (this.finished) {
      this.closeSockets();
      this.setConnection(FINISHED);
    }
  }

  setConnection(text) {
    if (this.connection === text) return;
    this.connection = text;
    this.handlers.onConnection(text);
  }

  // --- transports -----------------------------------------------------------------------------

  connect() {
    if (this.stopped || this.finished) return;
    if (typeof navigator !== "undefined" && navigator.onLine === false) {
      this.setConnection(OFFLINE);
      return; // the "online" listener reconnects
    }
    if (this.mode === "ws") this.openSocket();
    else this.openEventSource();
  }

  tokenParam() {
    return encodeURIComponent(getToken() || "");
  }

  openSocket() {
    this.closeSockets(); // never two at once: a late reconnect replaces, it does not add
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}${runPath(this.runId, "/ws")}?after=${this.lastSeq}&token=${this.tokenParam()}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.mode = "sse";
      this.openEventSource();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.failedOpens = 0;
      // the backoff resets once the socket proves itself (a message, or STABLE_MS open), not on
      // open alone: a server that accepts and drops at once must not be hammered every 0.5 s
      clearTimeout(this.stableTimer);
      this.stableTimer = setTimeout(() => { this.backoff = 500; }, STABLE_MS);
      this.setConnection(LIVE);
    };
    ws.onmessage = (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      // Error frames answer client frames; the console acts over HTTP, so they only get logged.
      if (data && data.type === "error" && data.seq === undefined) {
        console.warn("flareflow: socket error frame", data.error);
        return;
      }
      this.backoff = 500;
      this.accept(data);
    };
    ws.onclose = (close) => {
      if (this.ws !== ws) return; // replaced or stopped on purpose
      this.ws = null;
      clearTimeout(this.stableTimer);
      if (this.stopped) return;
      if (close.code === 1000 && (/finished/i.test(close.reason || "") || this.finished)) {
        // The server is done: it sent the terminal event (maybe still in flight in this batch).
        this.finished = true;
        this.flushNow();
        this.setConnection(FINISHED);
        return;
      }
      if (!opened) {
        this.failedOpens += 1;
        if (this.failedOpens >= 2) {
          this.mode = "sse"; // sockets never open here (a proxy that drops upgrades): use SSE
          this.backoff = 500;
        }
      }
      this.scheduleReconnect();
    };
  }

  openEventSource() {
    if (typeof EventSource !== "function") {
      this.setConnection(OFFLINE);
      return;
    }
    const url = `${runPath(this.runId, "/events")}?after=${this.lastSeq}&follow=true&token=${this.tokenParam()}`;
    const source = new EventSource(url);
    this.sse = source;
    const onMessage = (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      this.accept(data);
      if (this.finished) {
        // The server ends the stream after the terminal event; EventSource would reconnect forever.
        source.close();
        if (this.sse === source) this.sse = null;
        this.flushNow();
        this.setConnection(FINISHED);
      }
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, onMessage);
    source.onopen = () => {
      this.backoff = 500;
      this.setConnection(LIVE_SSE);
    };
    source.onerror = () => {
      if (this.sse !== source || this.stopped || this.finished) return;
      if (source.readyState === EventSource.CLOSED) {
        // A refused request (401, 404, not an event stream): EventSource gives up; we retry on our terms.
        this.sse = null;
        this.scheduleReconnect();
      } else {
        this.setConnection(RECONNECTING); // EventSource reconnects by itself with Last-Event-ID
      }
    };
  }

  closeSockets() {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = null;
      try {
        ws.close(1000, "done");
      } catch {
        /* already closing */
      }
    }
    if (this.sse) {
      this.sse.close();
      this.sse = null;
    }
  }

  /** Exponential backoff, 0.5 s doubling to 10 s, with ±25 % jitter so tabs do not stampede a restarted server. */
  scheduleReconnect() {
    if (this.stopped || this.finished) return;
    clearTimeout(this.retryTimer);
    this.setConnection(typeof navigator !== "undefined" && navigator.onLine === false ? OFFLINE : RECONNECTING);
    const delay = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, 10000);
    this.retryTimer = setTimeout(() => this.reconnectNow(), delay);
  }

  async reconnectNow() {
    clearTimeout(this.retryTimer);
    if (this.stopped || this.finished) return;
    const attempt = ++this.attempt;
    this.closeSockets();
    if (this.connection !== OFFLINE) this.setConnection(RECONNECTING);
    // Ask over HTTP first: it tells a refused token (401 → login) and a gone run apart, which a
    // failed socket cannot, and it catches up on whatever we missed while away.
    try {
      await this.fetchAfter(this.lastSeq);
    } catch (err) {
      if (this.stopped || attempt !== this.attempt) return;
      if (err instanceof ApiError && (err.status === 401 || err.status === 404)) {
        this.handlers.onError(err);
        this.setConnection(OFFLINE);
        return; // nothing a retry could fix
      }
      this.scheduleReconnect(); // the server is down or busy: keep trying, backing off
      return;
    }
    if (attempt !== this.attempt) return; // a newer reconnect took over while this one fetched
    this.flushNow();
    if (this.finished) this.setConnection(FINISHED);
    else this.connect();
  }
}
