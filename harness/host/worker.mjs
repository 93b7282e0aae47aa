// flareflow test harness: the JavaScript Worker that hosts a flareflow build's Python code on real
// workerd. Test-only, never shipped. See harness/README.md.
//
// A plain JS Durable Object / default handler boots Pyodide 0.28.2 (npm package, loaded as worker
// modules) once per isolate, unpacks the `workers` SDK wheel and the build's Python files into
// Pyodide's file system, imports the build's `entry` module and forwards every runtime event to
// `entry.RunObject` / `entry.Default` with the REAL ctx and env.
import * as cloudflareWorkersModule from 'cloudflare:workers';
import * as cloudflareSocketsModule from 'cloudflare:sockets';
import { DurableObject } from 'cloudflare:workers';
import './pyodide/pyodide.asm.js'; // defines globalThis._createPyodideModule (no I/O at import)
import pyodideWasm from './pyodide/pyodide.asm.wasm'; // CompiledWasm: compiled by workerd at load
import pythonStdlib from './pyodide/python_stdlib.zip'; // Data
import pyodideLock from './pyodide/pyodide-lock.json.txt'; // Text
import sdkWheel from './vendor/workers_runtime_sdk.whl'; // Data
import appBundle from './app.bundle'; // Data: the build dir's src/** and python_modules/**
import glueSource from './glue.py.txt'; // Text
import harnessConfig from './harness-config.json.txt'; // Text
import pyodideSnapshot from './pyodide.snapshot'; // Data: Pyodide memory snapshot (may be empty)

const CONFIG = JSON.parse(harnessConfig);
// --verbose: phase markers on stdout (workerd freezes Date.now() between I/O, so the launcher's
// wall clock, not the isolate's, tells how long each phase took).
const debug = (msg) => CONFIG.debug && console.log(`flareflow-harness[debug]: ${msg}`);
const UNSAFE_EVAL = '__FLAREFLOW_HARNESS_UNSAFE_EVAL';
const INDEX_URL = 'https://pyodide.harness.invalid/';
const SITE_PACKAGES = '/lib/python3.13/site-packages';
const APP_ROOT = '/session/metadata'; // where workerd puts a Python Worker's own modules

// ---------------------------------------------------------------------------------------------
// Runtime wasm compilation: workerd forbids it ("Wasm code generation disallowed by embedder"),
// but Pyodide builds small trampoline modules at run time (Emscripten's convertJsFunctionToWasm,
// CPython's call trampoline). The harness routes `new WebAssembly.Module(bytes)` through the
// unsafe-eval binding Miniflare provides (UnsafeEval.newWasmModule). Production workerd ships
// these precompiled instead.
function allowRuntimeWasm(unsafeEval) {
  const Original = WebAssembly.Module;
  if (Original.__flareflowHarness) return;
  function Module(bytes) {
    allowRuntimeWasm.count = (allowRuntimeWasm.count ?? 0) + 1;
    return unsafeEval.newWasmModule(bytes);
  }
  Module.prototype = Original.prototype;
  Module.imports = Original.imports;
  Module.exports = Original.exports;
  Module.customSections = Original.customSections;
  Module.__flareflowHarness = true;
  WebAssembly.Module = Module;
  const instantiate = WebAssembly.instantiate;
  WebAssembly.instantiate = async function (source, imports) {
    if (source instanceof Original) return instantiate(source, imports);
    const module = unsafeEval.newWasmModule(source);
    return { module, instance: await instantiate(module, imports) };
  };
  WebAssembly.compile = async (bytes) => unsafeEval.newWasmModule(bytes);
}

// Temporarily replace globals while a callback runs (Pyodide's environment detection).
async function withGlobals(overrides, fn) {
  const saved = new Map();
  for (const [key, value] of Object.entries(overrides)) {
    saved.set(key, Object.getOwnPropertyDescriptor(globalThis, key));
    Object.defineProperty(globalThis, key, { value, configurable: true, writable: true });
  }
  try {
    return await fn();
  } finally {
    for (const [key, desc] of saved) {
      if (desc) Object.defineProperty(globalThis, key, desc);
      else delete globalThis[key];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Stand-ins for the two modules the runtime provides to the SDK in production.
const waitUntilPatched = new WeakSet();
function patchWaitUntil(ctx) {
  // Same as workerd: let ctx.waitUntil accept Python futures (copy the proxy, destroy when done).
  let tag;
  try {
    tag = Object.prototype.toString.call(ctx);
  } catch (_e) {}
  if (tag !== '[object ExecutionContext]' || waitUntilPatched.has(ctx)) return;
  const original = ctx.waitUntil.bind(ctx);
  ctx.waitUntil = (p) =>
    original(
      (async () => {
        if (p && typeof p.copy === 'function') p = p.copy();
        await p;
        if (p && typeof p.destroy === 'function') p.destroy();
      })()
    );
  waitUntilPatched.add(ctx);
}

const entrypointHelper = {
  cloudflareWorkersModule,
  cloudflareSocketsModule,
  patchWaitUntil,
  async doAnImport(name) {
    if (name === 'cloudflare:workers') return cloudflareWorkersModule;
    if (name === 'cloudflare:sockets') return cloudflareSocketsModule;
    throw new Error(`flareflow harness: importing JavaScript module '${name}' is not supported`);
  },
  patch_env_helper() {
    throw new Error('flareflow harness: workers.patch_env is not supported');
  },
};

function compatFlags() {
  const flags = {
    python_workflows_implicit_dependencies: false,
    python_request_headers_preserve_commas: false,
  };
  for (const f of CONFIG.compatibilityFlags ?? []) flags[f] = true;
  return flags;
}

// ---------------------------------------------------------------------------------------------
// The build bundle: [u32 LE header length][JSON [{path, size}]][file bytes...].
function unpackBundle(py, buffer) {
  const bytes = new Uint8Array(buffer);
  const headerLen = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLen)));
  let offset = 4 + headerLen;
  for (const { path, size } of header) {
    const data = bytes.slice(offset, offset + size);
    offset += size;
    let target;
    if (path.startsWith('src/')) target = `${APP_ROOT}/${path.slice(4)}`;
    else if (path.startsWith('python_modules/')) target = `${SITE_PACKAGES}/${path.slice(15)}`;
    else continue;
    py.FS.mkdirTree(target.slice(0, target.lastIndexOf('/')));
    py.FS.writeFile(target, data);
  }
  return header.length;
}

// ---------------------------------------------------------------------------------------------
// Boot Pyodide once per isolate.
let pythonPromise;
let pendingSnapshot = null; // handed to the launcher once, then dropped
export const timings = {};

function getPython(env) {
  pythonPromise ??= bootPython(env).catch((e) => {
    pythonPromise = undefined;
    throw e;
  });
  return pythonPromise;
}

async function bootPython(env) {
  const t0 = Date.now();
  const unsafeEval = env[UNSAFE_EVAL];
  if (!unsafeEval) throw new Error(`flareflow harness: the ${UNSAFE_EVAL} binding is missing`);
  allowRuntimeWasm(unsafeEval);

  const stdlib = new Uint8Array(pythonStdlib);
  const addEventListener = globalThis.addEventListener;
  const py = await withGlobals(
    {
      // Look like a web worker to pyodide.mjs: `importScripts` + `self` (the asm.js module is
      // already imported, so importScripts is never really used), `location` for URL resolution.
      importScripts: () => {
        throw new Error('flareflow harness: unexpected importScripts');
      },
      location: new URL(INDEX_URL),
      // Emscripten's setImmediate polyfill registers a capturing 'message' listener on the
      // global scope, which workerd rejects; drop 'message' listeners while booting.
      addEventListener: (type, ...rest) =>
        type === 'message' ? undefined : addEventListener.call(globalThis, type, ...rest),
      // Serve the npm files Pyodide would fetch next to pyodide.mjs.
      fetch: async (url) => {
        const u = String(url);
        if (u.endsWith('/python_stdlib.zip')) return new Response(stdlib);
        if (u.endsWith('/pyodide.asm.wasm')) return new Response(new Uint8Array(0));
        throw new Error(`flareflow harness: unexpected fetch during Pyodide boot: ${u}`);
      },
    },
    async () => {
      // Instantiate the precompiled pyodide.asm.wasm instead of streaming-compiling the fetch.
      const instantiateStreaming = WebAssembly.instantiateStreaming;
      WebAssembly.instantiateStreaming = async (_response, imports) => ({
        module: pyodideWasm,
        instance: await WebAssembly.instantiate(pyodideWasm, imports),
      });
      try {
        debug('importing pyodide.mjs');
        const { loadPyodide } = await import('./pyodide/pyodide.mjs');
        debug('calling loadPyodide');
        const load = (extra) =>
          loadPyodide({
            indexURL: INDEX_URL,
            lockFileContents: JSON.parse(pyodideLock),
            stdout: (s) => console.log(s),
            stderr: (s) => console.error(s),
            env: { HOME: '/session' },
            ...extra,
          });
        // A memory snapshot of a freshly booted Pyodide (made by this same code on an earlier
        // start, cached by the launcher) skips CPython's start-up, as production workerd does.
        if (pyodideSnapshot.byteLength) return await load({ _loadSnapshot: new Uint8Array(pyodideSnapshot) });
        if (!CONFIG.makeSnapshot) return await load({});
        // No snapshot yet: boot once to take one, then serve from an instance restored from it
        // (an instance booted with _makeSnapshot is not fit to serve: its AbortSignals are foreign
        // to workerd's fetch). The launcher caches the snapshot for the next start.
        const maker = await load({ _makeSnapshot: true });
        pendingSnapshot = maker.makeMemorySnapshot();
        return await load({ _loadSnapshot: pendingSnapshot });
      } finally {
        WebAssembly.instantiateStreaming = instantiateStreaming;
      }
    }
  );
  const tBoot = Date.now();
  debug(`loadPyodide done (${allowRuntimeWasm.count ?? 0} runtime wasm modules so far)`);

  py.unpackArchive(new Uint8Array(sdkWheel), 'wheel', { extractDir: SITE_PACKAGES });
  debug('SDK wheel unpacked');
  py.registerJsModule('_cloudflare_compat_flags', compatFlags());
  py.registerJsModule('_pyodide_entrypoint_helper', entrypointHelper);
  py.FS.mkdirTree(APP_ROOT);
  const files = unpackBundle(py, appBundle);
  py.FS.writeFile(`${SITE_PACKAGES}/_flareflow_harness.py`, glueSource);
  const glue = py.pyimport('_flareflow_harness');
  glue.add_path(APP_ROOT);
  debug('importing entry');
  const entry = py.pyimport('entry');
  debug(`entry imported (${allowRuntimeWasm.count ?? 0} runtime wasm modules so far)`);
  const tImport = Date.now();
  Object.assign(timings, {
    pyodideMs: tBoot - t0,
    importMs: tImport - tBoot,
    files,
    fromSnapshot: pyodideSnapshot.byteLength > 0,
  });
  console.log(
    `flareflow-harness: Pyodide ${py.version} ready in ${tBoot - t0} ms, ` +
      `SDK + ${files} build files + entry imported in ${tImport - tBoot} ms`
  );
  return { py, glue, entry };
}

function logPythonError(where, e) {
  console.error(`flareflow-harness: error in ${where}:\n${e && e.message ? e.message : e}`);
}

async function settle(result) {
  // Python results come back as JS values; a leftover PyProxy is converted and destroyed.
  if (result && typeof result === 'object' && typeof result.toJs === 'function' && result.destroy) {
    const value = result.toJs();
    result.destroy();
    return value;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// The Workers AI stand-in (a STAND-IN, see harness/README.md): Workers AI is a remote service that
// offline workerd cannot reach, so when the build's config has `[ai] binding = "AI"` the env handed
// to Python carries an object of that name with the binding's one method, `run(model, inputs)`. It
// forwards to the OpenAI-compatible server named by HARNESS_AI_STANDIN_URL (the tests' stand-in)
// and answers in Workers AI's shapes ({response, usage}; {shape, data}), throwing as the binding
// does (a 429 as "3040: Capacity temporarily exceeded", a 5xx as InferenceUpstreamError, another
// 4xx as "5007"); without a URL it answers by itself ("stand-in answer to: <last user message>").
const aiStandIn = {
  async run(model, inputs = {}, options = {}) {
    const embed = inputs.text !== undefined;
    const texts = embed ? [].concat(inputs.text) : [];
    const messages = inputs.messages ?? [{ role: 'user', content: String(inputs.prompt ?? '') }];
    const url = CONFIG.ai?.url;
    if (!url) {
      if (embed) return { shape: [texts.length, 3], data: texts.map((t, i) => [t.length, i, 0.5]) };
      const last = messages.filter((m) => m.role === 'user').pop();
      const text = `stand-in answer to: ${last ? last.content : ''}`;
      if (inputs.stream) return sseOf(text.split(/(?= )/).map((piece) => ({ response: piece })));
      return { response: text };
    }
    const headers = { 'content-type': 'application/json', 'x-ai-gateway': options?.gateway?.id ?? '' };
    if (inputs.stream && !embed) return streamedAnswer(url, model, messages, inputs, headers);
    const body = embed
      ? { model, input: texts }
      : { model, messages, temperature: inputs.temperature, max_tokens: inputs.max_tokens, response_format: inputs.response_format };
    const res = await fetch(`${url.replace(/\/$/, '')}${embed ? '/embeddings' : '/chat/completions'}`, {
      method: 'POST', headers, body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status === 429) throw new Error('AiError: 3040: Capacity temporarily exceeded, please try again. (429)');
    if (res.status >= 500) throw new Error(`InferenceUpstreamError: ${res.status} ${text.slice(0, 200)}`);
    if (res.status >= 400) throw new Error(`AiError: 5007: ${text.slice(0, 200)} (${res.status})`);
    const data = JSON.parse(text);
    if (embed) return { shape: [data.data.length, data.data[0]?.embedding.length ?? 0], data: data.data.map((d) => d.embedding) };
    return { response: data.choices[0].message.content, usage: data.usage };
  },
};

// Workers AI's streamed answer: server-sent events `data: {"response": piece}`, then `data: [DONE]`.
function sseOf(chunks) {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(`data: ${JSON.stringify(chunk)}\n\n`));
      controller.enqueue(encoder.encode('data: [DONE]\n\n'));
      controller.close();
    },
  });
}

// `run(model, {messages, stream: true})`: the stand-in server's OpenAI chunks, re-framed as they come.
async function streamedAnswer(url, model, messages, inputs, headers) {
  const res = await fetch(`${url.replace(/\/$/, '')}/chat/completions`, {
    method: 'POST', headers,
    body: JSON.stringify({ model, messages, temperature: inputs.temperature, max_tokens: inputs.max_tokens, stream: true }),
  });
  if (res.status >= 400) {
    const text = await res.text();
    if (res.status === 429) throw new Error('AiError: 3040: Capacity temporarily exceeded, please try again. (429)');
    if (res.status >= 500) throw new Error(`InferenceUpstreamError: ${res.status} ${text.slice(0, 200)}`);
    throw new Error(`AiError: 5007: ${text.slice(0, 200)} (${res.status})`);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let buffer = '';
  return new ReadableStream({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        controller.enqueue(encoder.encode('data: [DONE]\n\n'));
        controller.close();
        return;
      }
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split('\n');
      buffer = lines.pop();
      for (const line of lines) {
        const data = line.trim().startsWith('data:') ? line.trim().slice(5).trim() : '';
        if (!data || data === '[DONE]') continue;
        const chunk = JSON.parse(data);
        const piece = chunk.choices?.[0]?.delta?.content;
        if (piece) controller.enqueue(encoder.encode(`data: ${JSON.stringify({ response: piece })}\n\n`));
        if (chunk.usage) controller.enqueue(encoder.encode(`data: ${JSON.stringify({ response: '', usage: chunk.usage })}\n\n`));
      }
    },
  });
}

// The env Python gets: the real one, plus the AI stand-in when the config binds AI.
function pythonEnv(env) {
  const name = CONFIG.ai?.binding;
  if (!name) return env;
  return new Proxy(env, {
    get: (target, key, receiver) => (key === name ? aiStandIn : Reflect.get(target, key, receiver)),
    has: (target, key) => key === name || Reflect.has(target, key),
    ownKeys: (target) => [...new Set([...Reflect.ownKeys(target), name])],
    getOwnPropertyDescriptor: (target, key) => (key === name
      ? { value: aiStandIn, enumerable: true, configurable: true, writable: false }
      : Reflect.getOwnPropertyDescriptor(target, key)),
  });
}

// ---------------------------------------------------------------------------------------------
// Durable Object: forwards to entry.RunObject(ctx, env).
export class RunObject extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.pyInstance = (async () => {
      const { glue, entry } = await getPython(env);
      return glue.construct(entry.RunObject, ctx, pythonEnv(env));
    })();
    this.pyInstance.catch((e) => logPythonError('RunObject constructor', e));
  }

  async fetch(request) {
    const { glue } = await getPython(this.env);
    const inst = await this.pyInstance;
    try {
      return await settle(await glue.call_fetch(inst, request));
    } catch (e) {
      logPythonError('RunObject.fetch', e);
      throw e;
    }
  }

  async #handler(name, ...args) {
    const { glue } = await getPython(this.env);
    const inst = await this.pyInstance;
    if (!glue.has_method(inst, name)) return undefined; // production only exports defined methods
    try {
      return await settle(await glue.call_raw(inst, name, ...args));
    } catch (e) {
      logPythonError(`RunObject.${name}`, e);
      throw e;
    }
  }

  alarm(alarmInfo) {
    return this.#handler('alarm', alarmInfo);
  }
  webSocketMessage(ws, message) {
    return this.#handler('webSocketMessage', ws, message);
  }
  webSocketClose(ws, code, reason, wasClean) {
    return this.#handler('webSocketClose', ws, code, reason, wasClean);
  }
  webSocketError(ws, error) {
    return this.#handler('webSocketError', ws, error);
  }

  // Harness-only RPC (called by the launcher's admin endpoint): evict this object the way the
  // runtime does, by aborting it. Storage is kept; the next request builds a new instance.
  async __flareflowHarnessEvict(reason) {
    this.ctx.abort(reason ?? 'evicted by flareflow harness');
  }
}

// ---------------------------------------------------------------------------------------------
// Default export: forwards to entry.Default(ctx, env).
async function defaultCall(name, event, env, ctx) {
  const { glue, entry } = await getPython(env);
  const pyEnv = pythonEnv(env);
  const inst = glue.construct(entry.Default, ctx, pyEnv);
  try {
    if (name === 'fetch') return await settle(await glue.call_fetch(inst, event, pyEnv, ctx));
    if (!glue.has_method(inst, name)) throw new Error(`entry.Default has no method ${name}`);
    return await settle(await glue.call_event(inst, name, event, pyEnv, ctx));
  } catch (e) {
    logPythonError(`Default.${name}`, e);
    throw e;
  } finally {
    inst.destroy();
  }
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === '/__flareflow_harness/warm') {
      const t0 = Date.now();
      await getPython(env);
      return Response.json({ ...timings, waitedMs: Date.now() - t0 });
    }
    if (url.pathname === '/__flareflow_harness/snapshot') {
      await getPython(env);
      const snapshot = pendingSnapshot;
      pendingSnapshot = null;
      return new Response(snapshot, { status: snapshot ? 200 : 204 });
    }
    return defaultCall('fetch', request, env, ctx);
  },
  scheduled(controller, env, ctx) {
    return defaultCall('scheduled', controller, env, ctx);
  },
  queue(batch, env, ctx) {
    return defaultCall('queue', batch, env, ctx);
  },
};
