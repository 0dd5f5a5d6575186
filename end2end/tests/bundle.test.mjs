// The dashboard's first load in Chromium against a real pipescope (a release build split at its
// `#[lazy]` functions): what the page fetches before it is hydrated, gzip -9, must stay under its
// ceiling, and every part left out of it (colours, switcher list, menus, raw data, shortcut list,
// run log) must load on first use on a cold cache and work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { EVENTUALLY, ReportedRun, openPage, usePipescope } from '../support.mjs';

/**
 * The first load's budget is 250 KB gzip (the issue "Lean and fast at any history size"); the
 * ceiling is where the bundle stands today, so it cannot grow back. Lower it with every gain;
 * raising it needs a reason in the commit that does.
 */
const BUDGET = 250 * 1024;
const CEILING = 492_500; // measured 492,066 B: 491,127 B (server functions answer in the JSON codec the page reads everything else with, events are read without serde's buffering), then the History link and its routes (+706 B) and the signed-out check of a refused stream (+233 B)

const shared = usePipescope();

/**
 * Runs in the page before its scripts: notes the time the page says it is hydrated. The page
 * fetches what the first paint did not need only when the browser is next idle, which is after
 * this observer's callback, so what started before that time is the first load.
 */
function noteHydration() {
  new MutationObserver((_, observer) => {
    if (document.querySelector('[data-hydrated="true"]')) {
      window.__hydratedAt = performance.now();
      observer.disconnect();
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-hydrated'] });
}

/** The WASM and JS under /pkg/ the page fetched, with when each started. */
async function fetched(page) {
  return page.evaluate(() =>
    performance
      .getEntriesByType('resource')
      .filter((e) => new URL(e.name).pathname.startsWith('/pkg/') && /\.(wasm|js)$/.test(new URL(e.name).pathname))
      .map((e) => ({ path: new URL(e.name).pathname, start: e.startTime })),
  );
}

const gzipped = (path) =>
  gzipSync(readFileSync(join(process.env.PIPESCOPE_SITE_ROOT, path)), { level: 9 }).length;

const JSON_ANSWER = '{"verdict": "ship", "score": 0.92}';

test('the first load stays under its ceiling and leaves the on-demand parts out', async () => {
  await ReportedRun.finished(shared.server.url, 'first-load', 'Reply with JSON.', JSON_ANSWER);
  const { page, problems } = await openPage(shared.browser, shared.server.url, undefined, [noteHydration]);
  const hydratedAt = await page.evaluate(() => window.__hydratedAt);
  assert.ok(hydratedAt > 0, 'the page noted its hydration');
  const first = (await fetched(page)).filter((f) => f.start <= hydratedAt);
  const paths = first.map((f) => f.path);
  assert.ok(paths.includes('/pkg/pipescope.wasm'), `the main module is in the first load: ${paths}`);
  const chunks = paths.filter((p) => /\/(split_|chunk_)[^/]*\.wasm$/.test(p));
  assert.deepEqual(chunks, [], 'no chunk is needed before the dashboard is hydrated');
  const total = paths.reduce((sum, p) => sum + gzipped(p), 0);
  console.log(
    `first load: ${paths.join(' + ')} = ${total} B gzip -9 ` +
      `(ceiling ${CEILING} B, budget ${BUDGET} B, ${total <= BUDGET ? 'within' : 'over'} budget)`,
  );
  assert.ok(total <= CEILING, `first load ${total} B gzip is over its ceiling of ${CEILING} B`);
  assert.deepEqual(problems, []);
});

test('each on-demand part loads from its chunk on a cold cache and works', async () => {
  const id = await ReportedRun.finished(shared.server.url, 'cold-cache', 'Reply with JSON.', JSON_ANSWER);
  const { page, problems } = await openPage(shared.browser, `${shared.server.url}/runs/${id}`, undefined, [noteHydration]);
  // Colours come with their chunk, after hydration.
  await page.locator('[data-testid="response-text"] .tk-key').first().waitFor({ timeout: EVENTUALLY });
  assert.deepEqual(await page.locator('[data-testid="response-text"] .tk-key').allTextContents(), ['"verdict"', '"score"']);
  assert.equal(await page.textContent('[data-testid="response-text"]'), JSON_ANSWER, 'colours change no character');

  await page.keyboard.press('Control+p');
  await page.keyboard.type('cold-c');
  assert.equal(await page.inputValue('[data-testid="switcher-input"]'), 'cold-c', 'what was typed at once is kept');
  await page.locator('[data-testid="switcher-entry"]').first().waitFor({ timeout: EVENTUALLY });
  assert.equal(await page.locator('[data-testid="switcher-entry"]').count(), 2, 'the pipeline and its one run');
  await page.keyboard.press('Escape');

  await page.keyboard.press('Shift+Slash');
  await page.locator('[data-testid="shortcuts"]').waitFor({ timeout: EVENTUALLY });
  await page.keyboard.press('Shift+Slash');

  const step = page.locator('[data-testid="step-row"][data-step="answer"]');
  await step.click({ button: 'right' });
  await page.click('[data-testid="menu-raw"]');
  const raw = page.locator('[data-testid="raw-dialog"] pre');
  await raw.locator('.tk-key').first().waitFor({ timeout: EVENTUALLY });
  assert.equal(JSON.parse(await raw.textContent()).response, JSON_ANSWER);
  await page.keyboard.press('Escape');

  await page.click('[data-testid="tab-log"]');
  await page.locator('[data-testid="run-log"] .log-line').first().waitFor({ timeout: EVENTUALLY });

  // Each came in a chunk of its own, none in the first load.
  const hydratedAt = await page.evaluate(() => window.__hydratedAt);
  const later = (await fetched(page)).filter((f) => f.start > hydratedAt && /\/split_/.test(f.path));
  assert.ok(later.length >= 5, `the on-demand parts came in chunks: ${later.map((f) => f.path)}`);
  assert.deepEqual(problems, []);
});

test('the log viewer comes in a chunk of its own', async () => {
  const { page, problems } = await openPage(shared.browser, `${shared.server.url}/logs`);
  await page.locator('[data-testid="logs-list"]').waitFor({ timeout: EVENTUALLY });
  // Its own chunk, fetched as the page hydrates (the dashboard's first load, measured above,
  // has none), and not the pipelines section's.
  const chunks = (await fetched(page)).map((f) => f.path).filter((p) => /\/split_/.test(p));
  assert.ok(chunks.some((p) => /split_logs_view_/.test(p)), `the log viewer's chunk: ${chunks}`);
  assert.ok(!chunks.some((p) => /split_section_view_/.test(p)), `no other section's chunk: ${chunks}`);
  assert.deepEqual(problems, []);
});

test('the history comes in a chunk of its own', async () => {
  const { page, problems } = await openPage(shared.browser, `${shared.server.url}/runs`);
  await page.locator('[data-testid="history-runs"]').waitFor({ timeout: EVENTUALLY });
  const chunks = (await fetched(page)).map((f) => f.path).filter((p) => /\/split_/.test(p));
  assert.ok(chunks.some((p) => /split_history_view_/.test(p)), `the history's chunk: ${chunks}`);
  assert.ok(
    !chunks.some((p) => /split_(section|logs)_view_/.test(p)),
    `no other section's chunk: ${chunks}`,
  );
  assert.deepEqual(problems, []);
});
