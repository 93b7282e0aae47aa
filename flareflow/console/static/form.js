// Forms generated from an answer's JSON schema (the subset flareflow.engine.schema accepts).
//
// Every field knows its path in the server's notation (`$`, `$.age`, `$["first name"]`,
// `$.tags[2]`), so an error the server reports as "answer rejected: $.age: must be >= 0" lands
// next to the field it names. Client-side checks mirror the server's wording where they can, but
// the server stays the judge: its message is always shown.

import { h } from "./dom.js";

let uid = 0;
const nextId = (base) => `${base}-${++uid}`;

/** The server's child path: `.name` for identifiers, `["…"]` (JSON) otherwise. */
export function childPath(path, key) {
  return /^[\p{L}_][\p{L}\p{N}_]*$/u.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** Split "$.a[0][\"b c\"]" into ["$", "$.a", "$.a[0]", "$.a[0][\"b c\"]"] (prefixes, shortest first). */
export function pathPrefixes(path) {
  const out = ["$"];
  let i = 1;
  while (i < path.length) {
    if (path[i] === ".") {
      const m = /^\.[\p{L}_][\p{L}\p{N}_]*/u.exec(path.slice(i));
      if (!m) break;
      i += m[0].length;
    } else if (path[i] === "[") {
      if (path[i + 1] === '"') {
        // JSON string: find its closing quote, skipping escapes
        let j = i + 2;
        while (j < path.length && path[j] !== '"') j += path[j] === "\\" ? 2 : 1;
        if (path[j + 1] !== "]") break;
        i = j + 2;
      } else {
        const m = /^\[\d+\]/.exec(path.slice(i));
        if (!m) break;
        i += m[0].length;
      }
    } else break;
    out.push(path.slice(0, i));
  }
  return out;
}

/** "answer rejected: $.age: must be >= 0, got -1" → {path: "$.age", problem: "must be >= 0, got -1"}. */
export function parseRejection(message) {
  const text = String(message || "");
  const start = text.indexOf("$");
  if (start < 0) return null;
  const rest = text.slice(start);
  const prefixes = pathPrefixes(rest);
  // The longest prefix followed by ": " is the path.
  for (let k = prefixes.length - 1; k >= 0; k--) {
    const p = prefixes[k];
    if (rest.startsWith(p + ": ")) {
      const problem = rest.slice(p.length + 2).replace(/\.$/, "");
      return { path: p, problem };
    }
  }
  return null;
}

const typesOf = (schema) => (Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : []);

function labelText(schema, fallback) {
  return schema.title || fallback;
}

function describe(schema) {
  const hints = [];
  if (schema.minLength !== undefined && schema.maxLength !== undefined) hints.push(`${schema.minLength}–${schema.maxLength} characters`);
  else if (schema.minLength !== undefined) hints.push(`at least ${schema.minLength} character${schema.minLength === 1 ? "" : "s"}`);
  else if (schema.maxLength !== undefined) hints.push(`at most ${schema.maxLength} characters`);
  if (schema.minimum !== undefined && schema.maximum !== undefined) hints.push(`${schema.minimum} to ${schema.maximum}`);
  else if (schema.minimum !== undefined) hints.push(`≥ ${schema.minimum}`);
  else if (schema.maximum !== undefined) hints.push(`≤ ${schema.maximum}`);
  if (schema.pattern) hints.push(`pattern ${schema.pattern}`);
  if (schema.minItems !== undefined) hints.push(`at least ${schema.minItems} item${schema.minItems === 1 ? "" : "s"}`);
  if (schema.maxItems !== undefined) hints.push(`at most ${schema.maxItems} items`);
  return [schema.description, hints.join(", ")].filter(Boolean).join(" — ");
}

const showJSON = (v) => JSON.stringify(v);

/**
 * Build a field for `schema` at `path`.
 * Returns {el, read(): {value} | {missing: true} (throws FieldError on invalid input), fields: Map path→wrapper}.
 */
export class FieldError extends Error {
  constructor(path, message) {
    super(message);
    this.path = path;
  }
}

function wrapper(path, labelEl, control, hint, { required, inline = false } = {}) {
  // At the root the question's prompt (the legend) already labels the field: keep the label for
  // screen readers only.
  if (path === "$" && labelEl) labelEl.classList.add("sr-only");
  const error = h("p", { class: "field-error", hidden: true, "aria-live": "polite" });
  const hintEl = hint ? h("p", { class: "field-hint", id: nextId("hint") }, hint) : null;
  if (hintEl && control && control.setAttribute) control.setAttribute("aria-describedby", hintEl.id);
  const el = h("div", { class: `field${inline ? " field-inline" : ""}`, dataset: { path } }, labelEl, control, hintEl, error);
  if (required && labelEl) labelEl.appendChild(h("span", { class: "req", "aria-hidden": "true" }, " *"));
  return el;
}

function buildField(schema, path, name, { required = false, registry }) {
  schema = schema && typeof schema === "object" ? schema : {};
  const fieldName = path === "$" ? "answer" : path.replace(/^\$\.?/, "");
  const types = typesOf(schema);
  const id = nextId("f");
  const title = labelText(schema, name);
  const hint = describe(schema);
  const make = (field) => {
    registry.set(path, field.el);
    return field;
  };

  if (schema.const !== undefined) {
    return make({ el: wrapper(path, h("span", { class: "label" }, title), h("code", null, showJSON(schema.const)), hint, {}), read: () => ({ value: schema.const }) });
  }

  if (Array.isArray(schema.enum)) {
    const options = schema.enum;
    const group = nextId("enum");
    const labelledBy = nextId("lbl");
    let control;
    let read;
    if (options.length <= 6) {
      const radios = options.map((opt, i) => {
        const input = h("input", { type: "radio", name: `${fieldName}~${group}`, id: `${group}-${i}`, value: String(i), checked: schema.default !== undefined && JSON.stringify(schema.default) === JSON.stringify(opt) });
        return h("label", { class: "choice", for: `${group}-${i}` }, input, typeof opt === "string" ? opt : showJSON(opt));
      });
      control = h("div", { class: "choices", role: "radiogroup", "aria-labelledby": labelledBy, "aria-required": required ? "true" : null }, radios);
      read = () => {
        const checked = control.querySelector("input:checked");
        return checked ? { value: options[Number(checked.value)] } : { missing: true };
      };
    } else {
      control = h("select", { id, name: fieldName }, h("option", { value: "" }, "Choose…"),
        options.map((opt, i) => h("option", { value: String(i) }, typeof opt === "string" ? opt : showJSON(opt))));
      read = () => (control.value === "" ? { missing: true } : { value: options[Number(control.value)] });
    }
    const label = h("span", { class: "label", id: labelledBy }, title);
    if (control.tagName === "SELECT") control.setAttribute("aria-labelledby", labelledBy);
    return make({ el: wrapper(path, label, control, hint, { required }), read });
  }

  const type = types.length === 1 ? types[0] : types.length === 2 && types.includes("null") ? types.find((t) => t !== "null") : null;

  if (type === "boolean") {
    const group = nextId("bool");
    const labelledBy = nextId("lbl");
    const yes = h("input", { type: "radio", name: `${fieldName}~${group}`, id: `${group}-y`, value: "true", checked: schema.default === true });
    const no = h("input", { type: "radio", name: `${fieldName}~${group}`, id: `${group}-n`, value: "false", checked: schema.default === false });
    const control = h("div", { class: "choices", role: "radiogroup", "aria-labelledby": labelledBy },
      h("label", { class: "choice", for: yes.id }, yes, "Yes"), h("label", { class: "choice", for: no.id }, no, "No"));
    return make({
      el: wrapper(path, h("span", { class: "label", id: labelledBy }, title), control, hint, { required }),
      read: () => (yes.checked ? { value: true } : no.checked ? { value: false } : { missing: true }),
    });
  }

  if (type === "string") {
    const long = schema.maxLength === undefined || schema.maxLength > 120;
    const input = long
      ? h("textarea", { id, name: fieldName, rows: "2", maxlength: schema.maxLength, minlength: schema.minLength })
      : h("input", { id, name: fieldName, type: "text", maxlength: schema.maxLength, minlength: schema.minLength, autocomplete: "off" });
    if (typeof schema.default === "string") input.value = schema.default;
    if (required) input.setAttribute("aria-required", "true");
    return make({
      el: wrapper(path, h("label", { for: id, class: "label" }, title), input, hint, { required }),
      read: () => {
        const v = input.value;
        if (v === "" && !required) return { missing: true }; // an optional field left empty is omitted
        if (schema.minLength !== undefined && [...v].length < schema.minLength) throw new FieldError(path, `Must be at least ${schema.minLength} character${schema.minLength === 1 ? "" : "s"} long.`);
        if (schema.maxLength !== undefined && [...v].length > schema.maxLength) throw new FieldError(path, `Must be at most ${schema.maxLength} characters long.`);
        if (schema.pattern) {
          let re = null;
          try {
            re = new RegExp(schema.pattern, "u");
          } catch {
            re = null; // a pattern JavaScript cannot read: leave it to the server
          }
          if (re && !re.test(v)) throw new FieldError(path, `Must match the pattern ${schema.pattern}.`);
        }
        return { value: v };
      },
    });
  }

  if (type === "number" || type === "integer") {
    const input = h("input", {
      id, name: fieldName, type: "number", inputmode: type === "integer" ? "numeric" : "decimal",
      step: type === "integer" ? "1" : "any", min: schema.minimum, max: schema.maximum,
    });
    if (typeof schema.default === "number") input.value = String(schema.default);
    if (required) input.setAttribute("aria-required", "true");
    return make({
      el: wrapper(path, h("label", { for: id, class: "label" }, title), input, hint, { required }),
      read: () => {
        const raw = input.value.trim();
        if (raw === "") {
          if (input.validity && input.validity.badInput) throw new FieldError(path, "Enter a number.");
          return { missing: true };
        }
        const v = Number(raw);
        if (!Number.isFinite(v)) throw new FieldError(path, "Enter a number.");
        if (type === "integer" && !Number.isInteger(v)) throw new FieldError(path, "Enter a whole number.");
        if (schema.minimum !== undefined && v < schema.minimum) throw new FieldError(path, `Must be at least ${schema.minimum}.`);
        if (schema.maximum !== undefined && v > schema.maximum) throw new FieldError(path, `Must be at most ${schema.maximum}.`);
        return { value: v };
      },
    });
  }

  if (type === "null") {
    return make({ el: wrapper(path, h("span", { class: "label" }, title), h("code", null, "null"), hint, {}), read: () => ({ value: null }) });
  }

  if (type === "object" && schema.properties && typeof schema.properties === "object") {
    const req = new Set(Array.isArray(schema.required) ? schema.required : []);
    const children = Object.entries(schema.properties).map(([key, sub]) => ({
      key,
      field: buildField(sub, childPath(path, key), key, { required: req.has(key), registry }),
    }));
    const legend = path === "$" ? null : h("legend", null, title);
    const fieldset = h("fieldset", { class: "object" }, legend, hint ? h("p", { class: "field-hint" }, hint) : null,
      children.map((c) => c.field.el), h("p", { class: "field-error", hidden: true, "aria-live": "polite" }));
    fieldset.dataset.path = path;
    registry.set(path, fieldset);
    return {
      el: fieldset,
      read: () => {
        const read = children.map(({ key, field }) => ({ key, r: field.read() }));
        if (!required && read.every(({ r }) => r.missing)) return { missing: true };
        const out = {};
        for (const { key, r } of read) {
          if (!r.missing) out[key] = r.value;
          else if (req.has(key) && typesOf(schema.properties[key] || {}).includes("null")) out[key] = null;
          else if (req.has(key)) throw new FieldError(childPath(path, key), "This field is required.");
        }
        return { value: out };
      },
    };
  }

  if (type === "array" && schema.items && typeof schema.items === "object" && !Array.isArray(schema.items)) {
    const list = h("ol", { class: "array-items" });
    const items = [];
    const addBtn = h("button", { type: "button", class: "btn small" }, "Add item");
    const renumber = () => {
      // Paths follow positions, so removing item 1 makes item 2 the new "[1]": rebuild the paths.
      items.forEach((item, i) => {
        item.li.querySelector(".item-label").textContent = `Item ${i + 1}`;
        item.remove.setAttribute("aria-label", `Remove item ${i + 1}`);
      });
      addBtn.disabled = schema.maxItems !== undefined && items.length >= schema.maxItems;
    };
    const rebuildRegistry = () => {
      for (const key of [...registry.keys()]) if (key.startsWith(path + "[")) registry.delete(key);
      items.forEach((item, i) => {
        // Re-register under the new index; a rebuilt subtree would lose what was typed, so
        // only the wrapper elements' paths are updated.
        const prefix = item.path;
        const next = `${path}[${i}]`;
        item.li.querySelectorAll("[data-path]").forEach((el) => {
          el.dataset.path = next + el.dataset.path.slice(prefix.length);
          registry.set(el.dataset.path, el);
        });
        item.path = next;
      });
    };
    const add = () => {
      const i = items.length;
      const itemPath = `${path}[${i}]`;
      const field = buildField(schema.items, itemPath, `Item ${i + 1}`, { required: true, registry });
      const remove = h("button", { type: "button", class: "btn small ghost" }, "Remove");
      const li = h("li", { class: "array-item" }, h("div", { class: "item-head" }, h("span", { class: "item-label muted small" }, `Item ${i + 1}`), remove), field.el);
      const item = { li, field, remove, path: itemPath, builtPath: itemPath };
      remove.addEventListener("click", () => {
        items.splice(items.indexOf(item), 1);
        li.remove();
        rebuildRegistry();
        renumber();
        addBtn.focus();
      });
      items.push(item);
      list.appendChild(li);
      renumber();
      return field;
    };
    addBtn.addEventListener("click", () => {
      add();
      const first = list.lastElementChild && list.lastElementChild.querySelector("input, select, textarea");
      if (first) first.focus();
    });
    for (let i = 0; i < (schema.minItems || 0); i++) add();
    const legend = path === "$" ? null : h("legend", null, title);
    const fieldset = h("fieldset", { class: "array" }, legend, hint ? h("p", { class: "field-hint" }, hint) : null, list, addBtn,
      h("p", { class: "field-error", hidden: true, "aria-live": "polite" }));
    fieldset.dataset.path = path;
    registry.set(path, fieldset);
    return {
      el: fieldset,
      read: () => {
        const out = [];
        if (!required && !items.length) return { missing: true };
        items.forEach((item, i) => {
          let r;
          try {
            r = item.field.read();
          } catch (err) {
            // the item's fields name the path it was built at; after removals it sits at [i]
            if (err instanceof FieldError && err.path.startsWith(item.builtPath)) {
              throw new FieldError(`${path}[${i}]` + err.path.slice(item.builtPath.length), err.message);
            }
            throw err;
          }
          if (r.missing) throw new FieldError(`${path}[${i}]`, "Fill in this item or remove it.");
          out.push(r.value);
        });
        if (schema.minItems !== undefined && out.length < schema.minItems) throw new FieldError(path, `Add at least ${schema.minItems} item${schema.minItems === 1 ? "" : "s"}.`);
        if (schema.maxItems !== undefined && out.length > schema.maxItems) throw new FieldError(path, `At most ${schema.maxItems} items.`);
        return { value: out };
      },
    };
  }

  // Anything else (several types, no type, free-form objects): JSON typed by hand.
  const area = h("textarea", { id, name: fieldName, rows: "4", class: "mono", spellcheck: "false", placeholder: "JSON, e.g. {\"key\": \"value\"}" });
  if (schema.default !== undefined) area.value = JSON.stringify(schema.default, null, 2);
  return make({
    el: wrapper(path, h("label", { for: id, class: "label" }, title, types.length ? ` (${types.join(" or ")}, as JSON)` : " (JSON)"), area, hint, { required }),
    read: () => {
      const raw = area.value.trim();
      if (raw === "") return { missing: true };
      try {
        return { value: JSON.parse(raw) };
      } catch (err) {
        throw new FieldError(path, `This is not valid JSON (${err.message}).`);
      }
    },
  });
}

/**
 * The form controls for a schema. `onAnswer(value)` is called for one-click answers (a plain
 * boolean question gets Yes/No buttons that send at once).
 * Returns {el, read() → value (throws FieldError), showError(path, text), clearErrors(), quick: bool}.
 */
export function schemaForm(schema, { onAnswer }) {
  const registry = new Map();
  schema = schema && typeof schema === "object" ? schema : null;
  const clearErrors = () => {
    for (const el of registry.values()) {
      const p = el.querySelector(":scope > .field-error");
      if (p) {
        p.textContent = "";
        p.hidden = true;
      }
      el.classList.remove("invalid");
    }
  };
  const showError = (path, text) => {
    // The nearest field the path (or one of its parents) names.
    const prefixes = pathPrefixes(path || "$");
    for (let k = prefixes.length - 1; k >= 0; k--) {
      const el = registry.get(prefixes[k]);
      if (!el) continue;
      const p = el.querySelector(":scope > .field-error");
      if (!p) continue;
      p.textContent = text;
      p.hidden = false;
      el.classList.add("invalid");
      const control = el.querySelector("input, select, textarea");
      if (control) {
        control.setAttribute("aria-invalid", "true");
        control.focus();
      }
      return true;
    }
    return false;
  };

  if (schema && schema.type === "boolean" && schema.enum === undefined && schema.const === undefined) {
    const yes = h("button", { type: "button", class: "btn primary", dataset: { answer: "true" }, onclick: () => onAnswer(true) }, "Yes");
    const no = h("button", { type: "button", class: "btn", dataset: { answer: "false" }, onclick: () => onAnswer(false) }, "No");
    const errorP = h("p", { class: "field-error", hidden: true, "aria-live": "polite" });
    const el = h("div", { class: "field", dataset: { path: "$" } }, h("div", { class: "answer-buttons" }, yes, no), errorP);
    registry.set("$", el);
    return { el, read: () => { throw new FieldError("$", "Choose Yes or No."); }, showError, clearErrors, quick: true };
  }
  const root = schema ? buildField(schema, "$", "Answer", { required: true, registry }) : buildField({}, "$", "Answer", { required: true, registry });
  return {
    el: root.el,
    read: () => {
      const r = root.read();
      if (r.missing) {
        if (schema && typesOf(schema).includes("null")) return null;
        throw new FieldError("$", "Give an answer first.");
      }
      return r.value;
    },
    showError,
    clearErrors,
    quick: false,
  };
}
