// The live dashboard in Chromium against a real pipescope with its own PostgreSQL: runs appear
// and stream without reloads, drill-down to a step, inert rendering of hostile text, and an
// honest connection dot across a server restart.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  EVENTUALLY, ReportedRun, closePages, copied, launchBrowser, newContext, openPage, pacedConfig, screenshot, startPipescope,
  startRun,
} from '../support.mjs';

let server;
let browser;
let config;

before(async () => {
  // Simulated providers: one slow enough to watch a response stream in, one instant, one that
  // keeps its runs running until they are cancelled.
  config = pacedConfig(30);
  server = await startPipescope(['--config', config]);
  browser = await launchBrowser();
});

afterEach(() => closePages(browser));

after(async () => {
  await browser?.close();
  await server?.stop();
});

const PIPELINE = `
name: watch-me
defaults: { provider: paced, max_tokens: 120 }
inputs:
  topic: { default: "stream processing" }
steps:
  - name: outline
    prompt: "Outline {{ topic }}."
  - name: draft
    prompt: "Expand: {{ steps.outline.output }}"
`;

test('a run appears, streams into the inspector and completes without a reload', async () => {
  const { page, problems } = await openPage(browser, server.url);
  await page.evaluate(() => { window.__sameDocument = true; });
  // The test reports the run itself, so its response streams exactly while the page is watched.
  const run = new ReportedRun(server.url, 'watch-me', ['outline', 'draft']);
  await run.start();
  const row = page.locator(`[data-run-id="${run.id}"]`);
  await row.waitFor({ timeout: EVENTUALLY });
  await row.click();
  // The timeline shows the running step, the inspector its prompt and a growing response.
  await run.startStep('outline', 'Outline stream processing.');
  await page.locator('[data-testid="step-row"][data-step="outline"]').waitFor({ timeout: EVENTUALLY });
  await page.locator('[data-testid="step-row"][data-step="outline"]').click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="prompt-text"]')?.textContent === 'Outline stream processing.',
    null,
    { timeout: EVENTUALLY },
  );
  const lengths = [];
  for (let i = 0; i < 4; i += 1) {
    lengths.push((await page.textContent('[data-testid="response-text"]')).length);
    // The next chunk, and the page showing it, before the next sample.
    await run.stream('outline', `Point ${i + 1} of the outline. `);
    await page.waitForFunction(
      (text) => document.querySelector('[data-testid="response-text"]')?.textContent === text,
      run.responses.get('outline'),
      { timeout: EVENTUALLY },
    );
  }
  assert.ok(lengths[3] > lengths[0], `the response grows while streaming: ${lengths}`);
  await screenshot(page, 'dashboard-streaming');
  await run.finishStep('outline');
  await run.startStep('draft', `Expand: ${run.responses.get('outline')}`);
  await run.stream('draft', 'The draft.');
  await run.finishStep('draft');
  await run.complete();
  await row.locator('[data-testid="status"]').filter({ hasText: 'complete' }).waitFor({ timeout: EVENTUALLY });
  assert.equal(await row.getAttribute('data-status'), 'completed');
  assert.equal(await page.locator('[data-testid="step-row"]').count(), 2);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload happened');
  assert.deepEqual(problems, []);
});

test('pause and resume from the grid', async () => {
  const { page, problems } = await openPage(browser, server.url);
  // Its responses stall part-way: the run is still running whenever the test acts on it.
  const id = await startRun(server.url, { yaml: PIPELINE, provider: 'stalls' });
  const row = page.locator(`[data-run-id="${id}"]`);
  await row.locator('[data-testid="pause"]').click({ timeout: EVENTUALLY });
  await row.locator('[data-testid="status"]').filter({ hasText: 'paused' }).waitFor({ timeout: EVENTUALLY });
  await row.locator('[data-testid="resume"]').click();
  await row.locator('[data-testid="status"]').filter({ hasText: 'running' }).waitFor({ timeout: EVENTUALLY });
  await row.locator('[data-testid="cancel"]').click();
  await row.locator('[data-testid="status"]').filter({ hasText: 'cancelled' }).waitFor({ timeout: EVENTUALLY });
  assert.deepEqual(problems, []);
});

test('keyboard: Space pauses and resumes the selected run, ? lists the shortcuts, Esc closes', async () => {
  const { page, problems } = await openPage(browser, server.url);
  // Its responses stall part-way: the run is still running whenever the test acts on it.
  const id = await startRun(server.url, { yaml: PIPELINE, provider: 'stalls' });
  const row = page.locator(`[data-run-id="${id}"]`);
  await row.locator('.run-name').click({ timeout: EVENTUALLY });
  await page.keyboard.press('Space');
  await row.locator('[data-testid="status"]').filter({ hasText: 'paused' }).waitFor({ timeout: EVENTUALLY });
  await page.keyboard.press('Space');
  await row.locator('[data-testid="status"]').filter({ hasText: 'running' }).waitFor({ timeout: EVENTUALLY });
  await page.keyboard.press('Shift+Slash');
  await page.locator('[data-testid="shortcuts"]').waitFor();
  await page.keyboard.press('Escape');
  await page.locator('[data-testid="shortcuts"]').waitFor({ state: 'detached' });
  await row.locator('[data-testid="cancel"]').click();
  await row.locator('[data-testid="status"]').filter({ hasText: 'cancelled' }).waitFor(); // no run left stalled
  assert.deepEqual(problems, []);
});

test('a text selection, an open panel and the scroll position survive 100 events', async () => {
  const { page, problems } = await openPage(browser, server.url);
  // A finished run to read, selected and inspected.
  const done = await startRun(server.url, { yaml: PIPELINE, provider: 'instant' });
  const row = page.locator(`[data-run-id="${done}"]`);
  await row.locator('[data-testid="status"]').filter({ hasText: 'complete' }).waitFor({ timeout: EVENTUALLY });
  await row.locator('.run-name').click();
  await page.locator('[data-testid="step-row"][data-step="outline"]').click({ timeout: EVENTUALLY });
  await page.locator('details.template > summary').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="response-text"]')?.textContent.length > 40);
  const selected = await page.evaluate(() => {
    const pre = document.querySelector('[data-testid="response-text"]');
    const node = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT).nextNode();
    const range = document.createRange();
    range.setStart(node, 5);
    range.setEnd(node, 30);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    return selection.toString();
  });
  // Meanwhile other runs stream: at least 100 events reach the page (counted from before the
  // first run starts: each of their 6 steps streams at least 40 chunks).
  await page.evaluate(() => new Promise((resolve, reject) => {
    window.__events = 0;
    const source = new EventSource('/api/events');
    for (const name of ['response:streaming', 'step:progress', 'step:started', 'prompt:sent', 'step:completed', 'pipeline:started', 'metrics:updated']) {
      source.addEventListener(name, () => { window.__events += 1; });
    }
    source.addEventListener('open', resolve, { once: true });
    source.addEventListener('error', () => reject(new Error('the event stream did not open')), { once: true });
  }));
  const others = [];
  for (let i = 0; i < 3; i += 1) others.push(await startRun(server.url, { yaml: PIPELINE }));
  await page.waitForFunction(() => window.__events >= 100, null, { timeout: EVENTUALLY });
  // ... and the dashboard has shown all of them, to the end of each run.
  for (const id of others) {
    await page.locator(`[data-run-id="${id}"] [data-testid="status"]`).filter({ hasText: 'complete' }).waitFor({ timeout: EVENTUALLY });
  }
  assert.equal(await page.evaluate(() => window.getSelection().toString()), selected, 'the selection is intact');
  assert.equal(await page.evaluate(() => document.querySelector('details.template').open), true, 'the panel stayed open');
  assert.equal(await page.locator('.run.selected').getAttribute('data-run-id'), done, 'the run stayed selected');
  assert.deepEqual(problems, []);
});

test('the inspector copies the prompt and the response, and exports the run as JSON', async () => {
  const id = await startRun(server.url, { yaml: PIPELINE, provider: 'instant' });
  const context = await newContext(browser, { permissions: ['clipboard-read', 'clipboard-write'] });
  const page = await context.newPage();
  await page.goto(`${server.url}/runs/${id}/steps/outline`);
  await page.waitForSelector('[data-hydrated="true"]');
  await page.waitForFunction(
    () => document.querySelector('[data-testid="response-text"]')?.textContent.length > 20
      && !document.querySelector('h3.label')?.parentElement.textContent.includes('streaming'),
    null,
    { timeout: EVENTUALLY },
  );
  assert.equal(await copied(page, () => page.click('[data-testid="copy-prompt"]')), 'Outline stream processing.');
  const copiedResponse = await copied(page, () => page.click('[data-testid="copy-response"]'));
  const response = await page.textContent('[data-testid="response-text"]');
  assert.equal(copiedResponse, response);
  assert.equal(await page.textContent('[data-testid="copied"]'), 'response copied');
  const href = await page.getAttribute('[data-testid="export-json"]', 'href');
  const exported = await (await fetch(`${server.url}${href}`)).json();
  assert.equal(exported.id, id);
  assert.ok(exported.steps.some((s) => s.step === 'outline' && s.prompt === 'Outline stream processing.'));
  await context.close();
});

test('markup in prompts and responses is shown as text, never run', async () => {
  const hostile = `
name: hostile
defaults: { provider: simulated, max_tokens: 40 }
steps:
  - name: inject
    system: "<img src=x onerror=\\"window.__pwned=1\\">"
    prompt: "<script>window.__pwned=2</script> and <b>bold</b>"
`;
  const id = await startRun(server.url, { yaml: hostile });
  const { page, problems } = await openPage(browser, `${server.url}/runs/${id}/steps/inject`);
  await page.waitForFunction(
    () => document.querySelector('[data-testid="prompt-text"]')?.textContent.includes('<script>'),
    null,
    { timeout: EVENTUALLY },
  );
  assert.equal(await page.textContent('[data-testid="system-text"]'), '<img src=x onerror="window.__pwned=1">');
  assert.equal(await page.locator('[data-testid="inspector"] img, [data-testid="inspector"] script, [data-testid="inspector"] b').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await screenshot(page, 'inspector-full-page');
  assert.deepEqual(problems, []);
});

test('the connection dot shows a restart and the view catches up without duplicates', async () => {
  const { page } = await openPage(browser, server.url);
  const dot = page.locator('[data-testid="connection"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="connection"]')?.dataset.state === 'live', null, { timeout: EVENTUALLY });
  await server.stop();
  await page.waitForFunction(
    () => ['reconnecting', 'offline'].includes(document.querySelector('[data-testid="connection"]')?.dataset.state),
    null,
    { timeout: EVENTUALLY },
  );
  assert.notEqual(await dot.getAttribute('data-state'), 'live');
  server = await startPipescope(['--config', config], server);
  const id = await startRun(server.url, { yaml: PIPELINE });
  await page.waitForFunction(() => document.querySelector('[data-testid="connection"]')?.dataset.state === 'live', null, { timeout: EVENTUALLY });
  const row = page.locator(`[data-run-id="${id}"]`);
  await row.waitFor({ timeout: EVENTUALLY });
  await row.click();
  await row.locator('[data-testid="status"]').filter({ hasText: 'complete' }).waitFor({ timeout: EVENTUALLY });
  // Each step attempt once: nothing missed, nothing doubled.
  const steps = await page.locator('[data-testid="step-row"]').evaluateAll((rows) => rows.map((r) => r.dataset.step));
  assert.deepEqual(steps, ['outline', 'draft']);
  assert.equal(await page.locator(`[data-run-id="${id}"]`).count(), 1);
});
