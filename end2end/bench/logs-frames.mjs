// Frame times of /logs following the tail as the ingest rate ramps up: the page is open on
// `/logs` (no filter) and `log:entry` lines arrive through the real ingest API at each rate of
// RATES in turn, for PIPESCOPE_BENCH_SECONDS / 2 s each (default 10 s); after each step the page
// is given time to hold every line sent before the next step starts. Per step: the rate the
// sender reached, the main thread's time per frame (vsync → free again, as frames.mjs measures
// it: over 16.7 ms is a frame that missed its budget), long animation frames, and how long after
// the last line was sent the page held it. The figure asked for is the highest rate with no frame
// over 16 ms.
import { withServerAndBrowser, seconds, sleep, frameProbe, framesBetween, busyOf, summarize, ms, printTable, ingest, events, randomUUID } from './lib.mjs';
import { openPage } from '../support.mjs';
import { sendPaced, waitForCount } from '../logs-support.mjs';

const RATES = (process.env.PIPESCOPE_BENCH_RATES || '100,250,500,1000,2000,4000,8000').split(',').map(Number);
const STEP_MS = (seconds / 2) * 1000;
const IDLE_MS = 3000;
const PROVIDERS = ['openai', 'anthropic', 'gemini'];
const LEVELS = ['info', 'debug', 'info', 'warn', 'info', 'error', 'debug', 'info', 'trace', 'info'];

/** Line `i`: of one of two runs or pipescope's own, ~100 characters, with context fields. */
function line(i, runs, at) {
  const run = runs[i % 3];
  const provider = PROVIDERS[i % 3];
  return {
    event: 'log:entry',
    data: {
      level: LEVELS[i % LEVELS.length],
      message: `request ${i} to ${provider} finished in ${(i * 37) % 9000} ms, ${(i * 13) % 4000} tokens, req-${(i * 2654435761 % 2 ** 32).toString(16)}`,
      timestamp: new Date(at).toISOString(),
      context: { ...(run ? { execution_id: run, step: ['fetch', 'draft', 'review'][i % 3] } : {}), fields: { attempt: 1 + (i % 3), provider } },
    },
  };
}

await withServerAndBrowser(async (server, browser) => {
  const runs = [randomUUID(), randomUUID()];
  for (const run of runs) await ingest(server.url, [events.pipelineStarted(run, 'bench-logs', ['fetch', 'draft', 'review'])]);
  const { page, problems } = await openPage(browser, `${server.url}/logs`, undefined, [frameProbe]);
  await page.locator('[data-testid="logs-empty"]').waitFor();
  const pageNow = () => page.evaluate(() => performance.now());

  const idleFrom = await pageNow();
  await sleep(IDLE_MS);
  const steps = [{ name: 'idle', from: idleFrom, to: await pageNow(), sent: 0, rate: 0, catchUp: 0 }];
  let total = 0;
  for (const rate of RATES) {
    const count = Math.round((rate * STEP_MS) / 1000);
    const t0 = Date.now();
    const lines = Array.from({ length: count }, (_, k) => line(total + k, runs, t0 + (k * 1000) / rate));
    console.log(`${rate} lines/s for ${STEP_MS / 1000} s (${count} lines, ${total + count} in all) …`);
    const from = await pageNow();
    const reached = await sendPaced(server.url, lines, rate);
    const to = await pageNow();
    total += count;
    const sentAt = performance.now();
    await waitForCount(page, total);
    steps.push({ name: `${rate} lines/s`, from, to, sent: count, rate: reached, catchUp: performance.now() - sentAt, held: total });
  }

  const probe = await page.evaluate(() => window.__frames);
  const rows = steps.map((s) => {
    const busy = busyOf(framesBetween(probe, s.from, s.to));
    const b = summarize(busy);
    const loaf = probe.loaf.filter((e) => e.start >= s.from && e.start < s.to);
    return [
      s.name, s.rate ? Math.round(s.rate) : '–', s.held ?? 0, b.count, ms(b.p50), ms(b.p95), ms(b.p99), ms(b.max),
      busy.filter((d) => d > 16.7).length, `${loaf.length} / ${ms(Math.max(0, ...loaf.map((e) => e.duration)))}`,
      s.name === 'idle' ? '–' : ms(s.catchUp),
    ];
  });
  printTable(
    'Main thread per frame while lines stream into /logs (following the tail), ms — target: no frame over 16 ms',
    ['step', 'sent/s', 'held after', 'frames', 'p50', 'p95', 'p99', 'max', '>16.7', 'long anim. frames n / max', 'all held after (ms)'],
    rows,
  );
  const loaf = probe.loaf.filter((e) => e.start >= steps[1].from);
  if (loaf.length > 0) {
    printTable(
      'Long animation frames while streaming, ms',
      ['at (page time)', 'duration', 'scripts', 'rendering', 'longest script'],
      loaf.slice(0, 30).map((e) => [ms(e.start), ms(e.duration), ms(e.scripts), ms(e.rendering), e.longest]),
    );
  }
  if (problems.length > 0) console.log(`page problems: ${problems.join('; ')}`);
});
