// /logs with 1,000,000 stored lines (PIPESCOPE_BENCH_LINES): how fast the whole log exports
// (GET /api/logs/export, text and JSON lines, downloaded by the browser from the page's links and
// read by a plain HTTP client), how long the list takes to scroll from the newest line to the
// first one (older pages read one after the other, at the most lines a page may hold, and at the
// default page size with PIPESCOPE_BENCH_DEFAULT_PAGE=1), and the tab's memory with the newest
// page and with every line held: the WASM module's linear memory (it holds the lines), the JS
// heap and DOM nodes (CDP Performance.getMetrics, after a garbage collection) and the renderer
// process's resident memory. The lines are stored straight in SQL (../logs-support.mjs fillLog),
// ~90 characters of message and one context field each.
import { readFile, stat } from 'node:fs/promises';
import { withServerAndBrowser, printTable, ms } from './lib.mjs';
import { openPage } from '../support.mjs';
import { fillLog, scrollToFirstLine, waitForCount } from '../logs-support.mjs';

const LINES = Number(process.env.PIPESCOPE_BENCH_LINES || 1_000_000);
const MB = 1e6;

/** How many line feeds `bytes` holds. */
function newlines(bytes) {
  let n = 0;
  for (let at = bytes.indexOf(10); at !== -1; at = bytes.indexOf(10, at + 1)) n += 1;
  return n;
}

// Runs in the page before its scripts: keeps every WebAssembly memory the page creates or
// imports, so its size can be read (the module's lines live in it, out of the JS heap's count).
function wasmProbe() {
  const memories = new Set();
  window.__wasmBytes = () => [...memories].reduce((sum, m) => sum + m.buffer.byteLength, 0);
  const keep = (value) => {
    if (value instanceof WebAssembly.Memory) memories.add(value);
  };
  for (const name of ['instantiate', 'instantiateStreaming']) {
    const original = WebAssembly[name];
    WebAssembly[name] = function (source, imports, ...rest) {
      for (const module of Object.values(imports ?? {})) for (const value of Object.values(module ?? {})) keep(value);
      return original.call(this, source, imports, ...rest).then((result) => {
        const instance = result instanceof WebAssembly.Instance ? result : result.instance;
        for (const value of Object.values(instance.exports)) keep(value);
        return result;
      });
    };
  }
}

/** The renderer processes' resident memory (MB), largest first (one page is open: it is the first). */
async function rendererRss(browser) {
  const cdp = await browser.newBrowserCDPSession();
  const { processInfo } = await cdp.send('SystemInfo.getProcessInfo');
  await cdp.detach();
  const sizes = [];
  for (const p of processInfo.filter((p) => p.type === 'renderer')) {
    try {
      const status = await readFile(`/proc/${p.id}/status`, 'utf8');
      sizes.push(Number(status.match(/VmRSS:\s+(\d+)/)[1]) / 1024);
    } catch {
      /* gone */
    }
  }
  return sizes.sort((a, b) => b - a);
}

async function memory(browser, page, cdp, what) {
  await cdp.send('HeapProfiler.collectGarbage');
  const { metrics } = await cdp.send('Performance.getMetrics');
  const metric = (name) => metrics.find((m) => m.name === name)?.value ?? NaN;
  const wasm = await page.evaluate(() => window.__wasmBytes());
  const rss = await rendererRss(browser);
  return [what, (wasm / MB).toFixed(0), (metric('JSHeapUsedSize') / MB).toFixed(1), (metric('JSHeapTotalSize') / MB).toFixed(1), metric('Nodes'), rss[0]?.toFixed(0) ?? '–'];
}

await withServerAndBrowser(async (server, browser) => {
  const filled = await fillLog(server, LINES, {
    extra: "' request to provider finished in ' || (i * 37 % 9000) || ' ms req-' || substr(md5(i::text), 1, 12) || ' upstream cache tier'",
    context: "jsonb_build_object('attempt', 1 + i % 3)",
  });
  console.log(`${LINES} lines stored in ${(filled / 1000).toFixed(1)} s`);

  // Export: the page's links, downloaded by the browser; and the same URL read by Node.
  const exports = [];
  {
    const { page } = await openPage(browser, `${server.url}/logs`);
    for (const [format, testid] of [['text', 'logs-export-text'], ['jsonl', 'logs-export-jsonl']]) {
      const started = performance.now();
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(`[data-testid="${testid}"]`)]);
      const path = await download.path();
      const seconds = (performance.now() - started) / 1000;
      const { size } = await stat(path);
      const lines = newlines(await readFile(path));
      if (lines !== LINES) throw new Error(`the ${format} download has ${lines} lines, not ${LINES}`);
      exports.push([`${format}, browser download`, lines, (size / MB).toFixed(0), seconds.toFixed(2), Math.round(lines / seconds), (size / MB / seconds).toFixed(1), '–']);
      await download.delete();

      const t0 = performance.now();
      const res = await fetch(`${server.url}/api/logs/export?format=${format}`);
      let first = null;
      let bytes = 0;
      let count = 0;
      for await (const chunk of res.body) {
        first ??= performance.now() - t0;
        bytes += chunk.length;
        count += newlines(chunk);
      }
      const wall = (performance.now() - t0) / 1000;
      exports.push([`${format}, HTTP client`, count, (bytes / MB).toFixed(0), wall.toFixed(2), Math.round(count / wall), (bytes / MB / wall).toFixed(1), ms(first)]);
    }
    await page.context().close();
  }
  printTable(`GET /api/logs/export, every line (${LINES})`, ['format, reader', 'lines', 'MB', 's', 'lines/s', 'MB/s', 'first byte ms'], exports);

  // The list from the newest page to the first line, and the tab's memory.
  const reads = [];
  const mem = [];
  const sizes = process.env.PIPESCOPE_BENCH_DEFAULT_PAGE ? [1000, null] : [1000];
  for (const limit of sizes) {
    const query = limit ? `?limit=${limit}` : '';
    const { page, problems } = await openPage(browser, `${server.url}/logs${query}`, undefined, [wasmProbe]);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    await waitForCount(page, limit ?? 200);
    mem.push(await memory(browser, page, cdp, `newest page (${limit ?? 200} lines), limit=${limit ?? 'default'}`));
    const started = performance.now();
    const scrolls = await scrollToFirstLine(page);
    const seconds = (performance.now() - started) / 1000;
    await waitForCount(page, LINES);
    // ms a page over each tenth of the pages: does a page cost more as the lines held grow?
    const tenths = Array.from({ length: 10 }, (_, k) => {
      const [a, b] = [Math.floor((k * scrolls.length) / 10), Math.floor(((k + 1) * scrolls.length) / 10) - 1];
      return ms((scrolls[b] - scrolls[a]) / Math.max(1, b - a));
    });
    reads.push([`limit=${limit ?? 'default (200)'}`, scrolls.length, seconds.toFixed(1), ms((seconds * 1000) / scrolls.length), Math.round(LINES / seconds), tenths.join(' ')]);
    mem.push(await memory(browser, page, cdp, `every line held (${LINES}), limit=${limit ?? 'default'}`));
    if (problems.length > 0) console.log(`page problems: ${problems.join('; ')}`);
    await page.context().close();
  }
  printTable('Scrolling /logs from the newest line to the first', ['page size', 'older pages read', 's', 'ms a page', 'lines/s', 'ms a page, by tenth of the way'], reads);
  printTable(
    'The tab\'s memory (MB; WASM: linear memory; JS heap after a GC; renderer: resident set of the largest renderer process)',
    ['state', 'WASM', 'JS heap used', 'JS heap total', 'DOM nodes', 'renderer RSS'],
    mem,
  );
});
