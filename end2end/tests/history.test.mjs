// The history (/runs) in Chromium against a real pipescope: runs reported through the ingest API
// are listed; the filter bar narrows them as GET /api/history does (the address holds the
// filter); paging reaches the last run; a row opens its run; the search finds words in
// responses; the export holds the filter's runs; a bad filter says what to fix; two ticked
// runs open side by side with their differences marked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { EVENTUALLY, events, ingest, openPage, screenshot, usePipescope } from '../support.mjs';

const shared = usePipescope();
/** Runs reported by `seed`. */
const RUNS = 24;
/** Run `i`'s shape follows from `i`. */
const pipelineOf = (i) => (i % 3 === 0 ? 'hist-alpha' : 'hist-beta');
const failed = (i) => i % 4 === 1;
const zebra = (i) => i % 5 === 0;

let seeded = null;

/** Reports the runs once (both tests use them): one step each, finished a minute apart. */
async function seed() {
  if (seeded) return seeded;
  const base = Date.now() - 2 * 3600_000;
  const ids = [];
  for (let i = 0; i < RUNS; i++) {
    const id = randomUUID();
    ids.push(id);
    const response = zebra(i) ? `Run ${i}: a zebra crossed the road` : `Run ${i}: nothing to report`;
    await ingest(shared.server.url, [
      events.pipelineStarted(id, pipelineOf(i), ['draft'], new Date(base + i * 60_000)),
      {
        event: 'step:started',
        data: { execution_id: id, step: 'draft', provider: i % 2 ? 'openai' : 'anthropic', model: 'm-1', attempt: 1 },
      },
      events.promptSent(id, 'draft', `Draft number ${i} about the history page`),
      events.responseReceived(id, 'draft', response, 20 + i),
      events.stepCompleted(id, 'draft', 1000 + i * 10, 32 + i),
      failed(i)
        ? { event: 'pipeline:error', data: { execution_id: id, error: `provider error 503 on run ${i}` } }
        : events.pipelineCompleted(id, 32 + i, 1000 + i * 10),
    ]);
  }
  seeded = ids;
  return ids;
}

/** The ids GET /api/history lists for `query`, in its order (one page holds them all). */
async function apiIds(query) {
  const res = await fetch(`${shared.server.url}/api/history?${query}&limit=500`);
  assert.equal(res.status, 200, await res.clone().text());
  const page = await res.json();
  assert.equal(page.next, null, 'one page holds them all');
  return page.runs.map((r) => r.id);
}

/** The ids of the rows shown. */
const shownIds = (page) =>
  page.locator('[data-testid="history-run"]').evaluateAll((rows) => rows.map((r) => r.dataset.run));

/** Waits until the rows shown are exactly `ids` (the table keeps the previous page meanwhile). */
async function waitForRows(page, ids) {
  await page.waitForFunction(
    (want) => {
      const rows = [...document.querySelectorAll('[data-testid="history-run"]')].map((r) => r.dataset.run);
      return rows.length === want.length && rows.every((id, i) => id === want[i]);
    },
    ids,
    { timeout: EVENTUALLY },
  );
}

test('the filter narrows the runs, paging reaches the last one, a row opens its run', async () => {
  await seed();
  const { page, problems } = await openPage(shared.browser, `${shared.server.url}/runs`);
  await page.locator('[data-testid="history-runs"]').waitFor({ timeout: EVENTUALLY });
  await screenshot(page, 'history-dark');

  // A pipeline typed and applied: the address holds it, the rows are that pipeline's runs.
  await page.fill('[data-testid="history-pipeline"]', 'hist-alpha');
  await page.click('[data-testid="history-apply"]');
  await page.waitForURL(/\/runs\?pipeline=hist-alpha$/, { timeout: EVENTUALLY });
  const alpha = await apiIds('pipeline=hist-alpha');
  assert.equal(alpha.length, RUNS / 3);
  await waitForRows(page, alpha);
  const names = await page.locator('[data-testid="history-run-link"]').allTextContents();
  assert.ok(names.every((n) => n === 'hist-alpha'), names.join());

  // A status toggled on top: failed runs of that pipeline only.
  await page.click('[data-testid="history-status-failed"]');
  await page.waitForURL(/status=failed/, { timeout: EVENTUALLY });
  const alphaFailed = await apiIds('pipeline=hist-alpha&status=failed');
  assert.equal(alphaFailed.length, 2, 'runs 9 and 21');
  await waitForRows(page, alphaFailed);
  assert.equal(await page.getAttribute('[data-testid="history-status-failed"]', 'aria-pressed'), 'true');

  // Five runs a page, oldest first: Next until there is none reaches the last run, each once.
  await page.goto(`${shared.server.url}/runs?pipeline=hist-beta&sort=oldest&limit=5`);
  const beta = await apiIds('pipeline=hist-beta&sort=oldest');
  assert.equal(beta.length, RUNS - RUNS / 3);
  const seen = [];
  for (let n = 0; ; n++) {
    await waitForRows(page, beta.slice(n * 5, n * 5 + 5));
    seen.push(...(await shownIds(page)));
    const next = page.locator('[data-testid="history-next"]');
    if ((await next.count()) === 0) break;
    await next.click();
  }
  assert.deepEqual(seen, beta);
  assert.match(await page.textContent('[data-testid="history-count"]'), /the last page/);
  assert.equal(await page.locator('[data-testid="history-first"]').count(), 1, 'a way back to the first page');

  // A row opens its run's page.
  const last = beta[beta.length - 1];
  await page.click(`[data-testid="history-run"][data-run="${last}"] [data-testid="history-run-link"]`);
  await page.waitForURL(`${shared.server.url}/runs/${last}`, { timeout: EVENTUALLY });
  await page.locator('[data-testid="connection"]').waitFor({ timeout: EVENTUALLY });
  assert.deepEqual(problems, []);
});

test('the search finds words in responses, the export holds the filter, a bad filter says why', async () => {
  const ids = await seed();
  // Steps are indexed for search in the background just after they are stored: wait until the
  // server finds all of them (it says how many wait), then search in the page.
  const want = ids.filter((_, i) => zebra(i)).reverse();
  const deadline = Date.now() + EVENTUALLY;
  let found = await apiIds('q=zebra');
  while (found.length < want.length && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    found = await apiIds('q=zebra');
  }
  assert.deepEqual(found, want, 'newest first, the runs whose response says zebra');
  const { page, problems } = await openPage(shared.browser, `${shared.server.url}/runs?limit=100`);
  await page.locator('[data-testid="history-runs"]').waitFor({ timeout: EVENTUALLY });
  await page.fill('[data-testid="history-q"]', 'zebra');
  await page.press('[data-testid="history-q"]', 'Enter');
  await page.waitForURL(/q=zebra/, { timeout: EVENTUALLY });
  await waitForRows(page, want);

  // The light theme, for the eye.
  await page.click('[data-testid="theme-toggle"]');
  await page.waitForFunction(() => document.documentElement.dataset.theme === 'light');
  await screenshot(page, 'history-search-light');

  // The CSV link exports every run of the filter shown, in its order.
  const href = await page.getAttribute('[data-testid="history-export-csv"]', 'href');
  assert.ok(href.startsWith('/api/history/export?') && href.includes('q=zebra') && !href.includes('limit'), href);
  const res = await fetch(`${shared.server.url}${href}`);
  assert.equal(res.status, 200);
  const lines = (await res.text()).trim().split('\n');
  assert.match(lines[0], /^id,pipeline,status,/);
  assert.deepEqual(lines.slice(1).map((l) => l.split(',')[0]), want);

  // A filter that cannot be used: what to fix, and no export links.
  await page.goto(`${shared.server.url}/runs?status=failed,done`);
  const message = page.locator('[data-testid="history-error-message"]');
  await message.waitFor({ timeout: EVENTUALLY });
  assert.match(await message.textContent(), /unknown status "done"; the statuses are pending, running/);
  assert.equal(await page.locator('[data-testid="history-export-csv"]').count(), 0);
  await screenshot(page, 'history-bad-filter-light');
  assert.deepEqual(problems, []);
});

test('two ticked runs open side by side, their differences marked', async () => {
  const ids = await seed();
  const { page, problems } = await openPage(shared.browser, `${shared.server.url}/runs?pipeline=hist-alpha&sort=oldest`);
  const alpha = ids.filter((_, i) => pipelineOf(i) === 'hist-alpha');
  await waitForRows(page, alpha);
  // Runs 0 and 3: the first's response mentions a zebra, the other's does not.
  const [a, b] = alpha;
  assert.equal(await page.locator('[data-testid="history-compare"]').count(), 0, 'no link before two are ticked');
  await page.check(`[data-testid="history-run"][data-run="${a}"] [data-testid="history-select"]`);
  await page.check(`[data-testid="history-run"][data-run="${b}"] [data-testid="history-select"]`);
  await page.click('[data-testid="history-compare"]');
  await page.waitForURL(`${shared.server.url}/compare?a=${a}&b=${b}`, { timeout: EVENTUALLY });
  const step = page.locator('[data-testid="compare-step"][data-step="draft"]');
  await step.waitFor({ timeout: EVENTUALLY });
  const response = step.locator('[data-testid="compare-response"]');
  assert.deepEqual(await response.locator('.diff-line.removed').allTextContents(), ['- Run 0: a zebra crossed the road']);
  assert.deepEqual(await response.locator('.diff-line.added').allTextContents(), ['+ Run 3: nothing to report']);
  assert.deepEqual(
    await step.locator('[data-testid="compare-prompt"] .diff-line.added').allTextContents(),
    ['+ Draft number 3 about the history page'],
  );
  // Tokens: run i reported 32 + i.
  const tokens = page.locator('[data-testid="compare-row"][data-label="Tokens"] td');
  assert.deepEqual(await tokens.allTextContents(), ['32', '35', '+3']);
  await screenshot(page, 'history-compare-dark');
  await page.click('[data-testid="theme-toggle"]');
  await page.waitForFunction(() => document.documentElement.dataset.theme === 'light');
  await screenshot(page, 'history-compare-light');

  // An address that names no second run says what to give.
  await page.goto(`${shared.server.url}/compare?a=${a}&b=nope`);
  const message = page.locator('[data-testid="compare-error-message"]');
  await message.waitFor({ timeout: EVENTUALLY });
  assert.match(await message.textContent(), /`b` must be a run id \(a UUID\), not "nope"/);
  assert.deepEqual(problems, []);
});
