// The prompt inspector and the dashboard's navigation in Chromium against a real pipescope:
// drill down, search a streaming response and copy it; a 1 MB response with markup; colours and
// template variables; the run log, context menus, the quick switcher, the theme, and the panels on
// tablets and phones; a page opened mid-stream.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  EVENTUALLY, ReportedRun, closePages, copied, launchBrowser, newContext, openPage, pacedConfig, screenshot, startPipescope, startRun,
} from '../support.mjs';

let server;
let browser;

before(async () => {
  const config = pacedConfig(25);
  server = await startPipescope(['--config', config]);
  browser = await launchBrowser();
});

afterEach(() => closePages(browser));

after(async () => {
  await browser?.close();
  await server?.stop();
});

const PIPELINE = `
name: inspect-me
defaults: { provider: paced, max_tokens: 150 }
inputs:
  topic: { default: "stream processing" }
steps:
  - name: outline
    prompt: "Outline {{ topic }}."
  - name: draft
    system: "You write briefs about {{ topic }}."
    prompt: "Expand: {{ steps.outline.output }}"
`;

/** The run's detail once it has finished and its rows are written. */
async function settled(id) {
  for (const deadline = Date.now() + EVENTUALLY; Date.now() < deadline;) {
    const detail = await (await fetch(`${server.url}/api/executions/${id}`)).json();
    if (!['pending', 'running', 'paused'].includes(detail.status)) return detail;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`run ${id} did not finish`);
}

/** The outline step's prompt as the engine would send it, with its template and variable. */
const OUTLINE_PROMPT = [
  'Outline stream processing.',
  { template: 'Outline {{ topic }}.', variables: { topic: 'stream processing' } },
];

/** What the match count says for a search of "the" in `text`. */
function matchCount(text) {
  const n = (text.match(/the/gi) ?? []).length;
  return `${n} match${n === 1 ? '' : 'es'}`;
}

test('drill into a step, watch its response stream, search it and copy it', async () => {
  const context = await newContext(browser, {
    permissions: ['clipboard-read', 'clipboard-write'],
    viewport: { width: 1440, height: 900 },
  });
  const page = await context.newPage();
  await page.goto(server.url);
  await page.waitForSelector('[data-hydrated="true"]');
  // The test streams the response itself, so chunks certainly arrive after the search is typed.
  const run = new ReportedRun(server.url, 'inspect-me', ['outline']);
  await run.start();
  await run.startStep('outline', ...OUTLINE_PROMPT);
  for (const chunk of ['Stream processing handles ', 'the data as it arrives, ', 'one event at a time. ']) {
    await run.stream('outline', chunk);
  }
  const sofar = run.responses.get('outline');
  await page.locator(`[data-run-id="${run.id}"] .run-name`).click({ timeout: EVENTUALLY });
  await page.locator('[data-testid="step-row"][data-step="outline"]').click({ timeout: EVENTUALLY });
  // While it streams, a search marks every match, including in chunks that arrive later.
  await page.waitForFunction(
    (text) => document.querySelector('[data-testid="response-text"][data-step="outline"]')?.textContent === text,
    sofar,
    { timeout: EVENTUALLY },
  );
  await page.keyboard.press('/');
  await page.waitForFunction(() => document.activeElement?.id === 'inspector-search', null, { timeout: EVENTUALLY });
  await page.keyboard.type('the');
  // The search has been applied to the text so far before the count is taken.
  await page.waitForFunction(
    (label) => document.querySelector('[data-testid="match-count"]')?.textContent === label,
    matchCount(sofar),
    { timeout: EVENTUALLY },
  );
  const marks0 = await page.locator('[data-testid="response-text"] mark').count();
  for (const chunk of ['Then the window closes, ', 'the state stays small, ', 'and others read the results.']) {
    await run.stream('outline', chunk);
  }
  await page.waitForFunction(
    (before) => document.querySelectorAll('[data-testid="response-text"] mark').length > before,
    marks0,
    { timeout: EVENTUALLY },
  );
  // Every mark is the query (case aside), and the text around them is unchanged.
  const marks = await page.locator('[data-testid="inspector"] mark').allTextContents();
  assert.ok(marks.every((m) => m.toLowerCase() === 'the'), JSON.stringify(marks.slice(0, 5)));
  await run.finishStep('outline');
  await run.complete();
  const status = page.locator(`[data-run-id="${run.id}"] [data-testid="status"]`);
  await status.filter({ hasText: 'complete' }).waitFor({ timeout: EVENTUALLY });
  const text = await page.textContent('[data-testid="response-text"][data-step="outline"]');
  assert.equal(await page.textContent('[data-testid="match-count"]'), matchCount(text));
  // Enter goes to the first match, Shift+Enter from there wraps round to the last.
  const current = () => page.evaluate(() => {
    const marks = [...document.querySelectorAll('[data-testid="inspector"] mark')];
    return [marks.findIndex((m) => m.classList.contains('current')), marks.length];
  });
  await page.press('[data-testid="inspector-search"]', 'Enter');
  const [first, total] = await current();
  assert.equal(first, 0);
  await page.press('[data-testid="inspector-search"]', 'Enter');
  assert.equal((await current())[0], 1 % total);
  await page.press('[data-testid="inspector-search"]', 'Shift+Enter');
  await page.press('[data-testid="inspector-search"]', 'Shift+Enter');
  assert.equal((await current())[0], total - 1, 'wrapped round to the last match');
  assert.equal(await copied(page, () => page.click('[data-testid="copy-response"]')), text);
  // The text export holds the same response.
  const transcript = await (await fetch(`${server.url}${await page.getAttribute('[data-testid="export-text"]', 'href')}`)).text();
  assert.ok(transcript.includes(`-- response --\n${text}\n`), 'the export has the response');
  // Esc in the field clears the search.
  await page.press('[data-testid="inspector-search"]', 'Escape');
  assert.equal(await page.locator('[data-testid="inspector"] mark').count(), 0);
  await context.close();
});

test('a selected step keeps its open panel and search while other steps of the run start', async () => {
  const { page, problems } = await openPage(browser, server.url);
  // Reported by the test, so the next step starts only once the panel is open and searched.
  const run = new ReportedRun(server.url, 'inspect-me', ['outline', 'draft']);
  await run.start();
  await run.startStep('outline', ...OUTLINE_PROMPT);
  await run.stream('outline', 'First, the sources. ');
  await page.locator(`[data-run-id="${run.id}"] .run-name`).click({ timeout: EVENTUALLY });
  await page.locator('[data-testid="step-row"][data-step="outline"]').click({ timeout: EVENTUALLY });
  await page.click('details.template > summary');
  await page.fill('[data-testid="inspector-search"]', 'outline');
  // The next step starts (a new row, a new step in the run): the inspector is not rebuilt.
  await run.finishStep('outline');
  await run.startStep('draft', 'Expand: First, the sources.', {
    template: 'Expand: {{ steps.outline.output }}',
    variables: { 'steps.outline.output': 'First, the sources. ' },
  });
  await page.locator('[data-testid="step-row"][data-step="draft"]').waitFor({ timeout: EVENTUALLY });
  // Once the draft's later events are shown, the page has handled its start in full.
  await run.stream('draft', 'Sources come first.');
  await run.finishStep('draft');
  await page.locator('[data-testid="step-row"][data-step="draft"][data-status="completed"]').waitFor({ timeout: EVENTUALLY });
  assert.equal(await page.evaluate(() => document.querySelector('details.template').open), true, 'the panel stayed open');
  assert.equal(await page.inputValue('[data-testid="inspector-search"]'), 'outline');
  assert.equal(await page.getAttribute('[data-testid="response-text"]', 'data-step'), 'outline');
  assert.deepEqual(problems, []);
  await run.complete();
});

test('a 1 MB response with markup renders inertly and the page stays usable', async () => {
  const line = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> needle text\n';
  const big = line.repeat(Math.ceil((1 << 20) / line.length));
  const id = await ReportedRun.finished(server.url, 'big-response', '<b>hello</b>', big);
  const { page, problems } = await openPage(browser, `${server.url}/runs/${id}/steps/answer`);
  const shown = await page.evaluate(() => document.querySelector('[data-testid="response-text"]').textContent.length);
  assert.equal(shown, big.length, 'the whole response is shown');
  assert.equal(await page.locator('[data-testid="inspector"] script, [data-testid="inspector"] img, [data-testid="inspector"] b').count(), 0);
  // Searching a megabyte marks the first 1,000 matches and says there are more.
  await page.fill('[data-testid="inspector-search"]', 'needle');
  await page.locator('[data-testid="match-count"]').filter({ hasText: '1000+ matches' }).waitFor({ timeout: EVENTUALLY });
  assert.equal(await page.locator('[data-testid="response-text"] mark').count(), 1000);
  // Still responsive: the keyboard works.
  await page.keyboard.press('Escape');
  await page.keyboard.press('Shift+Slash');
  await page.locator('[data-testid="shortcuts"]').waitFor({ timeout: EVENTUALLY });
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(problems, []);
});

test('JSON and code are coloured, and template variables show their values', async () => {
  const json = '{"verdict": "ship", "score": 0.92, "blocking": false, "notes": null}';
  const id = await ReportedRun.finished(server.url, 'colours', 'Reply with JSON.', json);
  const { page, problems } = await openPage(browser, `${server.url}/runs/${id}/steps/answer`);
  // The colours come with their WASM chunk, fetched once the page is hydrated.
  await page.locator('[data-testid="response-text"] .tk-key').first().waitFor({ timeout: EVENTUALLY });
  assert.deepEqual(await page.locator('[data-testid="response-text"] .tk-key').allTextContents(), ['"verdict"', '"score"', '"blocking"', '"notes"']);
  assert.deepEqual(await page.locator('[data-testid="response-text"] .tk-num').allTextContents(), ['0.92']);
  assert.equal(await page.textContent('[data-testid="response-text"]'), json, 'colours change no character');

  const run = await startRun(server.url, { yaml: PIPELINE, provider: 'instant' });
  const { page: steps } = await openPage(browser, `${server.url}/runs/${run}/steps/draft`);
  await steps.waitForFunction(() => document.querySelector('[data-testid="template-text"] .tvar'), null, { timeout: EVENTUALLY });
  await steps.click('details.template > summary');
  const variable = steps.locator('[data-testid="template-text"] .tvar');
  assert.equal(await variable.textContent(), '{{ steps.outline.output }}');
  const value = (await settled(run)).steps.find((s) => s.step === 'outline').response;
  assert.ok((await variable.getAttribute('title')).startsWith(value.slice(0, 100)), 'hovering shows the value');
  assert.deepEqual(
    await steps.locator('[data-testid="variables"] .var-name').allTextContents(),
    ['steps.outline.output', 'topic'],
  );
  await screenshot(steps, 'inspector-template');
  assert.deepEqual(problems, []);
});

test('the Log tab shows the run log; right-click menus copy and show raw data; Ctrl+P switches runs', async () => {
  const context = await newContext(browser, {
    permissions: ['clipboard-read', 'clipboard-write'],
    viewport: { width: 1440, height: 900 },
  });
  const page = await context.newPage();
  const first = await startRun(server.url, { yaml: PIPELINE, provider: 'instant' });
  const other = await ReportedRun.finished(server.url, 'switch-target', 'Hi', 'Hello');
  await page.goto(server.url);
  await page.waitForSelector('[data-hydrated="true"]');
  const row = page.locator(`[data-run-id="${first}"]`);
  await row.locator('[data-testid="status"]').filter({ hasText: 'complete' }).waitFor({ timeout: EVENTUALLY });
  await row.locator('.run-name').click();
  // Once the run's detail has loaded (the log is part of it).
  await page.locator(`[data-testid="open-run"][href="/runs/${first}"]`).waitFor({ timeout: EVENTUALLY });

  await page.click('[data-testid="tab-log"]');
  await page.locator('[data-testid="run-log"] .log-line').first().waitFor({ timeout: EVENTUALLY });
  const log = await page.locator('[data-testid="run-log"] .log-line').allTextContents();
  assert.match(log.at(-1), /run of inspect-me v\d+ started/);
  // Newest first: the run's own completion (a line with no step) heads the log.
  assert.equal(await page.locator('[data-testid="run-log"] .log-line .log-step').first().textContent(), '');
  assert.ok(log[0].includes('completed in'), log[0]);
  assert.equal(log.filter((l) => l.includes('started on')).length, 2, 'one line per step start');

  // Right-click a run: copy its config.
  await page.click('[data-testid="tab-timeline"]');
  await row.click({ button: 'right' });
  const config = JSON.parse(await copied(page, () => page.click('[data-testid="menu-copy-config"]')));
  assert.deepEqual(config.steps, ['outline', 'draft']);
  assert.equal(await page.locator('[data-testid="context-menu"]').count(), 0, 'the menu closed');
  // Right-click a step: copy its prompt, view its raw data.
  const step = page.locator('[data-testid="step-row"][data-step="outline"]');
  await step.click({ button: 'right' });
  assert.equal(await copied(page, () => page.click('[data-testid="menu-copy-prompt"]')), 'Outline stream processing.');
  await step.click({ button: 'right' });
  await page.click('[data-testid="menu-raw"]');
  const raw = JSON.parse(await page.locator('[data-testid="raw-dialog"] pre').textContent());
  assert.equal(raw.step, 'outline');
  assert.equal(raw.prompt, 'Outline stream processing.');
  await page.keyboard.press('Escape');
  await page.locator('[data-testid="raw-dialog"]').waitFor({ state: 'detached' });

  // Ctrl+P, type part of a pipeline name, Enter: that run is selected.
  await page.keyboard.press('Control+p');
  await page.keyboard.type('switch-ta');
  assert.equal(await page.inputValue('[data-testid="switcher-input"]'), 'switch-ta', 'the field has the focus');
  // The list comes with its WASM chunk (usually prefetched by now).
  await page.locator('[data-testid="switcher-entry"]').first().waitFor({ timeout: EVENTUALLY });
  assert.equal(await page.locator('[data-testid="switcher-entry"]').count(), 2, 'the pipeline and its one run');
  await page.keyboard.press('Enter');
  await page.locator(`[data-run-id="${other}"][aria-selected="true"]`).waitFor({ timeout: EVENTUALLY });
  assert.equal(await page.locator('[data-testid="switcher"]').count(), 0);
  await context.close();
});

test('the light theme is remembered; tablets collapse panels; phones switch them with tabs', async () => {
  const { page, problems } = await openPage(browser, server.url);
  await page.click('[data-testid="theme-toggle"]');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
  await page.reload();
  await page.waitForSelector('[data-hydrated="true"]');
  problems.length = 0; // the reload cut the old page's event stream, as it should
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light', 'applied before paint on reload');
  await screenshot(page, 'dashboard-light');
  await page.click('[data-testid="theme-toggle"]');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');

  await page.setViewportSize({ width: 820, height: 1180 });
  const metrics = page.locator('[data-panel="metrics"] .charts');
  assert.equal(await metrics.isVisible(), true);
  await page.click('[data-testid="collapse-metrics"]');
  assert.equal(await metrics.isVisible(), false, 'collapsed to its header');
  assert.equal(await page.locator('[data-panel="metrics"] h2').isVisible(), true);
  await page.click('[data-testid="collapse-metrics"]');
  assert.equal(await metrics.isVisible(), true);

  await page.setViewportSize({ width: 390, height: 844 });
  assert.equal(await page.locator('[data-panel="runs"]').isVisible(), true);
  assert.equal(await page.locator('[data-panel="inspector"]').isVisible(), false, 'one panel at a time');
  await page.click('[data-testid="mobile-tab-inspector"]');
  assert.equal(await page.locator('[data-panel="inspector"]').isVisible(), true);
  assert.equal(await page.locator('[data-panel="runs"]').isVisible(), false);
  // `/` on another tab shows the inspector and puts the cursor in its search.
  await page.click('[data-testid="mobile-tab-metrics"]');
  await page.locator('[data-panel="metrics"] h2').click();
  await page.keyboard.press('/');
  await page.waitForFunction(() => document.activeElement?.id === 'inspector-search', null, { timeout: EVENTUALLY });
  assert.equal(await page.locator('[data-panel="inspector"]').isVisible(), true);
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no sideways scrolling');
  assert.deepEqual(problems, []);
});

test('a page opened mid-stream shows the response from its start', async () => {
  // The test streams the response itself, so it is still streaming whenever the page looks.
  const run = new ReportedRun(server.url, 'late', ['only']);
  await run.start();
  await run.startStep('only', 'go');
  let sent = 0;
  const next = () => run.stream('only', `piece ${(sent += 1)}, `); // no two alike
  // Let it stream for a while before anyone looks.
  let before = '';
  for (let i = 0; i < 50 && before.length < 40; i += 1) {
    await next();
    before = (await (await fetch(`${server.url}/api/executions/${run.id}`)).json()).steps[0]?.response ?? '';
  }
  assert.ok(before.length >= 40, 'it streamed before the page opened');
  // Chunks go on arriving while the page loads and is sampled, until the test stops them.
  let streaming = true;
  const streamer = (async () => {
    while (streaming) {
      await next();
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  let page;
  let problems;
  const samples = [];
  const response = () => page.textContent('[data-testid="response-text"]');
  try {
    ({ page, problems } = await openPage(browser, `${server.url}/runs/${run.id}/steps/only`));
    samples.push(await response());
    assert.ok(samples[0].startsWith(before), 'the first paint has the text so far');
    // While it goes on streaming, the page always shows a prefix of the final text: a chunk
    // missed or applied twice would break that.
    for (let i = 0; i < 8; i += 1) {
      await page.waitForTimeout(250);
      samples.push(await response());
    }
  } finally {
    streaming = false;
    await streamer;
  }
  await run.stream('only', 'the end.'); // after the last sample: every sample was mid-stream
  await run.finishStep('only');
  await run.complete();
  const stored = (await settled(run.id)).steps[0].response;
  const streamed = samples.filter((s) => s !== stored);
  assert.ok(streamed.length >= 3, `sampled while streaming: ${streamed.length}`);
  for (const sample of streamed) assert.ok(stored.startsWith(sample), `not a prefix: ${JSON.stringify(sample.slice(-40))}`);
  await page.waitForFunction((text) => document.querySelector('[data-testid="response-text"]').textContent === text, stored);
  assert.deepEqual(problems, []);
});
