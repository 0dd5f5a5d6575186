// The log viewer (/logs) at scale, in Chromium against a real pipescope: 10,000 lines ingested
// at 1,000 lines/s while the page is open all arrive in order, pausing and resuming the tail
// loses none, filters and search hold exactly the lines Postgres selects for them and export
// gives exactly those; with 1,000,000 stored lines the list scrolls from the newest to the
// oldest and a search finds exactly the lines that match.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { closePages, events, ingest, launchBrowser, openPage, startPipescope } from '../support.mjs';
import {
  NEEDLE, chooseLevelsAndSearch, fillLog, fillMessage, heldLines, psql, rowsInView, scrollToFirstLine, sendPaced, waitForCount,
  waitForLastShown,
} from '../logs-support.mjs';

let browser;
const servers = [];

before(async () => {
  browser = await launchBrowser();
});

afterEach(() => closePages(browser));

after(async () => {
  await browser?.close();
  for (const server of servers) await server.stop();
});

async function newServer() {
  const server = await startPipescope();
  servers.push(server);
  return server;
}

/** A tall window: the list shows ~85 rows, so reading every row takes fewer scrolls. */
const TALL = { width: 1440, height: 2400 };

const LEVELS = ['info', 'debug', 'info', 'warn', 'info', 'error', 'debug', 'info', 'trace', 'warn'];
const STEPS = ['fetch', 'parse', 'store'];

/**
 * Line `i` of the ingested ones: of run A, of run B or pipescope's own (`i % 3`), at `t0 + i`
 * ms, so their stored order is the order they are sent in.
 */
function scaleLine(i, t0, runs) {
  const run = runs[i % 3] ?? null;
  return {
    level: LEVELS[i % LEVELS.length],
    message: `scale ${i}: ${i % 17 === 0 ? 'checksum MISMATCH in' : 'read'} block ${i % 251} <b>ok</b>`,
    at: t0 + i,
    run: run?.id ?? null,
    pipeline: run?.pipeline ?? null,
    step: run ? STEPS[Math.floor(i / 3) % STEPS.length] : null,
  };
}

const asEvent = (line, i) => ({
  event: 'log:entry',
  data: {
    level: line.level,
    message: line.message,
    timestamp: new Date(line.at).toISOString(),
    context: { ...(line.run ? { execution_id: line.run, step: line.step } : {}), fields: { i } },
  },
});

/** Sends lines `from..to` as `log:entry` events at 1,000 lines/s; returns the rate achieved. */
const send = (server, lines, from, to) =>
  sendPaced(server.url, lines.slice(from, to).map((line, k) => asEvent(line, from + k)), 1000);

/** Scrolls the list up by the mouse wheel (as a reader does) until it no longer follows. */
async function pause(page) {
  await page.hover('[data-testid="logs-list"]');
  await page.mouse.wheel(0, -3000);
  await page.waitForSelector('[data-testid="logs-list"][data-following="false"]');
}

const scrollTop = (page) => page.$eval('[data-testid="logs-list"]', (l) => l.scrollTop);

test('10,000 lines at 1,000 lines/s: all arrive in order, pausing loses none, filters and export match Postgres', async (t) => {
  const server = await newServer();
  const runs = [
    { id: randomUUID(), pipeline: 'scale-a' },
    { id: randomUUID(), pipeline: 'scale-b' },
  ];
  for (const run of runs) await ingest(server.url, [events.pipelineStarted(run.id, run.pipeline, STEPS)]);
  const t0 = Date.now();
  const lines = Array.from({ length: 10_000 }, (_, i) => scaleLine(i, t0, runs));
  const messages = (selected) => selected.map((l) => l.message);

  const { page, problems } = await openPage(browser, `${server.url}/logs`, TALL);
  await page.locator('[data-testid="logs-empty"]').waitFor();
  const rates = [];

  // Following: the view stays at the newest line.
  rates.push(await send(server, lines, 0, 3000));
  await waitForCount(page, 3000);
  await waitForLastShown(page, lines[2999].message);

  // Scrolled up: lines keep coming, the view stays where the reader put it, they are counted;
  // End follows the tail again.
  await pause(page);
  const pausedAt = await scrollTop(page);
  const pausedRows = await rowsInView(page);
  rates.push(await send(server, lines, 3000, 6000));
  await page.locator('[data-testid="logs-new-lines"]', { hasText: '3,000 new lines — jump to latest' }).waitFor();
  await waitForCount(page, 6000);
  assert.equal(await scrollTop(page), pausedAt, 'the view did not move');
  assert.deepEqual(await rowsInView(page), pausedRows);
  assert.equal(await page.getAttribute('[data-testid="logs-list"]', 'data-following'), 'false');
  await page.focus('[data-testid="logs-list"]');
  await page.keyboard.press('End');
  await page.waitForSelector('[data-testid="logs-list"][data-following="true"]');
  await waitForLastShown(page, lines[5999].message);
  assert.equal(await page.locator('[data-testid="logs-new-lines"]').count(), 0);

  rates.push(await send(server, lines, 6000, 8000));
  await waitForCount(page, 8000);
  await waitForLastShown(page, lines[7999].message);

  // Paused again; the button jumps to the latest.
  await pause(page);
  rates.push(await send(server, lines, 8000, 10_000));
  await page.locator('[data-testid="logs-new-lines"]', { hasText: '2,000 new lines — jump to latest' }).waitFor();
  await page.click('[data-testid="logs-new-lines"]');
  await page.waitForSelector('[data-testid="logs-list"][data-following="true"]');
  await waitForLastShown(page, lines[9999].message);
  await waitForCount(page, 10_000);
  t.diagnostic(`sent at ${rates.map((r) => Math.round(r)).join(', ')} lines/s`);

  // Every line, once, in the order sent, which is the stored order.
  const stored = await psql(server, 'SELECT id, message FROM log_entries ORDER BY logged_at, id');
  assert.deepEqual(stored.map(([, message]) => message), messages(lines), 'Postgres holds the lines sent');
  const held = await heldLines(page);
  assert.equal(held.length, 10_000);
  assert.deepEqual(held.map((l) => l.id), stored.map(([id]) => Number(id)));
  assert.deepEqual(held.map((l) => l.message), messages(lines), 'every line in order, its markup as text');
  assert.deepEqual(held.map((l) => l.level), lines.map((l) => l.level));

  /**
   * The page shows `expected` (lines sent) for the filter it is on: Postgres selects them with
   * `where` (on `log_entries l` joined to `pipeline_executions p`), the page holds them all
   * (read from its first line) in order, and both exports give exactly them.
   */
  const check = async (what, where, expected) => {
    const want = await psql(
      server,
      `SELECT l.id, l.message FROM log_entries l LEFT JOIN pipeline_executions p ON p.id = l.execution_id
       WHERE ${where} ORDER BY l.logged_at, l.id`,
    );
    assert.deepEqual(want.map(([, m]) => m), messages(expected), `${what}: Postgres selects the lines expected`);
    assert.ok(expected.length > 50, `${what} selects enough lines to tell: ${expected.length}`);
    // The newest page of the filter (200 lines at the most), then every older one.
    await waitForCount(page, Math.min(expected.length, 200));
    await scrollToFirstLine(page);
    await waitForCount(page, expected.length);
    const shown = await heldLines(page);
    assert.deepEqual(shown.map((l) => l.id), want.map(([id]) => Number(id)), `${what}: the page holds exactly them`);
    assert.deepEqual(shown.map((l) => l.message), messages(expected), `${what}: in order`);

    const exported = async (testid) => {
      const href = await page.getAttribute(`[data-testid="${testid}"]`, 'href');
      const res = await fetch(`${server.url}${href}`);
      assert.equal(res.status, 200);
      return (await res.text()).split('\n').filter((l) => l !== '');
    };
    const jsonl = (await exported('logs-export-jsonl')).map((l) => JSON.parse(l));
    assert.deepEqual(jsonl.map((l) => l.id), want.map(([id]) => Number(id)), `${what}: JSON lines export`);
    assert.deepEqual(jsonl.map((l) => l.message), messages(expected));
    const text = await exported('logs-export-text');
    assert.equal(text.length, expected.length, `${what}: text export`);
    text.forEach((l, i) => assert.ok(l.includes(` ${expected[i].message}`), `${what}: ${l} is line ${expected[i].message}`));
    return shown;
  };

  // Levels (toggles) and search (the field), as a reader applies them.
  await chooseLevelsAndSearch(page, ['warn', 'error'], 'checksum');
  const searched = lines.filter((l) => ['warn', 'error'].includes(l.level) && l.message.includes('checksum'));
  await check('levels and search', "l.level IN ('warn', 'error') AND l.message ILIKE '%checksum%'", searched);
  const marks = await page.locator('[data-testid="log-line"] mark').allTextContents();
  assert.ok(marks.length > 0 && marks.every((m) => m === 'checksum'), `matches marked: ${marks}`);

  // Pipeline and step (fields), one level.
  const clear = async () => {
    await page.click('[data-testid="logs-clear"]');
    await page.waitForURL(`${server.url}/logs`);
  };
  await clear();
  await page.fill('[data-testid="logs-pipeline"]', 'scale-b');
  await page.fill('[data-testid="logs-step"]', 'parse');
  await page.click('[data-testid="logs-apply"]');
  await page.waitForURL(/step=parse/);
  await page.click('[data-testid="logs-level-error"]');
  await page.waitForURL(/level=error/);
  await check(
    'pipeline, step and level',
    "p.pipeline_name = 'scale-b' AND l.step_name = 'parse' AND l.level = 'error'",
    lines.filter((l) => l.pipeline === 'scale-b' && l.step === 'parse' && l.level === 'error'),
  );

  // A run and a time range.
  const [from, to] = [new Date(t0 + 2000).toISOString(), new Date(t0 + 2900).toISOString()];
  await clear();
  await page.fill('[data-testid="logs-run"]', runs[0].id);
  await page.fill('[data-testid="logs-from"]', from);
  await page.fill('[data-testid="logs-to"]', to);
  await page.click('[data-testid="logs-apply"]');
  await page.waitForURL(/from=/);
  await check(
    'run and time range',
    `l.execution_id = '${runs[0].id}' AND l.logged_at >= '${from}' AND l.logged_at < '${to}'`,
    lines.filter((l) => l.run === runs[0].id && l.at >= t0 + 2000 && l.at < t0 + 2900),
  );

  // A pipeline's 3,334 lines: read from the first one, page after page.
  await clear();
  await page.fill('[data-testid="logs-pipeline"]', 'scale-a');
  await page.press('[data-testid="logs-pipeline"]', 'Enter');
  await page.waitForURL(/pipeline=scale-a/);
  await check('pipeline', "p.pipeline_name = 'scale-a'", lines.filter((l) => l.pipeline === 'scale-a'));
  assert.deepEqual(problems, []);
});

test('1,000,000 stored lines: the list scrolls from the newest to the oldest, a search finds exactly the matches', async (t) => {
  const server = await newServer();
  const total = 1_000_000;
  const filled = await fillLog(server, total);
  t.diagnostic(`${total} lines stored in ${(filled / 1000).toFixed(1)} s`);
  const [[oldest, newest]] = (await psql(server, 'SELECT min(id), max(id) FROM log_entries')).map((r) => r.map(Number));

  // At the most lines a page may hold: 1,000 pages to the first line. A window of the usual
  // size: each older page re-renders the rows in view, and fewer rows make the 1,000 reads faster.
  const { page, problems } = await openPage(browser, `${server.url}/logs?limit=1000`);
  await waitForCount(page, 1000);
  await waitForLastShown(page, fillMessage(total - 1));
  assert.equal((await rowsInView(page)).at(-1).id, newest);

  const started = performance.now();
  const scrolls = await scrollToFirstLine(page);
  const seconds = (performance.now() - started) / 1000;
  t.diagnostic(`scrolled to the first line: ${scrolls.length} older pages read in ${seconds.toFixed(1)} s`);
  await waitForCount(page, total);
  // Anywhere in the list, row k is line k: in order, none missing, none twice; the first row is
  // the oldest line stored.
  for (const k of [0, 1, 999, 1000, 123_457, 500_000, 999_001, total - 90]) {
    await page.$eval('[data-testid="logs-list"]', (l, top) => { l.scrollTop = top; }, k * 24);
    await page.waitForFunction((top) => [...document.querySelectorAll('[data-testid="log-line"]')].some((r) => r.offsetTop === top), k * 24);
    const rows = await rowsInView(page);
    assert.equal(rows[0].top, k * 24);
    assert.ok(rows.length > 20, `rows in view at line ${k}: ${rows.length}`);
    for (const row of rows) assert.equal(row.message, fillMessage(row.top / 24), `the row at ${row.top} px`);
    if (k === 0) assert.equal(rows[0].id, oldest, 'the first row is the oldest line stored');
  }

  // Search over all of them: the server's answer, paged in, is what Postgres says matches.
  await page.fill('[data-testid="logs-q"]', NEEDLE);
  await page.press('[data-testid="logs-q"]', 'Enter');
  await page.waitForURL(new RegExp(`q=${NEEDLE}`));
  const want = await psql(server, `SELECT id, message FROM log_entries WHERE message ILIKE '%${NEEDLE}%' ORDER BY logged_at, id`);
  assert.ok(want.length > 1000, `more matches than a page holds: ${want.length}`);
  await waitForCount(page, 1000);
  await scrollToFirstLine(page);
  await waitForCount(page, want.length);
  const found = await heldLines(page);
  assert.deepEqual(found.map((l) => l.id), want.map(([id]) => Number(id)));
  assert.deepEqual(found.map((l) => l.message), want.map(([, m]) => m));
  assert.deepEqual(problems, []);
});
