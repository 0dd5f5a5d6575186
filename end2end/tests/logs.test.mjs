// The log viewer (/logs) in Chromium against a real pipescope: lines ingested while the page is
// open arrive in order; levels and search narrow them exactly as GET /api/logs does; scrolling
// up pauses the tail and counts what arrives, and jumping back shows it all; older pages are
// read by scrolling up to the first line; export returns the filter's lines; a bad filter says
// what to fix; a run's page links to its lines.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { closePages, events, ingest, launchBrowser, openPage, screenshot, startPipescope } from '../support.mjs';
import { chooseLevelsAndSearch, heldLines, lastShown, waitForCount } from '../logs-support.mjs';

let server;
let browser;

before(async () => {
  server = await startPipescope();
  browser = await launchBrowser();
});

afterEach(() => closePages(browser));

after(async () => {
  await browser?.close();
  await server?.stop();
});

const LEVELS = ['info', 'warn', 'error', 'debug'];

/** Line `i` of a run: its level, message and fields follow from `i`. */
function line(run, i, base) {
  return {
    event: 'log:entry',
    data: {
      level: LEVELS[i % LEVELS.length],
      message: `line ${i}${i % 7 === 0 ? ' upstream Timeout, retrying' : ' fetched <b>page</b>'}`,
      timestamp: new Date(base + i).toISOString(),
      context: { execution_id: run, step: 'fetch', fields: { i, attempt: 1 } },
    },
  };
}

/** Starts a run through the ingest API and reports lines `from..to` of it, 100 a request. */
async function reportLines(run, from, to, base) {
  for (let i = from; i < to; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(i + 100, to); j++) batch.push(line(run, j, base));
    await ingest(server.url, batch);
  }
}

async function startRun(pipeline) {
  const run = randomUUID();
  await ingest(server.url, [events.pipelineStarted(run, pipeline, ['fetch'])]);
  return run;
}

async function apiLines(query) {
  const res = await fetch(`${server.url}/api/logs?${query}&limit=1000`);
  assert.equal(res.status, 200);
  const page = await res.json();
  assert.equal(page.older, null, 'one page holds them all');
  return page.lines;
}

test('lines arrive live in order, filters agree with the API, pausing loses none, export matches', async () => {
  const run = await startRun('e2e-logs');
  const base = Date.now();
  const { page, problems } = await openPage(browser, `${server.url}/logs?run=${run}`);
  await page.locator('[data-testid="logs-list"]').waitFor();

  await reportLines(run, 0, 600, base);
  await waitForCount(page, 600);
  const held = await heldLines(page);
  assert.deepEqual(
    held.map((l) => l.message),
    Array.from({ length: 600 }, (_, i) => line(run, i, base).data.message),
    'every line, in order, its markup as text',
  );
  await page.keyboard.press('End');
  await page.waitForSelector('[data-testid="logs-list"][data-following="true"]');
  assert.equal(await lastShown(page), line(run, 599, base).data.message);

  // Scrolling up pauses the tail; what arrives meanwhile is counted, none is lost.
  await page.hover('[data-testid="logs-list"]');
  await page.mouse.wheel(0, -2000);
  await page.waitForSelector('[data-testid="logs-list"][data-following="false"]');
  await reportLines(run, 600, 650, base);
  await page.locator('[data-testid="logs-new-lines"]', { hasText: '50 new lines — jump to latest' }).waitFor();
  assert.notEqual(await lastShown(page), line(run, 649, base).data.message, 'the view stayed where the reader put it');
  await page.click('[data-testid="logs-new-lines"]');
  await page.waitForSelector('[data-testid="logs-list"][data-following="true"]');
  await waitForCount(page, 650);
  await page.waitForFunction(
    (last) => {
      const list = document.querySelector('[data-testid="logs-list"]');
      return list.scrollTop + list.clientHeight >= list.scrollHeight - 1 && list.textContent.includes(last);
    },
    line(run, 649, base).data.message,
  );
  assert.equal(await lastShown(page), line(run, 649, base).data.message);
  assert.equal(await page.locator('[data-testid="logs-new-lines"]').count(), 0);

  // Levels and search, in the address; the lines are the API's.
  await chooseLevelsAndSearch(page, ['warn', 'error'], 'timeout');
  const query = `run=${run}&level=warn,error&q=timeout`;
  assert.equal(new URL(page.url()).search, `?level=warn,error&run=${run}&q=timeout`);
  const expected = await apiLines(query);
  assert.ok(expected.length > 10, `the filter selects some lines: ${expected.length}`);
  await waitForCount(page, expected.length);
  const filtered = await heldLines(page);
  assert.deepEqual(filtered.map((l) => l.id), expected.map((l) => l.id));
  const marks = await page.locator('[data-testid="log-line"] mark').allTextContents();
  assert.ok(marks.length > 0 && marks.every((m) => m.toLowerCase() === 'timeout'), `matches marked: ${marks}`);
  assert.equal(await page.locator('[data-testid="log-line"][data-level="info"]').count(), 0);

  // A row opens its JSON.
  await page.locator('[data-testid="log-line"]').last().click();
  const json = JSON.parse(await page.textContent('[data-testid="log-detail"] pre'));
  assert.equal(json.id, expected.at(-1).id);
  assert.deepEqual(json.context, expected.at(-1).context);

  await screenshot(page, 'logs-dark');
  await page.click('[data-testid="theme-toggle"]');
  await page.waitForSelector('html[data-theme="light"]');
  await screenshot(page, 'logs-light');
  await page.click('[data-testid="theme-toggle"]');

  // Export: exactly the filter's lines.
  const href = await page.getAttribute('[data-testid="logs-export-text"]', 'href');
  assert.equal(href, `/api/logs/export?level=warn,error&run=${run}&q=timeout&format=text`);
  const text = await (await fetch(`${server.url}${href}`)).text();
  const exported = text.split('\n').filter((l) => l !== '');
  assert.equal(exported.length, expected.length);
  exported.forEach((l, i) => assert.ok(l.includes(expected[i].message), `${l} has ${expected[i].message}`));
  const jsonl = await (await fetch(`${server.url}${await page.getAttribute('[data-testid="logs-export-jsonl"]', 'href')}`)).text();
  assert.deepEqual(
    jsonl.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l).id),
    expected.map((l) => l.id),
  );

  // Back: the filter before the search, its field emptied.
  await page.goBack();
  await page.waitForURL((url) => !url.search.includes('q='));
  assert.equal(await page.inputValue('[data-testid="logs-q"]'), '');
  const warnAndError = await apiLines(`run=${run}&level=warn,error`);
  await waitForCount(page, Math.min(200, warnAndError.length));
  assert.deepEqual(problems, []);
});

test('scrolling up pages in older lines down to the first, without moving what is shown', async () => {
  const run = await startRun('e2e-logs-history');
  const base = Date.now() - 3_600_000;
  await reportLines(run, 0, 700, base);
  const { page, problems } = await openPage(browser, `${server.url}/logs?run=${run}`);
  await waitForCount(page, 200);
  await page.waitForSelector('[data-testid="logs-list"][data-following="true"]');
  await page.waitForFunction(() => {
    const list = document.querySelector('[data-testid="logs-list"]');
    return list.scrollTop > 0 && list.scrollTop + list.clientHeight >= list.scrollHeight - 1;
  });
  assert.equal(await lastShown(page), line(run, 699, base).data.message);
  for (let held = 200; held < 700; held += 200) {
    await page.waitForFunction(
      () => {
        const list = document.querySelector('[data-testid="logs-list"]');
        list.scrollTop = 0;
        return true;
      },
    );
    await waitForCount(page, Math.min(held + 200, 700));
    // The row that was at the top is still at the top of the view: nothing jumped.
    await page.waitForFunction(
      (top) => document.querySelector('[data-testid="logs-list"]').scrollTop === top,
      Math.min(200, 700 - held) * 24,
    );
  }
  await page.locator('[data-testid="logs-count"]', { hasText: 'from the first line' }).waitFor();
  const held = await heldLines(page);
  assert.equal(held.length, 700);
  assert.equal(held[0].message, line(run, 0, base).data.message);
  assert.deepEqual(problems, []);
});

test('a bad filter shows what to fix instead of lines: reversed time range, unknown level, huge page size', async () => {
  const cases = [
    ['from=2026-12-06T11:00:00Z&to=2026-12-06T10:00:00Z', 'to', /reversed.*swap them/],
    ['level=info,fatal', 'level', /unknown level "fatal"; the levels are trace, debug, info, warn, error/],
    ['limit=5000', 'limit', /page size 5000 is over the limit of 1000 lines/],
  ];
  for (const [query, field, says] of cases) {
    const res = await fetch(`${server.url}/api/logs?${query}`);
    assert.equal(res.status, 400, query);
    const { error, path } = await res.json();
    assert.equal(path, field, query);
    assert.match(error, says);
    const { page, problems } = await openPage(browser, `${server.url}/logs?${query}`);
    await page.locator('[data-testid="logs-error"]').waitFor();
    assert.equal(await page.textContent('[data-testid="logs-error-message"]'), error, query);
    assert.match(await page.textContent('[data-testid="logs-error"]'), new RegExp(`\`${field}\`: `));
    assert.equal(await page.locator('[data-testid="logs-list"]').count(), 0, query);
    assert.deepEqual(problems, []);
  }

  // Typed into the filter bar, a reversed range is refused there, before any request.
  const { page, problems } = await openPage(browser, `${server.url}/logs`);
  await page.fill('[data-testid="logs-from"]', '2026-12-06T11:00:00Z');
  await page.fill('[data-testid="logs-to"]', '2026-12-06T10:00:00Z');
  await page.click('[data-testid="logs-apply"]');
  await page.locator('[data-testid="logs-filter-problem"]', { hasText: 'reversed' }).waitFor();
  assert.equal(new URL(page.url()).search, '');
  assert.deepEqual(problems, []);
});

test('a run links to its lines', async () => {
  const run = await startRun('e2e-logs-link');
  await reportLines(run, 0, 3, Date.now());
  const runPage = await openPage(browser, `${server.url}/runs/${run}`);
  await runPage.page.click('[data-testid="view-logs"]');
  await runPage.page.waitForURL(`${server.url}/logs?run=${run}`);
  await waitForCount(runPage.page, 3);
  assert.equal(await runPage.page.getAttribute('[data-testid="nav-logs"]', 'aria-current'), 'page');
  // The run page's own stream is closed as the app navigates away from it.
  assert.deepEqual(runPage.problems.filter((p) => !p.startsWith(`request failed: ${server.url}/api/events`)), []);
});

test('a line stored late with an earlier time shows live at its time', async () => {
  const run = await startRun('e2e-logs-late');
  const base = Date.now();
  const { page, problems } = await openPage(browser, `${server.url}/logs?run=${run}`);
  await page.locator('[data-testid="logs-list"]').waitFor();
  await reportLines(run, 0, 100, base);
  await waitForCount(page, 100);

  // Reported after line 99, with the times of line 50 and of before the first line: a client
  // whose report was delayed. Each goes to its time (a tie with line 50 after it: stored later).
  const late = (message, at) => ({
    event: 'log:entry',
    data: { level: 'warn', message, timestamp: new Date(at).toISOString(), context: { execution_id: run, step: 'fetch' } },
  });
  await ingest(server.url, [late('late at line 50', base + 50), late('late before the first', base - 1000)]);
  await waitForCount(page, 102);
  const messages = Array.from({ length: 100 }, (_, i) => line(run, i, base).data.message);
  messages.splice(51, 0, 'late at line 50');
  messages.unshift('late before the first');
  assert.deepEqual((await heldLines(page)).map((l) => l.message), messages);
  assert.deepEqual(
    (await apiLines(`run=${run}`)).map((l) => l.message),
    messages,
    'the order of a page read afresh',
  );
  assert.deepEqual(problems, []);
});
