// Shared by the log viewer's browser tests and benchmarks (/logs): reading what the page holds
// through its DOM (only the rows in view are in it), scrolling it up to the first line, and
// pipescope's own PostgreSQL through psql, to fill it and to ask it what a filter must select.
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { EVENTUALLY, ingest } from './support.mjs';

const run = promisify(execFile);

/**
 * Runs `sql` in the PostgreSQL of `server` (from `startPipescope`: it listens on a Unix socket
 * in its data directory) and returns its rows, each an array of its columns' text.
 */
export async function psql(server, sql) {
  const url = `postgres://postgres@localhost/pipescope?host=${server.dataDir}/run`;
  const { stdout } = await run('psql', [url, '-X', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    maxBuffer: 1 << 30,
  });
  return stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

/**
 * Stores `count` lines straight into `log_entries` in one `INSERT … SELECT generate_series`,
 * without runs: line `i` (0 first, the oldest) is at 2026-01-01 + `i` seconds, its level is
 * `FILL_LEVELS[i % 5]` and its message `fillMessage(i)`. The table's indexes other than its key
 * are dropped first and built again afterwards, from their own definitions (so they stay what
 * the migrations made): inserting a million lines through the trigram index takes minutes,
 * building it once takes seconds. Returns how long it took (ms).
 */
export async function fillLog(server, count, { extra = "''", context = "'{}'" } = {}) {
  const started = performance.now();
  await psql(
    server,
    `SET maintenance_work_mem = '256MB';
     BEGIN;
     CREATE TEMP TABLE rebuilt ON COMMIT DROP AS
       SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def
       FROM pg_index WHERE indrelid = 'log_entries'::regclass AND NOT indisprimary;
     DO $$ DECLARE r record; BEGIN
       FOR r IN SELECT name FROM rebuilt LOOP EXECUTE 'DROP INDEX ' || r.name; END LOOP;
     END $$;
     INSERT INTO log_entries (level, message, context, logged_at)
     SELECT (ARRAY['${FILL_LEVELS.join("', '")}'])[1 + i % 5],
            'stored line ' || i || CASE WHEN i % ${NEEDLE_EVERY} = 0 THEN ' ${NEEDLE}' ELSE '' END || ${extra},
            ${context},
            timestamptz '2026-01-01T00:00:00Z' + i * interval '1 second'
     FROM generate_series(0, ${count - 1}) i;
     DO $$ DECLARE r record; BEGIN
       FOR r IN SELECT def FROM rebuilt LOOP EXECUTE r.def; END LOOP;
     END $$;
     COMMIT;
     ANALYZE log_entries;`,
  );
  return performance.now() - started;
}

export const FILL_LEVELS = ['info', 'debug', 'warn', 'error', 'trace'];
/** Every `NEEDLE_EVERY`th line stored by `fillLog` (line 0 first) holds `NEEDLE`. */
export const NEEDLE_EVERY = 667;
export const NEEDLE = 'needle';
export const fillMessage = (i) => `stored line ${i}${i % NEEDLE_EVERY === 0 ? ` ${NEEDLE}` : ''}`;

/**
 * Sends `events` through the ingest API at `perSecond`: event `i` is due `i / perSecond` s after
 * the first, and each request carries every event due by the time it is sent. One request at a
 * time, so events are stored in the order they are sent (a request is answered once its events
 * are in Postgres, within ~100 ms: the batches grow with the rate, up to `MAX_BATCH` events).
 * Returns the rate achieved.
 */
const MAX_BATCH = 2000;

export async function sendPaced(url, events, perSecond) {
  const started = performance.now();
  for (let i = 0; i < events.length; ) {
    const wait = started + (i * 1000) / perSecond - performance.now();
    if (wait > 1) await sleep(wait);
    const due = Math.min(events.length, Math.floor(((performance.now() - started) * perSecond) / 1000) + 1);
    const end = Math.min(Math.max(due, i + 1), i + MAX_BATCH);
    await ingest(url, events.slice(i, end));
    i = end;
  }
  return (events.length * 1000) / (performance.now() - started);
}

/**
 * Presses the toggles of `levels` (in the order the page lists them; each applies at once),
 * then searches for `q` (typed, Enter), as a reader does; waits for each in the address.
 */
export async function chooseLevelsAndSearch(page, levels, q) {
  for (const [k, level] of levels.entries()) {
    await page.click(`[data-testid="logs-level-${level}"]`);
    await page.waitForURL(new RegExp(`level=${levels.slice(0, k + 1).join(',')}`));
  }
  await page.fill('[data-testid="logs-q"]', q);
  await page.press('[data-testid="logs-q"]', 'Enter');
  await page.waitForURL(new RegExp(`q=${q}`));
}

/** The status line: "1,234 lines · …". */
export const count = (page) => page.textContent('[data-testid="logs-count"]');

/** Waits until the page holds `n` lines (its status says so). */
export async function waitForCount(page, n) {
  await page.waitForFunction(
    (n) => document.querySelector('[data-testid="logs-count"]')?.textContent.startsWith(`${n.toLocaleString('en-US')} lines`),
    n,
    { timeout: EVENTUALLY },
  );
}

/**
 * Every line the list holds, oldest first, read by scrolling it from top to bottom (only the
 * rows in view are in the DOM); waits at each place until rows cover the view. Leaves the list
 * at its end. Each line: {id, level, message}.
 */
export async function heldLines(page) {
  return page.evaluate(async () => {
    const list = document.querySelector('[data-testid="logs-list"]');
    const frame = () => new Promise((r) => requestAnimationFrame(r));
    const rows = () => [...list.querySelectorAll('[data-testid="log-line"]')];
    const seen = new Map();
    // New lines are placed (a following list moved to its end) by a frame the page requested as
    // they came in, before the count this is called after could show them: let that frame pass
    // first, or it moves the list while the rows are read (the first rows were then skipped).
    await frame();
    await frame();
    for (let top = 0; ; top += Math.floor(list.clientHeight / 2)) {
      list.scrollTop = top;
      // Every 24 px slot of the view must hold a row before any is read: the rows follow a
      // scroll a render later, and a row at the top and one at the bottom alone do not say the
      // ones between (or the first ones) are in yet.
      const covered = () => {
        const tops = new Set(rows().map((r) => r.offsetTop));
        const last = Math.min(list.scrollTop + list.clientHeight, list.scrollHeight) - 24;
        for (let t = Math.floor(list.scrollTop / 24) * 24; t <= last; t += 24) if (!tops.has(t)) return false;
        return true;
      };
      // Read only where the list was put: the page may still move it once more (a list that
      // followed the tail goes to its end when lines it was waiting for are placed, and has
      // been seen doing so after a filter change, which left the first rows unread).
      for (;;) {
        while (!covered()) await frame();
        if (Math.abs(list.scrollTop - Math.min(top, list.scrollHeight - list.clientHeight)) <= 1) break;
        list.scrollTop = top;
        await frame();
      }
      for (const r of rows()) {
        seen.set(r.offsetTop, {
          id: Number(r.dataset.id),
          level: r.dataset.level,
          message: r.querySelector('[data-testid="log-message"]').textContent,
        });
      }
      if (list.scrollTop + list.clientHeight >= list.scrollHeight) break;
    }
    return [...seen.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
  });
}

/** The rows in view, top to bottom: {top (px in the list), id, message}. */
export const rowsInView = (page) =>
  page.evaluate(() => {
    const list = document.querySelector('[data-testid="logs-list"]');
    const bottom = list.scrollTop + list.clientHeight;
    return [...list.querySelectorAll('[data-testid="log-line"]')]
      .map((r) => ({ top: r.offsetTop, id: Number(r.dataset.id), message: r.querySelector('[data-testid="log-message"]').textContent }))
      .filter((r) => r.top + 24 > list.scrollTop && r.top < bottom)
      .sort((a, b) => a.top - b.top);
  });

/** The message of the last row in view. */
export const lastShown = async (page) => (await rowsInView(page)).at(-1)?.message;

/** Waits until the list is scrolled to its end and its last row in view says `message`. */
export async function waitForLastShown(page, message) {
  await page.waitForFunction(
    (message) => {
      const list = document.querySelector('[data-testid="logs-list"]');
      if (list.scrollTop + list.clientHeight < list.scrollHeight - 1) return false;
      const rows = [...list.querySelectorAll('[data-testid="log-line"]')];
      const last = rows.reduce((a, b) => (b.offsetTop > (a?.offsetTop ?? -1) ? b : a), null);
      return last?.querySelector('[data-testid="log-message"]').textContent === message;
    },
    message,
    { timeout: EVENTUALLY },
  );
}

/**
 * Scrolls the list up to its first line: puts it at the top whenever no older page is being
 * read, until the status says "from the first line". Fails when the status stays the same for
 * `EVENTUALLY`. Returns the times (ms from the start) at which it scrolled to the top: one per
 * older page read.
 */
export async function scrollToFirstLine(page) {
  return page.evaluate(async (eventually) => {
    const list = document.querySelector('[data-testid="logs-list"]');
    const status = document.querySelector('[data-testid="logs-count"]');
    const frame = () => new Promise((r) => requestAnimationFrame(r));
    const started = performance.now();
    const scrolls = [];
    let seen = status.textContent;
    let since = performance.now();
    while (!status.textContent.includes('from the first line')) {
      if (status.textContent !== seen) {
        seen = status.textContent;
        since = performance.now();
      } else if (performance.now() - since > eventually) {
        throw new Error(`no older lines came for ${eventually} ms; the status says: ${seen}`);
      }
      // Only a scroll makes the page read the older page: after one is added (the list keeps
      // what was shown in place, so it is no longer at the top), scroll up again.
      if (!status.textContent.includes('reading older') && list.scrollTop > 0) {
        list.scrollTop = 0;
        scrolls.push(performance.now() - started);
      }
      await frame();
    }
    return scrolls;
  }, EVENTUALLY);
}
