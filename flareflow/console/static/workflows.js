// The workflows this deployment declares, each with a "Start run" form.

import { api, errorText } from "./api.js";
import { h, setChildren } from "./dom.js";

function inputNote(wf) {
  if (wf.takes_input === false) return "Takes no input.";
  if (wf.input_required) return "Needs an input (JSON).";
  return "Input is optional (JSON).";
}

export function mountWorkflows(root, { workflows, reloadWorkflows }) {
  let destroyed = false;
  let openFor = null; // name of the workflow whose start form is open
  const list = h("ul", { id: "workflows", class: "workflows" });
  const status = h("p", { class: "muted", "aria-live": "polite" }, "Loading workflows…");
  const errorBox = h("p", { class: "banner error", hidden: true, role: "alert" });
  setChildren(root,
    h("div", { class: "view-head" }, h("h1", null, "Workflows")),
    errorBox, status, list);

  function startForm(wf, li, button) {
    const noInput = wf.takes_input === false;
    const input = h("textarea", {
      id: "start-input", rows: "5", class: "mono", spellcheck: "false", disabled: noInput,
      placeholder: noInput ? "This workflow takes no input." : wf.input_required ? '{"email": "ada@example.com"}' : "Empty: no input",
      "aria-describedby": "start-input-hint",
    });
    const key = h("input", { id: "start-key", type: "text", autocomplete: "off", spellcheck: "false", maxlength: "256", placeholder: "e.g. order-1234" });
    const submit = h("button", { id: "start-submit", type: "submit", class: "btn primary" }, "Start run");
    const cancel = h("button", { type: "button", class: "btn ghost" }, "Close");
    const error = h("p", { id: "start-error", class: "form-error", role: "alert", hidden: true });
    const form = h("form", { class: "start-form", novalidate: true, "aria-label": `Start a run of ${wf.name}` },
      h("div", { class: "field" },
        h("label", { for: "start-input", class: "label" }, "Input"),
        input,
        h("p", { id: "start-input-hint", class: "field-hint" }, inputNote(wf),
          noInput || wf.input_required ? "" : " Leave it empty to start without input.")),
      h("div", { class: "field" },
        h("label", { for: "start-key", class: "label" }, "Idempotency key ", h("span", { class: "muted" }, "(optional)")),
        key,
        h("p", { class: "field-hint" }, "Starting twice with the same key returns the first run instead of a new one.")),
      h("div", { class: "row" }, submit, cancel),
      error);
    const showError = (text, focus) => {
      error.textContent = text;
      error.hidden = false;
      if (focus) focus.focus();
    };
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.hidden = true;
      input.removeAttribute("aria-invalid");
      const body = { workflow: wf.name };
      const raw = input.value.trim();
      if (raw && !noInput) {
        try {
          body.input = JSON.parse(raw);
        } catch (err) {
          input.setAttribute("aria-invalid", "true");
          showError(`The input is not valid JSON: ${err.message}.`, input);
          return;
        }
      }
      const idem = key.value.trim();
      if (idem) body.idempotency_key = idem;
      submit.disabled = true;
      submit.textContent = "Starting…";
      try {
        const run = await api("/runs", { method: "POST", body });
        if (destroyed) return;
        location.hash = `#/runs/${run.id}`;
      } catch (err) {
        if (destroyed) return;
        if (err.field === "input") input.setAttribute("aria-invalid", "true");
        showError(errorText(err), err.field === "input" ? input : err.field === "idempotency_key" ? key : null);
      } finally {
        submit.disabled = false;
        submit.textContent = "Start run";
      }
    });
    cancel.addEventListener("click", () => {
      close();
      button.focus();
    });
    form.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        close();
        button.focus();
      }
    });
    const close = () => {
      form.remove();
      button.setAttribute("aria-expanded", "false");
      li.classList.remove("open");
      openFor = null;
    };
    return form;
  }

  function render(items) {
    status.hidden = items.length > 0;
    if (!items.length) status.textContent = "This deployment declares no workflows.";
    setChildren(list, items.map((wf) => {
      const button = h("button", { type: "button", class: "btn primary small", "aria-expanded": "false" }, "Start run");
      const li = h("li", { class: "card workflow", dataset: { workflow: wf.name } },
        h("div", { class: "wf-head" },
          h("div", { class: "wf-title" },
            h("h2", null, wf.name),
            wf.schedule ? h("span", { class: "chip", title: "Runs on this cron schedule (UTC)" }, "cron ", h("code", null, wf.schedule), " UTC") : null),
          h("div", { class: "wf-actions" },
            h("a", { class: "btn ghost small", href: `#/runs?workflow=${encodeURIComponent(wf.name)}` }, "Runs"),
            button)),
        wf.description ? h("p", { class: "wf-desc" }, wf.description) : h("p", { class: "wf-desc muted" }, "No description."),
        h("p", { class: "muted small" }, inputNote(wf)));
      button.addEventListener("click", () => {
        const existing = document.querySelector(".start-form");
        const wasOpen = openFor === wf.name;
        if (existing) {
          existing.remove();
          list.querySelectorAll("li.open").forEach((x) => x.classList.remove("open"));
          list.querySelectorAll("[aria-expanded=true]").forEach((x) => x.setAttribute("aria-expanded", "false"));
          openFor = null;
        }
        if (wasOpen) return;
        openFor = wf.name;
        li.classList.add("open");
        button.setAttribute("aria-expanded", "true");
        li.appendChild(startForm(wf, li, button));
        const first = li.querySelector("#start-input:not([disabled])") || li.querySelector("#start-key");
        first.focus();
      });
      return li;
    }));
  }

  reloadWorkflows();
  workflows().then((items) => {
    if (!destroyed) render(items);
  }).catch((err) => {
    if (destroyed) return;
    status.hidden = true;
    errorBox.textContent = errorText(err);
    errorBox.hidden = false;
  });

  return () => {
    destroyed = true;
  };
}
