// Shared by the browser tests: a real pipescope (its own PostgreSQL included) and Debian's
// Chromium driven by playwright-core. scripts/test sets the PIPESCOPE_* variables.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, chmodSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const required = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run the browser tests through scripts/test`);
  return value;
};

export const screenshotDir = new URL('./screenshots/', import.meta.url).pathname;

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts pipescope on a free port with a fresh data directory; resolves once /healthz is ok.
 * `args` go to pipescope; `reuse` (a previous server) restarts on its port and data.
 */
export async function startPipescope(args = [], reuse = null) {
  const base = required('PIPESCOPE_E2E_DIR');
  const dataDir = reuse?.dataDir ?? mkdtempSync(join(base, 'data-'));
  chmodSync(dataDir, 0o755); // its PostgreSQL runs as another user when we are root
  const port = reuse?.port ?? (await freePort());
  const child = spawn(required('PIPESCOPE_BIN'), ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...args], {
    env: { ...process.env, DATABASE_URL: '', LEPTOS_SITE_ROOT: required('PIPESCOPE_SITE_ROOT'), PIPESCOPE_LOG: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pipescope exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error('pipescope did not become healthy');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    dataDir,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
    },
  };
}

/**
 * A config file adding the simulated provider `paced`, streaming `tokensPerSecond`: slow enough
 * to watch a response arrive. Returns its path, for `startPipescope(['--config', path])`.
 */
export function pacedConfig(tokensPerSecond) {
  const dir = mkdtempSync(join(required('PIPESCOPE_E2E_DIR'), 'cfg-'));
  const path = join(dir, 'pipescope.toml');
  writeFileSync(
    path,
    `[providers.paced]\nkind = "simulated"\ntokens_per_second = ${tokensPerSecond}\nfirst_token_ms = 100\n`,
  );
  return path;
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/**
 * A page that records console errors and failed requests, so a test can assert there were none.
 * `probes` are functions run in the page before any of its own scripts.
 */
export async function openPage(browser, url, viewport = { width: 1440, height: 900 }, probes = []) {
  const page = await browser.newPage({ viewport });
  for (const probe of probes) await page.addInitScript(probe);
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
  await page.goto(url);
  await page.waitForSelector('[data-hydrated="true"]', { timeout: 30_000 });
  return { page, problems };
}

export async function screenshot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: false });
}

/** Starts a run through the API and returns its execution id. */
export async function startRun(url, body) {
  const res = await fetch(`${url}/api/executions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await res.json();
  if (res.status !== 202) throw new Error(`start failed: ${res.status} ${JSON.stringify(answer)}`);
  return answer.execution_id;
}
