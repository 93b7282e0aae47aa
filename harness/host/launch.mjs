#!/usr/bin/env node
// flareflow test harness launcher: serves a wrangler project (a flareflow build directory, or an
// ejected project) the way `wrangler dev` would, but on real workerd through Miniflare's Node API,
// because native Python Workers cannot start offline. Test-only, never shipped. See harness/README.md.
//
//   node harness/host/launch.mjs [PROJECT_DIR] [-c CONFIG] [--port N] [--ip HOST] [--persist-to DIR]
//                                [--admin-port N] [--verbose] [--no-snapshot]
//
// It takes the user's path: the bindings are what wrangler's own config reader makes of the
// project's wrangler.toml (`unstable_getMiniflareWorkerOptions`, which also loads `.dev.vars` next
// to it), storage is wrangler dev's local persistence (`.wrangler/state/v3` beside the config, or
// `--persist-to DIR` + `/v3`), and the config's `[build]` command runs first, as under wrangler dev.
// It applies no migrations and sets no binding values of its own. `harness/bin/wrangler` runs it
// for `wrangler dev`.
//
// Prints, in this order, once ready (after a warm-up request has booted Pyodide):
//   flareflow-harness admin on http://127.0.0.1:APORT
//   flareflow-harness listening on http://127.0.0.1:PORT
//   [wrangler:info] Ready on http://127.0.0.1:PORT
// Admin endpoints (POST, JSON bodies):
//   /scheduled {"cron": "* * * * *", "time": <ms since epoch, optional>}  -> runs scheduled()
//   /evict {"name": "<DO name>"}   -> ctx.abort() on that Durable Object (storage kept)
//   /restart                        -> restarts workerd (every isolate and object gone; storage kept)
//   /queue {"binding": "DISPATCH", "body": <json>} -> sends a message through the producer
//   /r2list {"binding": "PAYLOADS", "prefix": "runs/ID/"} -> {"objects": [{"key", "size"}]}
//   /r2get {"binding": "PAYLOADS", "key": KEY} -> {"text": ...}
// Also reads the same commands as lines on stdin: `scheduled CRON [TIME]`, `evict NAME`, `restart`.
import { Miniflare, Log, LogLevel } from 'miniflare';
import { execSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';

const HOST_DIR = path.dirname(fileURLToPath(import.meta.url));
const HARNESS_DIR = path.dirname(HOST_DIR);
const PYODIDE_DIR = path.join(HARNESS_DIR, 'node_modules', 'pyodide');
const SDK_WHEEL = path.join(HARNESS_DIR, 'vendor', 'workers_runtime_sdk-1.9.5-py3-none-any.whl');
const UNSAFE_EVAL = '__FLAREFLOW_HARNESS_UNSAFE_EVAL';
const CACHE_DIR = process.env.FLAREFLOW_HARNESS_CACHE ?? path.join(HARNESS_DIR, '.cache');

// Pyodide memory snapshots are only valid for the exact Pyodide files, boot code and workerd.
function snapshotPath() {
  const h = crypto.createHash('sha256');
  for (const f of ['pyodide.asm.wasm', 'pyodide.asm.js', 'pyodide.mjs', 'python_stdlib.zip'])
    h.update(fs.readFileSync(path.join(PYODIDE_DIR, f)));
  h.update(fs.readFileSync(path.join(HOST_DIR, 'worker.mjs')));
  h.update(fs.readFileSync(path.join(HARNESS_DIR, 'node_modules', 'workerd', 'package.json')));
  return path.join(CACHE_DIR, `pyodide-${h.digest('hex').slice(0, 16)}.snapshot`);
}

function usage(msg) {
  if (msg) console.error(`launch.mjs: ${msg}`);
  console.error(
    'usage: node harness/host/launch.mjs [PROJECT_DIR] [-c CONFIG] [--port N] [--ip HOST] [--persist-to DIR] ' +
      '[--admin-port N] [--verbose] [--no-snapshot]'
  );
  process.exit(2);
}

// The options of `wrangler dev` this stands in for (others are refused, so a test cannot rely on
// one silently ignored), plus the harness's own --admin-port / --verbose / --no-snapshot.
function parseArgs(argv) {
  const opts = { port: 8787, ip: '127.0.0.1', adminPort: 0, config: null, persistTo: null, verbose: false, snapshot: true };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let inline = null;
    if (a.startsWith('--') && a.includes('=')) [a, inline] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
    const next = () => inline ?? (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === '--port') opts.port = Number(next());
    else if (a === '--ip') opts.ip = next();
    else if (a === '-c' || a === '--config') opts.config = next();
    else if (a === '--persist-to') opts.persistTo = next();
    else if (a === '--local') continue;
    else if (a === '--admin-port') opts.adminPort = Number(next());
    else if (a === '--verbose') opts.verbose = true;
    else if (a === '--no-snapshot') opts.snapshot = false;
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else rest.push(a);
  }
  if (rest.length > 1) usage('at most one PROJECT_DIR');
  const dir = path.resolve(rest[0] ?? '.');
  opts.configPath = opts.config
    ? path.resolve(opts.config)
    : ['wrangler.toml', 'wrangler.json', 'wrangler.jsonc'].map((n) => path.join(dir, n)).find((f) => fs.existsSync(f));
  if (!opts.configPath || !fs.existsSync(opts.configPath)) usage(`no wrangler.toml / wrangler.json(c) in ${dir}`);
  opts.buildDir = path.dirname(opts.configPath);
  // wrangler dev's local persistence: .wrangler/state beside the config, or --persist-to; v3 inside
  opts.persist = path.join(opts.persistTo ? path.resolve(opts.persistTo) : path.join(opts.buildDir, '.wrangler', 'state'), 'v3');
  return opts;
}

// wrangler's own reading of the config: bindings (with `.dev.vars`), D1/KV/R2/queue/DO options.
function wranglerView(configPath) {
  const require = createRequire(path.join(HARNESS_DIR, 'package.json'));
  const wrangler = require('wrangler');
  const config = wrangler.unstable_readConfig({ config: configPath });
  const { workerOptions } = wrangler.unstable_getMiniflareWorkerOptions(config);
  return { config, workerOptions };
}

// What `wrangler dev` does first when the config has a [build] command.
function runCustomBuild(config, buildDir) {
  const command = config.build?.command;
  if (!command) return;
  const cwd = config.build?.cwd ? path.resolve(buildDir, config.build.cwd) : buildDir;
  console.log(`[custom build] Running: ${command}`);
  execSync(command, { cwd, stdio: 'inherit' });
}

// [u32 LE header length][JSON [{path, size}]][bytes] of src/** and python_modules/**.
function bundleBuild(buildDir) {
  const entries = [];
  const walk = (rel) => {
    const abs = path.join(buildDir, rel);
    if (!fs.existsSync(abs)) return;
    for (const d of fs.readdirSync(abs, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (d.name === '__pycache__' || d.name === 'node_modules') continue;
      const r = `${rel}/${d.name}`;
      if (d.isDirectory()) walk(r);
      else if (d.isFile()) entries.push({ path: r, data: fs.readFileSync(path.join(buildDir, r)) });
    }
  };
  walk('src');
  walk('python_modules');
  if (!entries.some((e) => e.path === 'src/entry.py')) throw new Error(`${buildDir}/src/entry.py is missing`);
  const header = Buffer.from(JSON.stringify(entries.map((e) => ({ path: e.path, size: e.data.length }))));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  return { bytes: Buffer.concat([len, header, ...entries.map((e) => e.data)]), count: entries.length };
}

function toArrayBufferView(buf) {
  // Miniflare wants Uint8Array contents, not Node Buffers from a shared pool.
  return new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function buildOptions(opts, workerOptions, bundle, snapshot) {
  const flags = (workerOptions.compatibilityFlags ?? []).filter((f) => f !== 'python_workers');
  const read = (p) => toArrayBufferView(fs.readFileSync(p));
  const modules = [
    { type: 'ESModule', path: path.join(HOST_DIR, 'worker.mjs'), contents: fs.readFileSync(path.join(HOST_DIR, 'worker.mjs'), 'utf8') },
    { type: 'ESModule', path: path.join(HOST_DIR, 'pyodide/pyodide.asm.js'), contents: fs.readFileSync(path.join(PYODIDE_DIR, 'pyodide.asm.js'), 'utf8') },
    { type: 'ESModule', path: path.join(HOST_DIR, 'pyodide/pyodide.mjs'), contents: fs.readFileSync(path.join(PYODIDE_DIR, 'pyodide.mjs'), 'utf8') },
    { type: 'CompiledWasm', path: path.join(HOST_DIR, 'pyodide/pyodide.asm.wasm'), contents: read(path.join(PYODIDE_DIR, 'pyodide.asm.wasm')) },
    { type: 'Data', path: path.join(HOST_DIR, 'pyodide/python_stdlib.zip'), contents: read(path.join(PYODIDE_DIR, 'python_stdlib.zip')) },
    { type: 'Text', path: path.join(HOST_DIR, 'pyodide/pyodide-lock.json.txt'), contents: fs.readFileSync(path.join(PYODIDE_DIR, 'pyodide-lock.json'), 'utf8') },
    { type: 'Data', path: path.join(HOST_DIR, 'vendor/workers_runtime_sdk.whl'), contents: read(SDK_WHEEL) },
    { type: 'Data', path: path.join(HOST_DIR, 'app.bundle'), contents: toArrayBufferView(bundle.bytes) },
    { type: 'Text', path: path.join(HOST_DIR, 'glue.py.txt'), contents: fs.readFileSync(path.join(HOST_DIR, 'glue.py'), 'utf8') },
    { type: 'Data', path: path.join(HOST_DIR, 'pyodide.snapshot'), contents: snapshot ?? new Uint8Array(0) },
    {
      type: 'Text',
      path: path.join(HOST_DIR, 'harness-config.json.txt'),
      contents: JSON.stringify({
        compatibilityFlags: flags, debug: opts.verbose, makeSnapshot: opts.snapshot && !snapshot,
        // the Workers AI stand-in (worker.mjs): the config's [ai] binding name, and where it forwards
        ai: workerOptions.ai?.binding ? { binding: workerOptions.ai.binding, url: process.env.HARNESS_AI_STANDIN_URL || null } : null,
      }),
    },
  ];


  const wo = workerOptions;
  for (const [name, b] of Object.entries(wo.durableObjects ?? {})) {
    const className = typeof b === 'string' ? b : b.className;
    if (className !== 'RunObject') throw new Error(`harness only hosts class RunObject, not ${className} (${name})`);
  }
  const queueConsumers = {};
  for (const [queue, c] of Object.entries(wo.queueConsumers ?? {})) {
    // Deliver promptly in tests unless the config says otherwise (production's default is 5 s).
    queueConsumers[queue] = { ...c, maxBatchTimeout: c.maxBatchTimeout ?? 0.1 };
  }

  return {
    host: opts.ip,
    port: opts.port,
    modulesRoot: HOST_DIR,
    modules,
    compatibilityDate: wo.compatibilityDate ?? '2025-09-29',
    compatibilityFlags: flags,
    unsafeEvalBinding: UNSAFE_EVAL,
    durableObjects: wo.durableObjects ?? {},
    d1Databases: wo.d1Databases ?? {},
    r2Buckets: wo.r2Buckets ?? {},
    kvNamespaces: wo.kvNamespaces ?? {},
    queueProducers: wo.queueProducers ?? {},
    queueConsumers,
    bindings: wo.bindings ?? {},
    defaultPersistRoot: opts.persist,
    // As wrangler dev: /cdn-cgi/handler/scheduled?cron= (and friends) reach the handlers, no token.
    unsafeTriggerHandlers: true,
    // Offline: a fixed Request.cf object instead of fetching Cloudflare's.
    cf: { colo: 'HARNESS', country: 'XX' },
    log: new Log(opts.verbose ? LogLevel.DEBUG : LogLevel.INFO),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  if (!fs.existsSync(SDK_WHEEL)) throw new Error(`${SDK_WHEEL} is missing: run harness/fetch_sdk.sh`);
  if (!fs.existsSync(path.join(PYODIDE_DIR, 'pyodide.asm.wasm')))
    throw new Error(`${PYODIDE_DIR} is missing: run npm install in harness/`);
  const { config, workerOptions } = wranglerView(opts.configPath);
  runCustomBuild(config, opts.buildDir);
  const bundle = bundleBuild(opts.buildDir);
  const snapFile = opts.snapshot ? snapshotPath() : null;
  const loadSnapshot = () => (snapFile && fs.existsSync(snapFile) ? toArrayBufferView(fs.readFileSync(snapFile)) : null);
  let snapshot = loadSnapshot();
  let mfOptions = buildOptions(opts, workerOptions, bundle, snapshot);
  const mf = new Miniflare(mfOptions);
  const url = await mf.ready;
  // Keep the same port across restarts.
  mfOptions = { ...mfOptions, port: Number(url.port) };
  const tReady = Date.now();

  const warm = async () => {
    const t = Date.now();
    const res = await mf.dispatchFetch(new URL('/__flareflow_harness/warm', url));
    const body = await res.text();
    if (!res.ok) throw new Error(`warm-up failed (${res.status}): ${body}`);
    return { ms: Date.now() - t, ...JSON.parse(body) };
  };
  const warmInfo = await warm();
  const saveSnapshot = async () => {
    // First start without a cached snapshot: the worker made one right after booting Pyodide.
    if (!snapFile || snapshot) return;
    const res = await mf.dispatchFetch(new URL('/__flareflow_harness/snapshot', url));
    if (res.status !== 200) return void (await res.arrayBuffer());
    const bytes = Buffer.from(await res.arrayBuffer());
    await fsp.mkdir(CACHE_DIR, { recursive: true });
    const tmp = `${snapFile}.${process.pid}.tmp`;
    await fsp.writeFile(tmp, bytes);
    await fsp.rename(tmp, snapFile);
    snapshot = loadSnapshot();
    mfOptions = { ...buildOptions(opts, workerOptions, bundle, snapshot), port: Number(url.port) }; // restarts use it
  };
  await saveSnapshot().catch((e) => console.error(`flareflow-harness: could not cache the Pyodide snapshot: ${e}`));

  const commands = {
    async scheduled({ cron, time } = {}) {
      const worker = await mf.getWorker();
      const result = await worker.scheduled({ cron: cron ?? '* * * * *', scheduledTime: new Date(time ?? Date.now()) });
      return { result };
    },
    async evict({ name, binding } = {}) {
      if (!name) throw new Error('evict needs a name');
      const ns = await mf.getDurableObjectNamespace(binding ?? Object.keys(mfOptions.durableObjects)[0]);
      const stub = ns.get(ns.idFromName(name));
      try {
        await stub.__flareflowHarnessEvict('evicted by flareflow harness');
      } catch (e) {
        // ctx.abort() rejects the calling request by design.
        return { evicted: name, note: String(e && e.message ? e.message : e) };
      }
      return { evicted: name };
    },
    async restart() {
      const t = Date.now();
      await mf.setOptions(mfOptions);
      await mf.ready;
      const w = await warm();
      return { restartedMs: Date.now() - t, warm: w };
    },
    async queue({ binding, body } = {}) {
      const q = await mf.getQueueProducer(binding ?? Object.keys(mfOptions.queueProducers)[0]);
      await q.send(body);
      return { sent: true };
    },
    async r2list({ binding, prefix } = {}) {
      // what an R2 bucket holds (keys and sizes), so tests can see payloads really went there
      const bucket = await mf.getR2Bucket(binding ?? 'PAYLOADS');
      const objects = [];
      let cursor;
      do {
        const page = await bucket.list({ prefix, cursor });
        for (const o of page.objects) objects.push({ key: o.key, size: o.size });
        cursor = page.truncated ? page.cursor : undefined;
      } while (cursor);
      return { objects };
    },
    async kvlist({ binding, prefix } = {}) {
      // what a KV namespace holds (keys and expirations), so tests can see TTLs really were set
      const ns = await mf.getKVNamespace(binding ?? 'CACHE');
      const keys = [];
      let cursor;
      do {
        const page = await ns.list({ prefix, cursor });
        for (const k of page.keys) keys.push({ name: k.name, expiration: k.expiration ?? null });
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return { keys };
    },
    async r2get({ binding, key } = {}) {
      const bucket = await mf.getR2Bucket(binding ?? 'PAYLOADS');
      const found = await bucket.get(key);
      return { text: found ? await found.text() : null };
    },
  };

  const admin = http.createServer(async (req, res) => {
    const name = (req.url ?? '/').replace(/^\//, '').split('?')[0];
    let body = '';
    for await (const chunk of req) body += chunk;
    const reply = (status, obj) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    if (name === 'health') return reply(200, { ok: true, url: url.href });
    const cmd = commands[name];
    if (!cmd || req.method !== 'POST') return reply(404, { error: `unknown admin command ${name}` });
    try {
      reply(200, await cmd(body ? JSON.parse(body) : {}));
    } catch (e) {
      reply(500, { error: String(e && e.stack ? e.stack : e) });
    }
  });
  await new Promise((resolve) => admin.listen(opts.adminPort, '127.0.0.1', resolve));

  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', async (line) => {
    const [cmd, ...args] = line.trim().split(/\s+/);
    if (!cmd) return;
    const argsFor = {
      scheduled: () => ({ cron: args.slice(0, -1).join(' ') || args.join(' '), time: Number(args.at(-1)) || undefined }),
      evict: () => ({ name: args[0] }),
      restart: () => ({}),
    };
    if (!commands[cmd] || !argsFor[cmd]) return console.log(`flareflow-harness: unknown command ${cmd}`);
    try {
      console.log(`flareflow-harness: ${cmd} -> ${JSON.stringify(await commands[cmd](argsFor[cmd]()))}`);
    } catch (e) {
      console.log(`flareflow-harness: ${cmd} failed: ${e}`);
    }
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    admin.close();
    rl.close();
    await mf.dispose().catch(() => {});
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  console.log(
    `flareflow-harness: workerd up in ${tReady - t0} ms, Pyodide warm in ${warmInfo.ms} ms ` +
      `(${warmInfo.fromSnapshot ? 'from snapshot' : 'no snapshot'}, ${bundle.count} build files)`
  );
  console.log(`flareflow-harness admin on http://127.0.0.1:${admin.address().port}`);
  console.log(`flareflow-harness listening on http://${url.hostname}:${url.port}`);
  console.log(`[wrangler:info] Ready on http://${url.hostname}:${url.port} (flareflow test harness on workerd)`);
}

main().catch((e) => {
  console.error(`flareflow-harness: failed to start: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
