// RFC 6902 JSON Patch over plain JSON values, persistent: `apply` never mutates its input.
//
// The state slider keeps one version of the run's state per patch; copying the whole document
// for every version would make a 10,000-event run cost gigabytes, so only the containers along
// each changed path are copied and everything else is shared between versions. Shared subtrees
// are safe because no code mutates a version after it was produced: every write goes through
// `setIn`, which copies before it changes anything.

export class PatchError extends Error {
  constructor(message) {
    super(message);
    this.name = "PatchError";
  }
}

/** RFC 6901: "/a~1b/~0c" → ["a/b", "~c"]. */
export function parsePointer(pointer) {
  if (typeof pointer !== "string") throw new PatchError(`path must be a string, got ${typeof pointer}`);
  if (pointer === "") return [];
  if (pointer[0] !== "/") throw new PatchError(`invalid JSON pointer ${JSON.stringify(pointer)}: must be empty or start with '/'`);
  return pointer.slice(1).split("/").map((token) => {
    if (/~[^01]|~$/.test(token)) throw new PatchError(`invalid JSON pointer ${JSON.stringify(pointer)}: bad escape in ${JSON.stringify(token)}`);
    // Order matters: "~01" is "~1" literally, not "/".
    return token.replace(/~1/g, "/").replace(/~0/g, "~");
  });
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const has = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

/** Array index token: "0", "12" (no leading zeros, no signs); "-" only where allowed. */
function arrayIndex(token, length, { allowEnd }) {
  if (allowEnd && token === "-") return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchError(`${JSON.stringify(token)} is not an array index`);
  const index = Number(token);
  const max = allowEnd ? length : length - 1;
  if (index > max) throw new PatchError(`index ${index} is out of range (length ${length})`);
  return index;
}

/** Set an own data member: `obj[key] = value` would set the prototype for a key named "__proto__". */
function put(obj, key, value) {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

function get(doc, tokens) {
  let cur = doc;
  for (const token of tokens) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(token, cur.length, { allowEnd: false })];
    else if (isObject(cur)) {
      if (!has(cur, token)) throw new PatchError(`no member ${JSON.stringify(token)}`);
      cur = cur[token];
    } else throw new PatchError(`cannot look up ${JSON.stringify(token)} in a ${cur === null ? "null" : typeof cur}`);
  }
  return cur;
}

/**
 * Copy the containers along `tokens[0..-1]` and let `edit(parentCopy, lastToken)` change the copy.
 * Returns the new root; the old root and everything not on the path are untouched and shared.
 */
function setIn(doc, tokens, edit) {
  if (tokens.length === 0) throw new PatchError("internal: setIn needs a path");
  const [head, ...rest] = tokens;
  let copy;
  if (Array.isArray(doc)) copy = doc.slice();
  else if (isObject(doc)) copy = { ...doc };
  else throw new PatchError(`cannot change ${JSON.stringify(head)} inside a ${doc === null ? "null" : typeof doc}`);
  if (rest.length === 0) {
    edit(copy, head);
    return copy;
  }
  let child;
  if (Array.isArray(copy)) {
    const index = arrayIndex(head, copy.length, { allowEnd: false });
    child = copy[index];
    copy[index] = setIn(child, rest, edit);
  } else {
    if (!has(copy, head)) throw new PatchError(`no member ${JSON.stringify(head)}`);
    put(copy, head, setIn(copy[head], rest, edit));
  }
  return copy;
}

function add(doc, tokens, value) {
  if (tokens.length === 0) return value;
  return setIn(doc, tokens, (parent, key) => {
    if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length, { allowEnd: true }), 0, value);
    else put(parent, key, value);
  });
}

function remove(doc, tokens) {
  if (tokens.length === 0) throw new PatchError("cannot remove the whole document");
  return setIn(doc, tokens, (parent, key) => {
    if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length, { allowEnd: false }), 1);
    else {
      if (!has(parent, key)) throw new PatchError(`no member ${JSON.stringify(key)} to remove`);
      delete parent[key];
    }
  });
}

function replace(doc, tokens, value) {
  if (tokens.length === 0) return value;
  return setIn(doc, tokens, (parent, key) => {
    if (Array.isArray(parent)) parent[arrayIndex(key, parent.length, { allowEnd: false })] = value;
    else {
      if (!has(parent, key)) throw new PatchError(`no member ${JSON.stringify(key)} to replace`);
      put(parent, key, value);
    }
  });
}

/** JSON equality: key order does not matter, 1 equals 1.0, true is not 1. */
export function jsonEqual(a, b) {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => has(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

function field(op, name) {
  if (!has(op, name)) throw new PatchError(`${JSON.stringify(op.op)} operation is missing ${JSON.stringify(name)}`);
  return op[name];
}

function applyOne(doc, op) {
  if (!isObject(op)) throw new PatchError("operation must be an object");
  const path = parsePointer(field(op, "path"));
  switch (op.op) {
    case "add":
      return add(doc, path, field(op, "value"));
    case "remove":
      return remove(doc, path);
    case "replace":
      get(doc, path); // must exist
      return replace(doc, path, field(op, "value"));
    case "move": {
      const fromText = field(op, "from");
      const from = parsePointer(fromText);
      const to = op.path;
      if (to !== fromText && to.startsWith(fromText + "/")) throw new PatchError("cannot move a value into one of its own children");
      const value = get(doc, from);
      if (to === fromText) return doc;
      return add(remove(doc, from), path, value);
    }
    case "copy":
      return add(doc, path, get(doc, parsePointer(field(op, "from"))));
    case "test":
      if (!jsonEqual(get(doc, path), field(op, "value"))) throw new PatchError(`test failed at ${JSON.stringify(op.path)}`);
      return doc;
    default:
      throw new PatchError(`unknown operation ${JSON.stringify(op.op)}`);
  }
}

/** A new document with `patch` applied; throws PatchError (and leaves `doc` as it was) on failure. */
export function applyPatch(doc, patch) {
  if (!Array.isArray(patch)) throw new PatchError("patch must be a list of operations");
  let result = doc;
  patch.forEach((op, index) => {
    try {
      result = applyOne(result, op);
    } catch (err) {
      throw new PatchError(`operation ${index}: ${err.message}`);
    }
  });
  return result;
}
