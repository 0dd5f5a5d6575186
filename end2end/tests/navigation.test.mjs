// In-app navigation in Chromium against a real pipescope: however often a tab moves between the
// dashboard, a run's page and a step's page, it holds one live stream (each page closes its own
// when it goes), so the server sees one subscriber for it and the tab keeps its connections for
// loading pages and controlling runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EVENTUALLY, launchBrowser, openPage, pacedConfig, startPipescope, startRun } from '../support.mjs';

let server;
let browser;

before(async () => {
  server = await startPipescope(['--config', pacedConfig(25)]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// `stalls` stops part-way through the response: the run stays running until the test acts on it
// (the timeout is far beyond the test), however slow or fast the machine.
const PIPELINE = `
name: stay-running
defaults: { provider: stalls, max_tokens: 200, timeout_ms: 600000 }
steps:
  - name: outline
    prompt: "Outline stream processing."
`;

/**
 * Runs in the page before its scripts: counts the EventSources the page creates, and how many
 * of them are still open (connecting or connected).
 */
function countEventSources() {
  const Native = window.EventSource;
  const created = [];
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      created.push(this);
    }
  };
  window.__eventSources = () => ({
    created: created.length,
    open: created.filter((source) => source.readyState !== Native.CLOSED).length,
  });
}

async function subscribers() {
  return (await (await fetch(`${server.url}/api/bus/stats`)).json()).subscribers;
}

/** Polls `read` until `done` holds of its value or EVENTUALLY passes; returns the last value. */
async function settle(read, done) {
  let value = await read();
  for (const deadline = Date.now() + EVENTUALLY; !done(value) && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 250));
    value = await read();
  }
  return value;
}

test('20 navigations leave one live stream, and Pause still answers within a second', async () => {
  const id = await startRun(server.url, { yaml: PIPELINE });
  // The server has subscribers of its own; the tab's is counted on top of them.
  const before = await subscribers();
  const { page, problems } = await openPage(browser, server.url, undefined, [countEventSources]);
  await page.evaluate(() => { window.__sameDocument = true; });

  // Each hop clicks a link the page shows, as a user would, and waits for the new page.
  const hops = [
    [`[data-testid="open-run"][href="/runs/${id}"]`, `/runs/${id}`, 'run'],
    [`[data-testid="open-step"][href="/runs/${id}/steps/outline"]`, `/runs/${id}/steps/outline`, 'step'],
    [`a.back[href="/runs/${id}"]`, `/runs/${id}`, 'run'],
    ['a.back[href="/"]', '/', 'dashboard'],
  ];
  for (let i = 0; i < 20; i += 1) {
    const [link, path, view] = hops[i % hops.length];
    await page.locator(link).click();
    await page.waitForFunction((p) => location.pathname === p, path);
    await page.locator(`main.board[data-view="${view}"]`).waitFor();
  }
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'every navigation stayed in the page');

  // Back on the dashboard, its own stream connected.
  await page.locator('[data-testid="connection"][data-state="live"]').waitFor();
  const sources = await settle(() => page.evaluate(() => window.__eventSources()), (s) => s.open === 1);
  assert.ok(sources.created >= 21, `each page opened its stream: ${JSON.stringify(sources)}`);
  assert.equal(sources.open, 1, `one EventSource open in the tab: ${JSON.stringify(sources)}`);
  // The server notices a closed stream when it next writes to it (at the latest a heartbeat).
  const after = await settle(subscribers, (n) => n === before + 1);
  assert.equal(after - before, 1, `one subscriber for the tab (before the page: ${before}, now: ${after})`);

  const row = page.locator(`[data-run-id="${id}"]`);
  await row.locator('[data-testid="status"]').filter({ hasText: 'running' }).waitFor();
  await row.locator('[data-testid="pause"]').click();
  await row.locator('[data-testid="status"]').filter({ hasText: 'paused' }).waitFor({ timeout: 1_000 });

  await row.locator('[data-testid="cancel"]').click();
  await row.locator('[data-testid="status"]').filter({ hasText: 'cancelled' }).waitFor();
  // Closing a stream aborts its request, which the browser reports as failed: that is the fix.
  assert.deepEqual(problems.filter((p) => !p.startsWith(`request failed: ${server.url}/api/events`)), []);
});
