// Shared by the browser benchmarks (the dashboard's and the log viewer's): the ingest API as a
// paced event source, a page opened with probes installed before its first script, frame times,
// and the figures as tables. The server and the browser come from ../support.mjs
// (scripts/bench/dashboard and scripts/bench/logs-browser set the PIPESCOPE_* variables it reads).
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { startPipescope, launchBrowser, openPage, ingest, events } from '../support.mjs';

export { startPipescope, launchBrowser, randomUUID, sleep, ingest, events };

/** How long each benchmark pushes events (PIPESCOPE_BENCH_SECONDS, default 20). */
export const seconds = Number(process.env.PIPESCOPE_BENCH_SECONDS || 20);

/**
 * The run whose response the benchmarks stream into the inspector: started, one step running,
 * its prompt sent. Ingested before the page opens, so the server-rendered dashboard selects it
 * (the first active run) and the inspector follows its step.
 */
export async function startStreamedRun(url) {
  const run = { id: randomUUID(), step: 'answer', prompt: 'Stream a long answer for the benchmark.' };
  await ingest(url, [
    events.pipelineStarted(run.id, 'streamed', [run.step]),
    events.stepStarted(run.id, run.step),
    events.promptSent(run.id, run.step, run.prompt),
  ]);
  return run;
}

/**
 * "Other" runs for the grid: one starts every `1000 / perSecond` ms for `durationMs`, and each
 * sends `lifecycle` (a list of [offset ms, kind, (id) => event]) after its start. Every event after
 * the start waits for the start's answer, because the ingest API refuses events about an
 * execution it does not know yet.
 */
export function otherRuns(perSecond, durationMs, lifecycle) {
  const plan = [];
  for (let n = 0, start = 0; start < durationMs; n += 1, start = (n * 1000) / perSecond) {
    const id = randomUUID();
    for (const [offset, kind, make] of lifecycle) {
      plan.push({
        due: start + offset,
        event: make(id),
        kind,
        key: id,
        ...(offset === 0 ? { provides: id } : { needs: id }),
      });
    }
  }
  return plan;
}

/** A stream of response chunks at `perSecond`, chunk `n` carrying the marker `[#n]`. */
export function chunkStream(run, perSecond, durationMs) {
  const words = ['the', 'stream', 'of', 'tokens', 'keeps', 'coming', 'back', 'from', 'a', 'model'];
  const plan = [];
  for (let n = 0; n < (durationMs * perSecond) / 1000; n += 1) {
    const text = ` ${words[n % 10]} ${words[(n * 7 + 3) % 10]} ${words[(n * 3 + 1) % 10]} [#${n}]`;
    plan.push({ due: (n * 1000) / perSecond, event: events.chunk(run.id, run.step, text), kind: 'chunk', key: String(n) });
  }
  return plan;
}

/**
 * Sends every planned event in its own ingest request at its `due` time (ms from now), without
 * waiting for earlier answers, so a slow answer (persisted events are answered once they are in
 * Postgres) never delays the next event. `at` is stamped right before each request; pipescope
 * keeps a client's `at` and delivers the event with it. Resolves with, per planned item,
 * { item, at, ackAt, seq }.
 */
export async function play(url, plan) {
  plan.sort((a, b) => a.due - b.due);
  const starts = new Map();
  const sent = [];
  let failure = null;
  const send = async (item) => {
    if (item.needs) await starts.get(item.needs);
    const at = Date.now();
    const receipt = await ingest(url, [{ ...item.event, at: new Date(at).toISOString() }]);
    return { item, at, ackAt: Date.now(), seq: String(receipt.seqs[0]) };
  };
  const t0 = performance.now();
  for (const item of plan) {
    const wait = item.due - (performance.now() - t0);
    if (wait >= 1) await sleep(wait);
    if (failure) break;
    const result = send(item);
    result.catch((error) => { failure ??= error; });
    if (item.provides) starts.set(item.provides, result);
    sent.push(result);
  }
  const results = await Promise.allSettled(sent);
  if (failure) throw failure;
  return results.map((r) => r.value);
}

/**
 * A page with `probes` (functions run in the page before any of its scripts) that has loaded
 * `url`, hydrated and connected its event stream. Console errors and failed requests are
 * collected in `problems`.
 */
export async function openLivePage(browser, url, probes = []) {
  const opened = await openPage(browser, url, undefined, probes);
  await opened.page.waitForSelector('[data-testid="connection"][data-state="live"]', { timeout: 10_000 });
  return opened;
}

// Runs in the page before its scripts. Per frame, by performance.now(): its vsync timestamp, when
// its rAF callback ran, and when the main thread was free again (a message posted from the
// callback runs after the frame's rendering work); plus long animation frames and long tasks.
export function frameProbe() {
  const probe = { frames: [], loaf: [], longtasks: [] };
  window.__frames = probe;
  const channel = new MessageChannel();
  channel.port1.onmessage = (e) => { probe.frames[e.data].free = performance.now(); };
  const tick = (vsync) => {
    channel.port2.postMessage(probe.frames.push({ vsync, ran: performance.now() }) - 1);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  // What a long animation frame spent its time on: scripts (and the longest one's invoker), and
  // rendering (from renderStart: rAF callbacks, style, layout, paint).
  const describe = (e) => {
    const scripts = e.scripts ?? [];
    const longest = scripts.reduce((a, b) => (b.duration > (a?.duration ?? -1) ? b : a), null);
    return {
      scripts: scripts.reduce((sum, x) => sum + x.duration, 0),
      rendering: e.renderStart > 0 ? e.startTime + e.duration - e.renderStart : 0,
      longest: longest ? `${longest.invokerType} ${longest.invoker} (${longest.duration.toFixed(0)} ms)` : '',
    };
  };
  for (const [type, list] of [['long-animation-frame', probe.loaf], ['longtask', probe.longtasks]]) {
    if (!PerformanceObserver.supportedEntryTypes.includes(type)) continue;
    new PerformanceObserver((entries) => {
      for (const e of entries.getEntries()) {
        list.push({ start: e.startTime, duration: e.duration, ...(type === 'long-animation-frame' ? describe(e) : {}) });
      }
    }).observe({ type, buffered: true });
  }
}

export const intervalsOf = (times) => times.slice(1).map((t, i) => t - times[i]);
/** The frames whose vsync fell in [from, to) (page time) and whose main-thread work is known. */
export const framesBetween = (probe, from, to) => probe.frames.filter((f) => f.vsync >= from && f.vsync < to && f.free !== undefined);
export const busyOf = (frames) => frames.map((f) => f.free - f.vsync);

/** Nearest-rank percentiles of `values` (ms). */
export function summarize(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  if (sorted.length === 0) return { count: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN };
  return { count: sorted.length, p50: rank(50), p95: rank(95), p99: rank(99), max: sorted.at(-1) };
}

export const ms = (value) => (Number.isFinite(value) ? value.toFixed(1) : '–');

/** Prints `rows` (arrays of cells) under `title` as an aligned text table. */
export function printTable(title, header, rows) {
  const cells = [header, ...rows].map((row) => row.map(String));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  const line = (row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  console.log(`\n${title}`);
  console.log(line(cells[0]));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of cells.slice(1)) console.log(line(row));
}

/** Runs `bench` with a fresh pipescope and Chromium, and stops both however it ends. */
export async function withServerAndBrowser(bench) {
  const server = await startPipescope();
  let browser;
  try {
    browser = await launchBrowser();
    await bench(server, browser);
  } finally {
    await browser?.close();
    await server.stop();
  }
}
