// Event → DOM latency at 200 events/s: the dashboard is open on `/` with one run selected, and
// events go through the real ingest API, one request each, at a steady pace:
//   160/s response:streaming chunks of the selected run's step, each carrying a marker `[#n]`
//         that appears in the inspector's response text;
//    20/s pipeline:started of new runs (a row appears in the grid), and
//    20/s pipeline:completed of those runs one second later (the row's status turns complete).
// Latency is the time the change is in the DOM (a MutationObserver in the page, by
// performance.timeOrigin + performance.now()) minus the event's `at`: the client stamps `at`
// right before its request (Date.now(), whole milliseconds, so figures read up to 1 ms high),
// pipescope keeps it (ingest.rs: the client's `at`, else now) and delivers the event with it, so
// `at` is the moment the event was handed to pipescope. Browser, server and benchmark share one
// clock. The ingest answer comes later for persisted events (once they are in Postgres) and is
// reported on its own.
import {
  events, seconds, ingest, startStreamedRun, otherRuns, chunkStream, play, openLivePage,
  summarize, ms, printTable, withServerAndBrowser, sleep,
} from './lib.mjs';

const CHUNKS_PER_SECOND = 160;
const RUNS_PER_SECOND = 20; // each run sends two events: 160 + 2 × 20 = 200 events/s
const RUN_LIFETIME_MS = 1000;

// Runs in the page before its scripts. Records, by the clock shared with the benchmark (ms since
// the epoch, performance.timeOrigin + performance.now()):
// - received[seq]: when the event arrived over the network, seen by a second stream opened in a
//   Worker, which no work on the page's main thread can hold up;
// - handled[seq]: when the page's main thread got to the event. The page's EventSource is
//   wrapped so that a listener of ours is registered before the page's own, and so runs first;
// - dom[key]: when the change it causes is in the DOM (the MutationObserver's callback runs at
//   the microtask checkpoint right after the mutating task);
// - frame[key]: the next requestAnimationFrame callback after that: the start of the frame that
//   paints it.
function latencyProbe() {
  const names = ['response:streaming', 'pipeline:started', 'pipeline:completed'];
  const now = () => performance.timeOrigin + performance.now();
  const probe = { handled: {}, dom: {}, frame: {} };
  window.__probe = probe;
  const NativeEventSource = window.EventSource;
  window.EventSource = class extends NativeEventSource {
    constructor(...args) {
      super(...args);
      for (const name of names) this.addEventListener(name, (e) => { probe.handled[e.lastEventId] = now(); });
    }
  };
  const worker = new Worker(URL.createObjectURL(new Blob([`
    const received = {};
    const source = new EventSource(${JSON.stringify(`${location.origin}/api/events`)});
    source.onopen = () => postMessage('open');
    for (const name of ${JSON.stringify(names)}) {
      source.addEventListener(name, (e) => { received[e.lastEventId] = performance.timeOrigin + performance.now(); });
    }
    onmessage = () => postMessage(received);
  `], { type: 'text/javascript' })));
  worker.onmessage = (e) => { window.__workerOpen = e.data === 'open'; };
  window.__received = () => new Promise((resolve) => {
    worker.onmessage = (e) => resolve(e.data);
    worker.postMessage(null);
  });
  // While a step streams its response only grows: scan just what was appended. textContent,
  // not a text node, so that markup inside the response (highlighting) does not matter.
  let response = null;
  let scanned = 0;
  new MutationObserver((records) => {
    const t = now();
    const fresh = [];
    const seen = (key) => {
      if (!(key in probe.dom)) {
        probe.dom[key] = t;
        fresh.push(key);
      }
    };
    const pre = document.querySelector('[data-testid="response-text"]');
    const text = pre?.textContent ?? '';
    if (pre !== response || text.length < scanned) {
      response = pre;
      scanned = 0;
    }
    for (const m of text.slice(scanned).matchAll(/\[#(\d+)\]/g)) seen(`chunk:${m[1]}`);
    scanned = text.length;
    for (const r of records) {
      if (r.type === 'childList') {
        for (const node of r.addedNodes) {
          if (node.nodeType === Node.ELEMENT_NODE && node.matches('[data-testid="run"]')) seen(`started:${node.dataset.runId}`);
        }
      } else if (r.type === 'attributes' && r.target.dataset.testid === 'run' && r.target.dataset.status === 'completed') {
        seen(`completed:${r.target.dataset.runId}`);
      }
    }
    if (fresh.length > 0) {
      requestAnimationFrame(() => {
        const f = now();
        for (const key of fresh) probe.frame[key] = f;
      });
    }
  }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['data-status'] });
}

const KINDS = {
  chunk: 'chunk → inspector text',
  started: 'pipeline:started → grid row',
  completed: 'pipeline:completed → row status',
};

await withServerAndBrowser(async (server, browser) => {
  const run = await startStreamedRun(server.url);
  const { page, problems } = await openLivePage(browser, server.url, [latencyProbe]);
  await page.waitForFunction(
    (prompt) => document.querySelector('[data-testid="prompt-text"]')?.textContent === prompt,
    run.prompt,
    { timeout: 10_000 },
  );
  await page.waitForFunction(() => window.__workerOpen, null, { timeout: 10_000 });

  const durationMs = seconds * 1000;
  const plan = [
    ...chunkStream(run, CHUNKS_PER_SECOND, durationMs),
    ...otherRuns(RUNS_PER_SECOND, durationMs, [
      [0, 'started', (id) => events.pipelineStarted(id, 'grid-run', ['only'])],
      [RUN_LIFETIME_MS, 'completed', (id) => events.pipelineCompleted(id, 120, RUN_LIFETIME_MS)],
    ]),
  ];
  console.log(`pushing ${plan.length} events over ${seconds + RUN_LIFETIME_MS / 1000} s (200 events/s while all three streams run) …`);
  const results = await play(server.url, plan);
  await sleep(1000); // stragglers
  const probe = await page.evaluate(() => window.__probe);
  const received = await page.evaluate(() => window.__received());
  const textLength = await page.evaluate(() => document.querySelector('[data-testid="response-text"]').textContent.length);
  // The streamed run is finished so that the data directory is left tidy; not measured.
  await ingest(server.url, [events.pipelineCompleted(run.id, 0, durationMs)]);

  const measured = results.map((r) => {
    const key = `${r.item.kind}:${r.item.key}`;
    const dom = probe.dom[key];
    return {
      kind: r.item.kind,
      at: r.at,
      total: dom - r.at,
      received: received[r.seq] - r.at,
      queued: probe.handled[r.seq] - received[r.seq],
      handled: dom - probe.handled[r.seq],
      frame: probe.frame[key] - dom,
      answer: r.ackAt - r.at,
    };
  });

  const rows = [];
  const parts = [];
  for (const [kind, label] of Object.entries(KINDS)) {
    const of = measured.filter((m) => m.kind === kind);
    const seen = of.filter((m) => Number.isFinite(m.total));
    const s = summarize(seen.map((m) => m.total));
    rows.push([label, of.length, seen.length, ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max)]);
    for (const [part, field] of [
      ['at → received by the browser', 'received'],
      ['received → page handler runs', 'queued'],
      ['handler runs → in DOM', 'handled'],
      ['in DOM → next frame starts', 'frame'],
      ['at → ingest answer', 'answer'],
    ]) {
      const p = summarize(of.map((m) => m[field]).filter(Number.isFinite));
      parts.push([`${kind}: ${part}`, p.count, ms(p.p50), ms(p.p99), ms(p.max)]);
    }
  }
  const all = summarize(measured.map((m) => m.total).filter(Number.isFinite));
  rows.push(['all', measured.length, all.count, ms(all.p50), ms(all.p95), ms(all.p99), ms(all.max)]);
  printTable(
    `Event → DOM latency, ms (DOM time − event's at), ${seconds} s at 200 events/s — target p99 ≤ 50 ms`,
    ['event → change', 'sent', 'in DOM', 'p50', 'p95', 'p99', 'max'],
    rows,
  );
  printTable('Where the time goes, ms', ['segment', 'count', 'p50', 'p99', 'max'], parts);
  console.log('received: a second stream in a Worker (server + network); page handler: the page\'s main thread takes');
  console.log('the event (waits while it renders); next frame: the rAF callback that starts the frame painting it.');

  // The inspector re-renders the whole response on every chunk: does latency grow with it?
  const t0 = Math.min(...measured.map((m) => m.at));
  const windows = [];
  for (let from = 0; from < durationMs; from += 5000) {
    const of = measured.filter((m) => m.kind === 'chunk' && m.at - t0 >= from && m.at - t0 < from + 5000);
    const s = summarize(of.map((m) => m.total).filter(Number.isFinite));
    windows.push([`${from / 1000}–${Math.min(from + 5000, durationMs) / 1000} s`, s.count, ms(s.p50), ms(s.p99), ms(s.max)]);
  }
  printTable(`Chunk latency by time window, ms (response text at the end: ${textLength} characters)`, ['window', 'count', 'p50', 'p99', 'max'], windows);
  if (problems.length > 0) console.log(`\npage problems: ${problems.join('; ')}`);
});
