// Shared by the browser tests: a real pipescope (its own PostgreSQL included) and Debian's
// Chromium driven by playwright-core. scripts/test sets the PIPESCOPE_* variables.
import { spawn } from 'node:child_process';
import { after, afterEach, before } from 'node:test';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, mkdirSync, chmodSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/**
 * How long a test waits for something that is certain to happen (a page hydrating, an event
 * arriving, a run finishing): long enough for a loaded 2-core machine. A test fails on what it
 * sees, never on how fast the machine is; whatever must happen at a given moment, the test
 * makes happen then (see `ReportedRun`).
 */
export const EVENTUALLY = 60_000;

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
  const deadline = Date.now() + 2 * EVENTUALLY;
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
 * A config file adding the simulated providers the tests use, for `startPipescope(['--config',
 * path])`; returns its path.
 * - `paced` streams `tokensPerSecond`, for runs that stream for a while (it finishes on its own);
 * - `instant` answers at once, for runs a test only needs finished;
 * - `stalls` stops each response part-way and then sends nothing, so its run keeps running until
 *   the test pauses, resumes or cancels it (or after the step's 2-minute timeout).
 */
export function pacedConfig(tokensPerSecond) {
  const dir = mkdtempSync(join(required('PIPESCOPE_E2E_DIR'), 'cfg-'));
  const path = join(dir, 'pipescope.toml');
  writeFileSync(
    path,
    [
      '[providers.paced]',
      'kind = "simulated"',
      `tokens_per_second = ${tokensPerSecond}`,
      'first_token_ms = 100',
      '',
      '[providers.instant]',
      'kind = "simulated"',
      'tokens_per_second = 0',
      'first_token_ms = 0',
      '',
      '[providers.stalls]',
      'kind = "simulated"',
      'tokens_per_second = 25',
      'first_token_ms = 100',
      'stall_rate = 1',
      '',
    ].join('\n'),
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

/** A browser context (`options` as for `browser.newContext`) whose waits last `EVENTUALLY`. */
export async function newContext(browser, options = {}) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(EVENTUALLY);
  return context;
}

/**
 * Runs in a page before its scripts: anything the page's Content-Security-Policy blocks (a
 * script, a style, a connection) becomes a console error, which `watch` records.
 */
function reportCspViolations() {
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline code'} (${e.sourceFile}:${e.lineNumber})`);
  });
}

/**
 * Records `page`'s console errors, page errors, failed requests and Content-Security-Policy
 * violations; returns the list they are added to, so a test can assert it stays empty.
 */
export async function watch(page) {
  await page.addInitScript(reportCspViolations);
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
  return problems;
}

/**
 * A page that records console errors, failed requests and CSP violations (`watch`), so a test
 * can assert there were none. `probes` are functions run in the page before any of its own
 * scripts.
 */
export async function openPage(browser, url, viewport = { width: 1440, height: 900 }, probes = []) {
  const page = await (await newContext(browser, { viewport })).newPage();
  for (const probe of probes) await page.addInitScript(probe);
  const problems = await watch(page);
  await page.goto(url);
  await page.waitForSelector('[data-hydrated="true"]', { timeout: EVENTUALLY });
  return { page, problems };
}

/**
 * A test file's pipescope and browser: started before its tests, pages closed after each, both
 * stopped at the end. Returns an object whose `server` and `browser` are set once started.
 */
export function usePipescope(args = []) {
  const shared = { server: null, browser: null };
  before(async () => {
    shared.server = await startPipescope(args);
    shared.browser = await launchBrowser();
  });
  afterEach(() => closePages(shared.browser));
  after(async () => {
    await shared.browser?.close();
    await shared.server?.stop();
  });
  return shared;
}

/** Closes every page the tests opened in `browser` (for `afterEach`: open pages keep streaming). */
export async function closePages(browser) {
  for (const context of browser?.contexts() ?? []) await context.close();
}

/**
 * What `copy` (an action that copies, e.g. a click) puts on the clipboard. Browsers write to the
 * clipboard asynchronously, after the click has returned: the clipboard holds a marker first, and
 * its text is read once the copy has replaced it. The page needs clipboard permissions.
 */
export async function copied(page, copy) {
  const marker = `not copied yet ${randomUUID()}`;
  await page.evaluate((text) => navigator.clipboard.writeText(text), marker);
  await copy();
  // Any marker, not only this one: the clipboard is the browser's, shared by every page a test
  // file opened, and a marker another copy left must never pass for a copied text.
  // Polled from here: `waitForFunction` does not wait for an async predicate's answer (the
  // promise itself counts as true), so it returned the marker's `false` whenever the copy came
  // after the first check.
  const deadline = Date.now() + EVENTUALLY;
  for (;;) {
    const now = await page.evaluate(() => navigator.clipboard.readText());
    if (!now.startsWith('not copied yet ')) return now;
    if (Date.now() > deadline) throw new Error(`nothing was copied within ${EVENTUALLY} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function screenshot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: false });
}

/** Starts a run through the API (with `token`, when pipescope needs one); its execution id. */
export async function startRun(url, body, token = null) {
  const res = await fetch(`${url}/api/executions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const answer = await res.json();
  if (res.status !== 202) throw new Error(`start failed: ${res.status} ${JSON.stringify(answer)}`);
  return answer.execution_id;
}

/** POSTs a batch to the ingest API and returns its receipt ({accepted, duplicates, seqs}). */
export async function ingest(url, events) {
  const res = await fetch(`${url}/api/ingest/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(events),
  });
  const answer = await res.json();
  if (!res.ok) throw new Error(`ingest failed: ${res.status} ${JSON.stringify(answer)}`);
  return answer;
}

/**
 * Event bodies for the ingest API, with the fields it requires and little more (`at` is added
 * when an event is sent). `steps` in a run's config is what gives the grid its progress bar.
 */
export const events = {
  pipelineStarted: (id, pipeline, steps, startedAt = new Date()) => ({
    event: 'pipeline:started',
    data: {
      execution_id: id,
      pipeline,
      config: { steps: steps.map((name) => ({ name })) },
      inputs: { topic: 'benchmarks' },
      started_at: startedAt.toISOString(),
    },
  }),
  pipelineCompleted: (id, tokens, durationMs) => ({
    event: 'pipeline:completed',
    data: {
      execution_id: id,
      results: {},
      totals: { tokens, cost_usd: tokens * 2e-6, duration_ms: durationMs },
    },
  }),
  stepStarted: (id, step) => ({
    event: 'step:started',
    data: { execution_id: id, step, provider: 'bench', model: 'bench-1', attempt: 1, token_budget: 4096 },
  }),
  /** `more`: other fields of `prompt:sent` (system, template, variables). */
  promptSent: (id, step, prompt, more = {}) => ({
    event: 'prompt:sent',
    data: { execution_id: id, step, prompt, template: prompt, variables: {}, token_count: 12, ...more },
  }),
  chunk: (id, step, chunk) => ({
    event: 'response:streaming',
    data: { execution_id: id, step, chunk },
  }),
  responseReceived: (id, step, response, completionTokens) => ({
    event: 'response:received',
    data: {
      execution_id: id,
      step,
      response,
      usage: { prompt_tokens: 12, completion_tokens: completionTokens, total_tokens: 12 + completionTokens },
      ttft_ms: 180,
    },
  }),
  stepCompleted: (id, step, durationMs, tokens) => ({
    event: 'step:completed',
    data: { execution_id: id, step, duration_ms: durationMs, tokens, cost_usd: tokens * 2e-6, status: 'completed' },
  }),
};

/**
 * A run that the test reports itself through the ingest API, as a pipeline running elsewhere
 * would: it streams a chunk exactly when the test sends one, so a test can act while a response
 * is certainly still streaming (an engine run may have finished by then on a slow machine). Each
 * call is one request, answered once pipescope has the events.
 */
export class ReportedRun {
  constructor(url, pipeline, steps) {
    this.url = url;
    this.id = randomUUID();
    this.pipeline = pipeline;
    this.steps = steps;
    this.responses = new Map();
    this.startedAt = Date.now();
  }

  start() {
    return ingest(this.url, [events.pipelineStarted(this.id, this.pipeline, this.steps)]);
  }

  /** The step starts and its prompt is sent; `more` as for `events.promptSent`. */
  startStep(step, prompt, more = {}) {
    this.responses.set(step, '');
    return ingest(this.url, [events.stepStarted(this.id, step), events.promptSent(this.id, step, prompt, more)]);
  }

  stream(step, chunk) {
    this.responses.set(step, this.responses.get(step) + chunk);
    return ingest(this.url, [events.chunk(this.id, step, chunk)]);
  }

  /** The step's whole response (every chunk streamed, or `response` when given) and its end. */
  finishStep(step, response = this.responses.get(step)) {
    this.responses.set(step, response);
    const tokens = response.split(/\s+/).length;
    return ingest(this.url, [
      events.responseReceived(this.id, step, response, tokens),
      events.stepCompleted(this.id, step, Date.now() - this.startedAt, 12 + tokens),
    ]);
  }

  complete() {
    return ingest(this.url, [events.pipelineCompleted(this.id, 0, Date.now() - this.startedAt)]);
  }

  /** A finished run whose one step `answer` got `prompt` and answered `response`. */
  static async finished(url, pipeline, prompt, response) {
    const run = new ReportedRun(url, pipeline, ['answer']);
    await run.start();
    await run.startStep('answer', prompt);
    await run.finishStep('answer', response);
    await run.complete();
    return run.id;
  }
}
