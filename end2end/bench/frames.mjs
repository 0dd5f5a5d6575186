// Frame times while streaming: the dashboard is open on `/` with one run selected; through the
// real ingest API, 50 response chunks/s stream into the inspector and 100 events/s about other
// runs reach the grid (runs start, run two steps — step:started/step:completed — and complete;
// ~17 new runs/s). An idle phase first shows the cadence the browser keeps with nothing to do.
//
// What headless Chromium's requestAnimationFrame gives: a steady 60 Hz, and each callback's
// timestamp is the frame's vsync time, not when the callback ran. A frame whose main-thread work
// overruns is then started late, or skipped: the vsync timestamps only show skipped frames (as
// 33 ms gaps), so the page also records when each callback actually ran, and how long after the
// frame's vsync the main thread was free again ("busy": rAF callbacks, style, layout, paint, and
// any task queued before). A busy time over 16.7 ms is a frame that did not fit its budget.
// Long animation frames and long tasks are collected as well; the browser reports both from 50 ms.
import {
  events, seconds, ingest, startStreamedRun, otherRuns, chunkStream, play, openLivePage,
  summarize, ms, printTable, withServerAndBrowser, sleep, frameProbe, intervalsOf, framesBetween, busyOf,
} from './lib.mjs';

const CHUNKS_PER_SECOND = 50;
const GRID_EVENTS_PER_SECOND = 100;
const IDLE_MS = 3000;
/** Each other run: [offset ms, kind, event]; six events, so 100/6 runs start per second. */
const LIFECYCLE = [
  [0, 'started', (id) => events.pipelineStarted(id, 'grid-run', ['fetch', 'summarize'])],
  [150, 'step', (id) => events.stepStarted(id, 'fetch')],
  [450, 'step', (id) => events.stepCompleted(id, 'fetch', 300, 40)],
  [500, 'step', (id) => events.stepStarted(id, 'summarize')],
  [800, 'step', (id) => events.stepCompleted(id, 'summarize', 300, 80)],
  [900, 'completed', (id) => events.pipelineCompleted(id, 120, 900)],
];

/** Rows for the two tables, for the frames between `from` and `to` (page time). */
function phase(name, probe, from, to) {
  const frames = framesBetween(probe, from, to);
  const span = (to - from) / 1000;
  const intervalRow = (clock, intervals) => {
    const s = summarize(intervals);
    return [
      `${name}, ${clock}`, frames.length, (frames.length / span).toFixed(1),
      ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max),
      intervals.filter((d) => d > 16.7).length,
      intervals.filter((d) => d > 17).length,
      intervals.filter((d) => d > 25).length,
    ];
  };
  const busyTimes = busyOf(frames);
  const busy = summarize(busyTimes);
  const within = (list) => list.filter((e) => e.start >= from && e.start <= to);
  const loaf = within(probe.loaf);
  return {
    intervals: [
      intervalRow('vsync timestamps', intervalsOf(frames.map((f) => f.vsync))),
      intervalRow('callback ran', intervalsOf(frames.map((f) => f.ran))),
    ],
    loaf,
    busy: [
      name, ms(busy.p50), ms(busy.p95), ms(busy.p99), ms(busy.max),
      busyTimes.filter((d) => d > 16.7).length,
      `${loaf.length} / ${ms(Math.max(0, ...loaf.map((e) => e.duration)))}`,
      within(probe.longtasks).length,
    ],
  };
}

await withServerAndBrowser(async (server, browser) => {
  const run = await startStreamedRun(server.url);
  const { page, problems } = await openLivePage(browser, server.url, [frameProbe]);
  const pageNow = () => page.evaluate(() => performance.now());

  const idleFrom = await pageNow();
  await sleep(IDLE_MS);
  const idleTo = await pageNow();

  const durationMs = seconds * 1000;
  const chunks = chunkStream(run, CHUNKS_PER_SECOND, durationMs);
  const plan = [
    ...chunks,
    ...otherRuns(GRID_EVENTS_PER_SECOND / LIFECYCLE.length, durationMs, LIFECYCLE),
  ];
  console.log(`pushing ${plan.length} events over ~${seconds + 1} s (50 chunks/s + 100 grid events/s) …`);
  const loadFrom = await pageNow();
  await play(server.url, plan);
  const loadTo = await pageNow();
  await sleep(500);

  const probe = await page.evaluate(() => window.__frames);
  // All chunks must have reached the inspector, or the page was not doing the work measured.
  const shown = await page.evaluate(
    () => document.querySelector('[data-testid="response-text"]').textContent.match(/\[#\d+\]/g)?.length ?? 0,
  );
  await ingest(server.url, [events.pipelineCompleted(run.id, 0, durationMs)]);

  const phases = [
    phase(`idle ${IDLE_MS / 1000} s`, probe, idleFrom, idleTo),
    phase(`streaming ${Math.round((loadTo - loadFrom) / 1000)} s`, probe, loadFrom, loadTo),
  ];
  printTable(
    'Frame intervals (requestAnimationFrame), ms',
    ['phase, clock', 'frames', 'fps', 'p50', 'p95', 'p99', 'max', '>16.7', '>17', '>25'],
    phases.flatMap((p) => p.intervals),
  );
  printTable(
    'Main thread per frame: vsync → free again, ms — target: no frame over 16 ms',
    ['phase', 'p50', 'p95', 'p99', 'max', '>16.7', 'long anim. frames n / max', 'long tasks'],
    phases.map((p) => p.busy),
  );
  // The response grows by a chunk at a time and is re-rendered whole: does the work grow with it?
  const windows = [];
  for (let from = loadFrom; from < loadTo; from += 5000) {
    const to = Math.min(from + 5000, loadTo);
    const busy = busyOf(framesBetween(probe, from, to));
    const s = summarize(busy);
    const [start, end] = [from, to].map((t) => Math.round((t - loadFrom) / 1000));
    windows.push([`${start}–${end} s`, s.count, ms(s.p50), ms(s.p99), ms(s.max), busy.filter((d) => d > 16.7).length]);
  }
  printTable('Main thread per frame while streaming, by time window, ms', ['window', 'frames', 'p50', 'p99', 'max', '>16.7'], windows);
  const loaf = phases.flatMap((p) => p.loaf);
  if (loaf.length > 0) {
    printTable(
      'Long animation frames, ms',
      ['at (page time)', 'duration', 'scripts', 'rendering', 'longest script'],
      loaf.map((e) => [ms(e.start), ms(e.duration), ms(e.scripts), ms(e.rendering), e.longest]),
    );
  }
  console.log(`\nchunks in the inspector: ${shown} of ${chunks.length}`);
  console.log('>16.7 among vsync intervals is the vsync timer\'s jitter (16.7–16.8 ms); >25 is a skipped frame.');
  if (problems.length > 0) console.log(`page problems: ${problems.join('; ')}`);
});
