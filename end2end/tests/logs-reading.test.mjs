// Reading the log viewer (/logs) in Chromium against a real pipescope: next and previous match
// of the search, wrapped lines as tall as their text (computed, so nothing overlaps or is cut),
// the follow toggle, a line's context and coloured JSON; and the ways in: Ctrl+L from every page
// (scoped to the selected run on the dashboard), View logs on a step and in the context menus.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { EVENTUALLY, ReportedRun, events, ingest, openPage, screenshot, usePipescope } from '../support.mjs';
import { waitForCount } from '../logs-support.mjs';

const shared = usePipescope();

/** Line `i` of `run`: every 5th mentions a timeout, every 9th is long (wraps). */
function line(run, i, base, step = 'fetch') {
  const long = i % 9 === 4 ? ` ${'payload '.repeat(40 + i)}end` : '';
  return {
    event: 'log:entry',
    data: {
      level: i % 5 === 0 ? 'warn' : 'info',
      message: `line ${i}${i % 5 === 0 ? ' upstream timeout' : ''}${long}`,
      timestamp: new Date(base + i).toISOString(),
      context: { execution_id: run, step, fields: { i, host: `worker-${i % 3}` } },
    },
  };
}

async function reportLines(run, from, to, base, step) {
  const batch = [];
  for (let i = from; i < to; i++) batch.push(line(run, i, base, step));
  await ingest(shared.server.url, batch);
}

/** The id of the row marked as the current match, and whether it is inside the list's view. */
const currentMatch = (page) =>
  page.evaluate(() => {
    const list = document.querySelector('[data-testid="logs-list"]');
    const row = list.querySelector('[data-testid="log-line"].current-match');
    if (!row) return null;
    const top = parseFloat(row.style.top);
    return { id: Number(row.dataset.id), inView: top >= list.scrollTop && top + row.offsetHeight <= list.scrollTop + list.clientHeight };
  });

test('next and previous match, wrapped lines, the follow toggle and a line detail', async () => {
  const run = randomUUID();
  await ingest(shared.server.url, [events.pipelineStarted(run, 'e2e-logs-reading', ['fetch'])]);
  const base = Date.now() - 60_000;
  await reportLines(run, 0, 200, base);
  const { page, problems } = await openPage(shared.browser, `${shared.server.url}/logs?run=${run}&q=timeout`);
  await waitForCount(page, 40);
  const matches = await (await fetch(`${shared.server.url}/api/logs?run=${run}&q=timeout&limit=1000`)).json();
  const ids = matches.lines.map((l) => l.id);
  assert.equal(ids.length, 40);

  // Previous starts at the newest match and walks up; next walks back down; `n` is next.
  await page.click('[data-testid="logs-find-previous"]');
  await page.waitForFunction((id) => document.querySelector('.current-match')?.dataset.id === String(id), ids[39]);
  for (const k of [38, 37, 36]) await page.click('[data-testid="logs-find-previous"]');
  await page.waitForFunction((id) => document.querySelector('.current-match')?.dataset.id === String(id), ids[36]);
  await page.click('[data-testid="logs-list"]', { position: { x: 5, y: 5 } });
  await page.keyboard.press('n');
  await page.waitForFunction((id) => document.querySelector('.current-match')?.dataset.id === String(id), ids[37]);
  assert.deepEqual(await currentMatch(page), { id: ids[37], inView: true });
  // Far up the list: the view goes there, and the tail stops moving it.
  for (let k = 37; k > 3; k--) await page.click('[data-testid="logs-find-previous"]');
  await page.waitForFunction((id) => document.querySelector('.current-match')?.dataset.id === String(id), ids[3]);
  assert.deepEqual(await currentMatch(page), { id: ids[3], inView: true });
  assert.equal(await page.getAttribute('[data-testid="logs-list"]', 'data-following'), 'false');
  for (let k = 3; k >= 0; k--) await page.click('[data-testid="logs-find-previous"]');
  await page.locator('[data-testid="logs-find-note"]', { hasText: 'no further match' }).waitFor();

  // Wrapping: every row as tall as its text, no two overlapping, none cut.
  await page.goto(`${shared.server.url}/logs?run=${run}`);
  await page.waitForSelector('[data-hydrated="true"]');
  await waitForCount(page, 200);
  await page.click('[data-testid="logs-wrap"]');
  await page.waitForSelector('[data-testid="logs-list"][data-wrap="true"]');
  const rows = async () =>
    page.evaluate(() => {
      const list = document.querySelector('[data-testid="logs-list"]');
      return [...list.querySelectorAll('[data-testid="log-line"]')]
        .map((r) => {
          const message = r.querySelector('[data-testid="log-message"]');
          return {
            top: parseFloat(r.style.top),
            height: r.offsetHeight,
            text: message.textContent,
            // The message's own lines: what it needs, and what its row gives it.
            needs: message.scrollHeight,
            gets: r.clientHeight - 6,
          };
        })
        .sort((a, b) => a.top - b.top);
    });
  await page.waitForFunction(() =>
    [...document.querySelectorAll('[data-testid="log-line"]')].some((r) => r.offsetHeight > 24),
  );
  await page.waitForFunction(
    () => {
      const list = document.querySelector('[data-testid="logs-list"]');
      return list.scrollTop + list.clientHeight >= list.scrollHeight - 1;
    },
    null,
    { timeout: EVENTUALLY },
  );
  const wrapped = await rows();
  assert.ok(wrapped.some((r) => r.height > 24 * 3), 'a long line takes several lines');
  for (const [k, row] of wrapped.entries()) {
    assert.equal(row.needs, row.gets, `row "${row.text.slice(0, 30)}…" is exactly as tall as its text`);
    if (k > 0) assert.equal(wrapped[k - 1].top + wrapped[k - 1].height, row.top, 'rows touch, none overlaps');
  }
  assert.ok(wrapped.at(-1).text.startsWith('line 199'), 'still at the tail');
  await screenshot(page, 'logs-wrapped');
  await page.click('[data-testid="logs-wrap"]');
  await page.waitForSelector('[data-testid="logs-list"][data-wrap="false"]');
  assert.ok((await rows()).every((r) => r.height === 24), 'unwrapped, every row is one line');

  // The follow toggle: off, new lines are counted, not shown; on, they are.
  await page.click('[data-testid="logs-follow"]');
  await page.waitForSelector('[data-testid="logs-list"][data-following="false"]');
  await reportLines(run, 200, 210, base);
  await page.locator('[data-testid="logs-new-lines"]', { hasText: '10 new lines' }).waitFor();
  await page.click('[data-testid="logs-follow"]');
  await page.waitForSelector('[data-testid="logs-list"][data-following="true"]');
  await page.waitForFunction(() => {
    const list = document.querySelector('[data-testid="logs-list"]');
    return list.scrollTop + list.clientHeight >= list.scrollHeight - 1 && list.textContent.includes('line 209');
  });

  // A line's detail: its context as key and value, and the line as coloured JSON.
  await page.locator('[data-testid="log-line"]').last().click();
  const context = await page.locator('[data-testid="log-context"] > div').allTextContents();
  assert.ok(context.some((c) => c === 'hostworker-2'), `context fields: ${context}`);
  const json = page.locator('[data-testid="log-json"]');
  assert.ok((await json.locator('.tk-key').count()) > 3, 'keys coloured');
  assert.equal(JSON.parse(await json.textContent()).message, 'line 209');
  await screenshot(page, 'logs-detail');
  // Reloading the page (the wrapping check) closes its event stream, which the browser reports.
  assert.deepEqual(
    problems.filter((p) => !p.startsWith(`request failed: ${shared.server.url}/api/events`)),
    [],
  );
});

test('Ctrl+L opens the log viewer from every page; View logs on a run, a step and in the menus', async () => {
  const run = new ReportedRun(shared.server.url, 'e2e-logs-ways-in', ['fetch', 'summarise']);
  await run.start();
  await run.startStep('fetch', 'Fetch it.');
  await run.finishStep('fetch', 'Fetched.');
  await run.startStep('summarise', 'Sum it up.');
  await run.finishStep('summarise', 'Summed.');
  await run.complete();
  const base = Date.now() - 60_000;
  await reportLines(run.id, 0, 5, base, 'fetch');
  await reportLines(run.id, 5, 8, base, 'summarise');

  // The dashboard, a run selected: Ctrl+L opens its lines.
  const { page, problems } = await openPage(shared.browser, shared.server.url);
  const row = page.locator(`[data-run-id="${run.id}"]`);
  await row.locator('[data-testid="status"]').filter({ hasText: 'complete' }).waitFor({ timeout: EVENTUALLY });
  await row.locator('.run-name').click();
  await page.locator(`[data-testid="open-run"][href="/runs/${run.id}"]`).waitFor({ timeout: EVENTUALLY });
  await page.keyboard.press('Control+l');
  await page.waitForURL(`${shared.server.url}/logs?run=${run.id}`);
  await waitForCount(page, 8);

  // On the log viewer, Ctrl+L puts the focus on the lines; from another page it opens /logs.
  await page.keyboard.press('Control+l');
  await page.waitForFunction(() => document.activeElement?.dataset.testid === 'logs-list');
  await page.click('[data-testid="nav-providers"]');
  await page.waitForURL(`${shared.server.url}/providers`);
  // The section's chunk, which sets the shortcut up, is in once its page shows.
  await page.locator('[data-testid="providers"]').waitFor();
  await page.keyboard.press('Control+l');
  await page.waitForURL(`${shared.server.url}/logs`);

  // A step's View logs, on the run's page.
  await page.goto(`${shared.server.url}/runs/${run.id}`);
  await page.waitForSelector('[data-hydrated="true"]');
  await page.click('[data-testid="step-row"][data-step="summarise"]');
  await page.click('[data-testid="step-view-logs"]');
  await page.waitForURL(`${shared.server.url}/logs?run=${run.id}&step=summarise`);
  await waitForCount(page, 3);

  // The context menus of a step and of a run.
  await page.goto(`${shared.server.url}/runs/${run.id}`);
  await page.waitForSelector('[data-hydrated="true"]');
  await page.click('[data-testid="step-row"][data-step="fetch"]', { button: 'right' });
  await page.click('[data-testid="menu-step-logs"]');
  await page.waitForURL(`${shared.server.url}/logs?run=${run.id}&step=fetch`);
  await waitForCount(page, 5);
  await page.goto(shared.server.url);
  await page.waitForSelector('[data-hydrated="true"]');
  await page.locator(`[data-run-id="${run.id}"]`).click({ button: 'right' });
  await page.click('[data-testid="menu-logs"]');
  await page.waitForURL(`${shared.server.url}/logs?run=${run.id}`);
  await waitForCount(page, 8);
  // Each navigation cancels what the page it leaves was fetching (its stream, a page of lines,
  // the icon); errors and panics are what must not happen.
  assert.deepEqual(
    problems.filter((p) => !p.startsWith('request failed: ')),
    [],
  );
});
