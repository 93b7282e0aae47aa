// The AI calls of one run (GET /ai/calls?run=ID): every run.ai call with its model, where the answer
// came from (the provider or the cache), tokens, latency and error. The card stays hidden until the
// run has made a call, and on a host without a call log (no D1 index).

import { api } from "./api.js";
import { h, setChildren } from "./dom.js";

const COLUMNS = ["Step", "Model", "Source", "Tokens in/out", "Latency", "Error"];

function tokens(call) {
  const show = (n) => (typeof n === "number" ? String(n) : "–");
  return `${show(call.prompt_tokens)} / ${show(call.completion_tokens)}`;
}

export function aiCallsCard(runId) {
  const body = h("tbody");
  const el = h("section", { id: "ai-calls", class: "card", "aria-labelledby": "ai-title", hidden: true },
    h("h2", { id: "ai-title" }, "AI calls"),
    h("div", { class: "ai-calls-wrap" },
      h("table", { class: "ai-calls" },
        h("thead", null, h("tr", null, ...COLUMNS.map((c) => h("th", { scope: "col" }, c)))), body)));
  let asking = false;
  let again = false;

  async function refresh() {
    if (asking) {
      again = true; // one more read once this one answered: the newest calls are never missed
      return;
    }
    asking = true;
    try {
      const data = await api(`/ai/calls?run=${encodeURIComponent(runId)}&limit=500`, { quiet401: true });
      const calls = data && Array.isArray(data.calls) ? data.calls.slice().reverse() : []; // oldest first
      el.hidden = calls.length === 0;
      setChildren(body, calls.map((call) => h("tr", { class: call.error ? "ai-error" : null },
        h("td", null, h("code", null, String(call.step))),
        h("td", null, String(call.model)),
        h("td", null, call.cached ? "cache" : String(call.provider)),
        h("td", null, tokens(call)),
        h("td", null, `${Math.round(Number(call.latency_ms) || 0)} ms`),
        h("td", null, call.error ? String(call.error) : ""))));
    } catch {
      // no call log on this host, or a transient failure: the next refresh tries again
    } finally {
      asking = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  return { el, refresh };
}
