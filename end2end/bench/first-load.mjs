// First load of `/` with 1,000 finished runs in the database. The runs are ingested in batches
// (three steps each, with prompts and responses, spread over the past ~17 hours), then pipescope
// is restarted on the same data directory, so each load is served from Postgres by a process
// that holds none of those events in memory, as after a deploy. Each load uses a fresh browser
// context: nothing cached, the WASM fetched and compiled every time.
//   FCP: the first-contentful-paint entry, from navigation start (performance.timeOrigin).
//   TTI: when the page is hydrated, i.e. when `.page` gets data-hydrated="true" (an effect sets
//        it once the WASM has taken over the server-rendered page), from navigation start.
import {
  events, ingest, startPipescope, launchBrowser, randomUUID, summarize, ms, printTable,
} from './lib.mjs';

const RUNS = 1000;
const RUNS_PER_BATCH = 50;
const LOADS = 5;
const STEPS = ['outline', 'draft', 'critique'];

/** One finished run, `minutesAgo` in the past, as the events an ingesting client would send. */
function pastRun(n, minutesAgo) {
  const id = randomUUID();
  let t = Date.now() - minutesAgo * 60_000;
  const stamped = (event, advanceMs = 0) => {
    t += advanceMs;
    return { ...event, at: new Date(t).toISOString() };
  };
  const prompt = `Run ${n}: write about event sourcing as a concise technical brief. `.repeat(4);
  const response = `Event sourcing stores every change as an event; state is a fold over them (${n}). `.repeat(15);
  const run = [stamped(events.pipelineStarted(id, `history-${n % 7}`, STEPS, new Date(t)))];
  for (const step of STEPS) {
    run.push(
      stamped(events.stepStarted(id, step), 20),
      stamped(events.promptSent(id, step, prompt), 5),
      stamped(events.responseReceived(id, step, response, 310), 2400),
      stamped(events.stepCompleted(id, step, 2405, 322), 1),
    );
  }
  run.push(stamped(events.pipelineCompleted(id, 3 * 322, 3 * 2426), 1));
  return run;
}

async function seed(url) {
  const started = performance.now();
  let sent = 0;
  for (let first = 0; first < RUNS; first += RUNS_PER_BATCH) {
    const batch = [];
    for (let n = first; n < first + RUNS_PER_BATCH; n += 1) batch.push(...pastRun(n, RUNS - n));
    sent += (await ingest(url, batch)).accepted;
  }
  return { events: sent, ms: performance.now() - started };
}

// Runs in the page before its scripts: when `.page` becomes hydrated, by performance.now().
function hydrationProbe() {
  new MutationObserver((records, observer) => {
    if (records.some((r) => r.target.classList.contains('page') && r.target.dataset.hydrated === 'true')) {
      window.__hydratedAt = performance.now();
      observer.disconnect();
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-hydrated'] });
}

/** One load in a fresh context; everything from the page's own timing entries. */
async function load(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  try {
    const page = await context.newPage();
    await page.addInitScript(hydrationProbe);
    await page.goto(url);
    await page.waitForFunction(
      () => window.__hydratedAt !== undefined && performance.getEntriesByName('first-contentful-paint').length > 0,
      null,
      { timeout: 30_000 },
    );
    return await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const wasm = performance.getEntriesByType('resource').find((e) => e.name.endsWith('.wasm'));
      return {
        fcp: performance.getEntriesByName('first-contentful-paint')[0].startTime,
        tti: window.__hydratedAt,
        ttfb: nav.responseStart,
        htmlEnd: nav.responseEnd,
        domContentLoaded: nav.domContentLoadedEventEnd,
        htmlTransfer: nav.transferSize,
        htmlDecoded: nav.decodedBodySize,
        wasmStart: wasm.startTime,
        wasmEnd: wasm.responseEnd,
        wasmTransfer: wasm.transferSize,
        runs: document.querySelectorAll('[data-testid="run"]').length,
      };
    });
  } finally {
    await context.close();
  }
}

let server = await startPipescope();
let browser;
try {
  const seeded = await seed(server.url);
  console.log(`seeded ${RUNS} finished runs (${seeded.events} events) in ${(seeded.ms / 1000).toFixed(1)} s; restarting pipescope …`);
  await server.stop();
  server = await startPipescope([], server);
  browser = await launchBrowser();
  const loads = [];
  for (let i = 0; i < LOADS; i += 1) loads.push(await load(browser, server.url));

  const kb = (bytes) => (bytes / 1024).toFixed(1);
  printTable(
    `First load of / with ${RUNS} past runs, ms from navigation start (fresh browser context each time)`,
    ['load', 'FCP', 'TTI (hydrated)', 'HTML first byte', 'HTML done', 'DOMContentLoaded', 'HTML KiB (transfer / decoded)', 'WASM fetch', 'WASM KiB', 'runs shown'],
    loads.map((l, i) => [
      i === 0 ? '1 (first after restart)' : String(i + 1),
      ms(l.fcp), ms(l.tti), ms(l.ttfb), ms(l.htmlEnd), ms(l.domContentLoaded),
      `${kb(l.htmlTransfer)} / ${kb(l.htmlDecoded)}`,
      `${ms(l.wasmEnd - l.wasmStart)} (${ms(l.wasmStart)}–${ms(l.wasmEnd)})`,
      kb(l.wasmTransfer),
      l.runs,
    ]),
  );
  const fcp = summarize(loads.map((l) => l.fcp));
  const tti = summarize(loads.map((l) => l.tti));
  printTable('Summary over the loads, ms', ['measure', 'median', 'max', 'target'], [
    ['FCP', ms(fcp.p50), ms(fcp.max), '300'],
    ['TTI (hydrated)', ms(tti.p50), ms(tti.max), '800'],
  ]);
  console.log('\nWASM fetch = request start → last byte (resource timing); the HTML is counted with its headers.');
} finally {
  await browser?.close();
  await server.stop();
}
