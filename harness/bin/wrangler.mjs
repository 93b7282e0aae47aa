#!/usr/bin/env node
// Test-only stand-in for `wrangler`, never shipped: `wrangler dev` serves the project on real
// workerd through the harness launcher (host/launch.mjs), because native Python Workers cannot
// start offline; every other command (`d1 migrations apply --local`, `deploy --dry-run`, ...) is the
// real pinned wrangler from harness/node_modules, unchanged. So `flareflow serve` with
// FLAREFLOW_WRANGLER pointing here, or `npm run dev` with harness/bin first on PATH, runs exactly
// the user's commands, with only the final `wrangler dev` swapped.
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HARNESS_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const REAL = path.join(HARNESS_DIR, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const LAUNCHER = path.join(HARNESS_DIR, 'host', 'launch.mjs');

const args = process.argv.slice(2);
const target = args[0] === 'dev' ? [LAUNCHER, ...args.slice(1)] : [REAL, ...args];
const child = spawn(process.execPath, target, { stdio: 'inherit' });
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 1) : 1)));
