#!/usr/bin/env node
// Harness gap H1, minimal reproduction (no Python, no Pyodide, no flareflow code).
//
//   node harness/repro/h1_ws_close.mjs [--only miniflare|workerd] [--wait MS] [--compat-date YYYY-MM-DD]
//
// A plain JavaScript Durable Object accepts a WebSocket and closes it from the server side with
// ws.close(1000, reason) in different places. A raw TCP client (so nothing is hidden by a client
// library) logs, with timestamps: the 101, every frame, the close frame, its own close reply, and when
// the SERVER ends the TCP connection. Each case runs on
//   * Miniflare's Node API (`new Miniflare({...})`, like harness/host/launch.mjs), and
//   * bare workerd (`workerd serve` on a hand-written config: no Miniflare, no entry worker),
// so the result says which layer it lives in. Needs harness/node_modules (npm install in harness/).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HARNESS = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const NM = path.join(HARNESS, 'node_modules');
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
const WAIT = args.includes('--wait') ? Number(args[args.indexOf('--wait') + 1]) : 15000;
const COMPAT_DATE = args.includes('--compat-date') ? args[args.indexOf('--compat-date') + 1] : '2025-09-29';
const version = (p) => JSON.parse(fs.readFileSync(path.join(NM, p, 'package.json'), 'utf8')).version;

// The Durable Object. ?mode= picks where the server closes:
//   hib-fetch   acceptWebSocket(server), send, close(1000) in fetch() before returning the 101
//   hib-msg     acceptWebSocket(server), close(1000) in webSocketMessage() (client sends "hi")
//   hib-alarm   acceptWebSocket(server), close(1000) in alarm() 200 ms later
//   hib-req     acceptWebSocket(server), close(1000) from another request (GET /closeall) 500 ms later
//   hib-busy    as hib-req, and the runner keeps the object busy (GET /ping every second) meanwhile
//   hib-peer    acceptWebSocket(server); 300 ms later a 2nd socket on the same object sends
//               "close-peer" and the object closes the 1st one in the 2nd one's webSocketMessage()
//   std-fetch   server.accept() (not hibernatable), close(1000) in fetch()
//   std-later   server.accept(), close(1000) from a setTimeout 200 ms later
// &onclose=echo: webSocketClose(ws, code, reason) reciprocates with ws.close(code, reason)
// (what the Cloudflare docs recommend and what flareflow's RunObject does); &onclose=none: no handler.
const WORKER = `
import { DurableObject } from 'cloudflare:workers';
class Base extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/ping') return new Response('pong');
    if (url.pathname === '/closeall') {
      for (const ws of this.ctx.getWebSockets()) ws.close(1000, 'closed-by-other-request');
      return new Response('ok');
    }
    const mode = url.searchParams.get('mode');
    const [client, server] = Object.values(new WebSocketPair());
    if (mode.startsWith('hib')) this.ctx.acceptWebSocket(server); else server.accept();
    server.send('hello');
    if (mode.endsWith('-fetch')) server.close(1000, 'closed-in-fetch');
    if (mode === 'std-later') setTimeout(() => server.close(1000, 'closed-in-timeout'), 200);
    if (mode === 'hib-alarm') await this.ctx.storage.setAlarm(Date.now() + 200);
    return new Response(null, { status: 101, webSocket: client });
  }
  webSocketMessage(ws, message) {
    if (message === 'close-peer') {
      for (const other of this.ctx.getWebSockets()) if (other !== ws) other.close(1000, 'closed-in-peer-webSocketMessage');
      return;
    }
    ws.send('echo ' + message);
    ws.close(1000, 'closed-in-webSocketMessage');
  }
  alarm() { for (const ws of this.ctx.getWebSockets()) ws.close(1000, 'closed-in-alarm'); }
}
export class Echo extends Base {
  webSocketClose(ws, code, reason) { try { ws.close(code, reason); } catch (e) { console.log('webSocketClose: ' + e); } }
}
export class NoHandler extends Base {}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const ns = url.searchParams.get('onclose') === 'none' ? env.NOHANDLER : env.ECHO;
    return ns.get(ns.idFromName(url.searchParams.get('name') ?? 'x')).fetch(request);
  },
};`;

// Raw WebSocket client over TCP.
// Resolves to {closeFrame, fin, log} once the connection is gone; .destroy() drops it early.
function rawClient(port, pathAndQuery, { send, waitMs }) {
  const handle = {};
  const done = new Promise((resolve) => {
    const t0 = Date.now();
    const log = [];
    const note = (s) => log.push(`${String(Date.now() - t0).padStart(6)} ms  ${s}`);
    const result = { closeFrame: null, fin: null };
    const sock = net.connect(port, '127.0.0.1');
    handle.destroy = () => sock.destroy();
    const frame = (op, payload) => {
      const mask = crypto.randomBytes(4);
      const p = Buffer.from(payload);
      return Buffer.concat([Buffer.from([0x80 | op, 0x80 | p.length]), mask, p.map((b, i) => b ^ mask[i % 4])]);
    };
    let buf = Buffer.alloc(0);
    let upgraded = false;
    sock.on('connect', () =>
      sock.write(
        `GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`
      )
    );
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        note(buf.subarray(0, buf.indexOf('\r\n')).toString());
        buf = buf.subarray(i + 4);
        upgraded = true;
        if (send) sock.write(frame(1, send));
      }
      while (buf.length >= 2) {
        const op = buf[0] & 15;
        let len = buf[1] & 127;
        let off = 2;
        if (len === 126) [len, off] = [buf.readUInt16BE(2), 4];
        if (buf.length < off + len) return;
        const p = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (op === 1) note(`text frame "${p}"`);
        else if (op === 8) {
          result.closeFrame = Date.now() - t0;
          note(`CLOSE frame ${p.readUInt16BE(0)} "${p.subarray(2)}"  -> client replies with a close frame (RFC 6455 5.5.1)`);
          sock.write(frame(8, p.subarray(0, 2)));
        } else note(`opcode ${op}`);
      }
    });
    sock.on('end', () => {
      result.fin = Date.now() - t0;
      note('server ended the TCP connection (FIN)');
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ ...result, log });
    });
    sock.on('error', (e) => note(`socket error ${e.message}`));
    const timer = setTimeout(() => {
      note(`server still holds the TCP connection after ${waitMs} ms: client gives up`);
      sock.destroy();
    }, waitMs);
  });
  done.destroy = () => handle.destroy?.();
  return done;
}

const CASES = [
  ['hib-fetch', 'echo'], ['hib-fetch', 'none'],
  ['hib-msg', 'echo'], ['hib-msg', 'none'],
  ['hib-alarm', 'echo'], ['hib-alarm', 'none'],
  ['hib-req', 'echo'], ['hib-req', 'none'],
  ['hib-busy', 'echo'], ['hib-peer', 'echo'],
  ['std-fetch', 'echo'], ['std-later', 'echo'],
];

async function runCases(label, port, { get }) {
  const rows = [];
  console.log(`\n######## ${label}`);
  // All cases at once (each its own object), so the whole run takes ~WAIT, not one WAIT per case.
  const results = await Promise.all(
    CASES.map(async ([mode, onclose], i) => {
      const name = `${label}-${mode}-${onclose}-${i}`;
      const q = `/?mode=${mode}&onclose=${onclose}&name=${encodeURIComponent(name)}`;
      const pending = rawClient(port, q, { send: mode === 'hib-msg' ? 'hi' : null, waitMs: WAIT });
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      let helper = null;
      let busy = false;
      if (mode === 'hib-req' || mode === 'hib-busy') {
        await sleep(500);
        await get(`/closeall?onclose=${onclose}&name=${encodeURIComponent(name)}`);
      }
      if (mode === 'hib-busy') {
        busy = true;
        (async () => {
          while (busy) {
            await get(`/ping?onclose=${onclose}&name=${encodeURIComponent(name)}`);
            await sleep(1000);
          }
        })();
      }
      if (mode === 'hib-peer') {
        await sleep(300);
        helper = rawClient(port, q, { send: 'close-peer', waitMs: WAIT });
      }
      const result = await pending;
      busy = false;
      if (helper) helper.destroy();
      return [mode, onclose, result];
    })
  );
  for (const [mode, onclose, r] of results) {
    console.log(`\n== ${mode}, webSocketClose handler: ${onclose}`);
    for (const line of r.log) console.log(line);
    rows.push({ label, mode, onclose, closeFrame: r.closeFrame, fin: r.fin });
  }
  return rows;
}

async function viaMiniflare() {
  const { Miniflare } = await import(path.join(NM, 'miniflare', 'dist', 'src', 'index.js'));
  const mf = new Miniflare({
    modules: true,
    script: WORKER,
    host: '127.0.0.1',
    port: 0,
    compatibilityDate: COMPAT_DATE,
    durableObjects: { ECHO: { className: 'Echo', useSQLite: true }, NOHANDLER: { className: 'NoHandler', useSQLite: true } },
  });
  const url = await mf.ready;
  try {
    return await runCases(`miniflare ${version('miniflare')} (Node API, mf.ready URL)`, Number(url.port), {
      get: async (p) => void (await (await mf.dispatchFetch(new URL(p, url))).text()),
    });
  } finally {
    await mf.dispose();
  }
}

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function viaWorkerd() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h1-workerd-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'worker.mjs'), WORKER);
  fs.mkdirSync(path.join(dir, 'do'));
  fs.writeFileSync(
    path.join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker), (name = "do-disk", disk = (path = "${dir}/do", writable = true)) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [ (name = "worker.mjs", esModule = embed "worker.mjs") ],
  compatibilityDate = "${COMPAT_DATE}",
  bindings = [ (name = "ECHO", durableObjectNamespace = "Echo"), (name = "NOHANDLER", durableObjectNamespace = "NoHandler") ],
  durableObjectNamespaces = [
    (className = "Echo", uniqueKey = "h1-echo", enableSql = true),
    (className = "NoHandler", uniqueKey = "h1-nohandler", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "do-disk"),
);
`
  );
  const bin = path.join(NM, 'workerd', 'bin', 'workerd');
  const proc = spawn(bin, ['serve', path.join(dir, 'config.capnp')], { stdio: ['ignore', 'inherit', 'inherit'] });
  try {
    for (let i = 0; ; i++) {
      const ok = await new Promise((r) => net.connect(port, '127.0.0.1').on('connect', function () { this.destroy(); r(true); }).on('error', () => r(false)));
      if (ok) break;
      if (i > 300) throw new Error('workerd did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    return await runCases(`bare workerd ${version('workerd')} (workerd serve, no Miniflare)`, port, {
      get: async (p) => void (await (await fetch(`http://127.0.0.1:${port}${p}`)).text()),
    });
  } finally {
    proc.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const rows = [];
if (only !== 'workerd') rows.push(...(await viaMiniflare()));
if (only !== 'miniflare') rows.push(...(await viaWorkerd()));
console.log('\n######## summary: does the client get the close frame, and how long after it does the server end TCP?');
for (const r of rows)
  console.log(
    `${r.label.split(' (')[0].padEnd(28)} ${r.mode.padEnd(10)} webSocketClose=${r.onclose.padEnd(5)} ` +
      `close frame: ${r.closeFrame != null ? 'yes' : 'NO '}   server FIN: ` +
      (r.fin == null ? `none within ${WAIT} ms` : r.closeFrame == null ? `${r.fin} ms` : `${r.fin - r.closeFrame} ms after the close frame`)
  );
const late = rows.filter((r) => r.closeFrame != null && (r.fin == null || r.fin - r.closeFrame > 2000));
console.log(
  late.length
    ? `\nH1 reproduced: every close frame arrived, but for ${late.length} case(s) (${[...new Set(late.map((r) => r.mode))].join(', ')}) ` +
        'the server kept the TCP connection open after the closing handshake (until the Durable Object was evicted, ' +
        'or for good while it stays busy). A client that waits for the server to end TCP (RFC 6455 7.1.1; Python ' +
        "websockets' wait_closed() / `async for`) waits that long."
    : '\nH1 not reproduced: the server ended TCP promptly after every closing handshake.'
);
