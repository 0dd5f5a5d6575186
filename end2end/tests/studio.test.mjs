// The pipeline studio in Chromium against a real pipescope: write a pipeline from empty with the
// engine's validator marking its problems as you type, fix one by completion, save, run it from
// the generated form and watch the response stream in on the same page; two pages saving one
// pipeline (the second sees the conflict); a 10 MB paste; every example pipeline opens clean.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { EVENTUALLY, closePages, launchBrowser, openPage, pacedConfig, screenshot, startPipescope } from '../support.mjs';

const EXAMPLES = new URL('../../pipelines/', import.meta.url).pathname;

let server;
let browser;

before(async () => {
  server = await startPipescope(['--config', pacedConfig(20), '--pipelines-dir', EXAMPLES]);
  browser = await launchBrowser();
});

afterEach(() => closePages(browser));

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Opens a studio page and waits until CodeMirror has taken over its text. */
async function openStudio(path) {
  const opened = await openPage(browser, `${server.url}${path}`);
  await opened.page.locator('[data-testid="editor"][data-ready="true"] .cm-content').waitFor({ timeout: EVENTUALLY });
  return opened;
}

/** Replaces the editor's whole text, as a paste would. */
async function replaceText(page, text) {
  await page.click('[data-testid="editor"] .cm-content');
  await page.keyboard.press('Control+a');
  await page.keyboard.insertText(text);
}

/** Waits until the editor has the focus (a clicked problem moves it there after the click). */
async function editorFocused(page) {
  await page.waitForFunction(() => document.activeElement?.closest('.cm-editor') !== null, null, { timeout: EVENTUALLY });
}

async function problems(page) {
  return page.locator('[data-testid="problem"]').evaluateAll((list) =>
    list.map((p) => ({ line: Number(p.dataset.line), column: Number(p.dataset.column), text: p.textContent })),
  );
}

async function savedPipelines() {
  return (await fetch(`${server.url}/api/pipelines`)).json();
}

const WITH_PROBLEMS = [
  'name: e2e-studio',
  'defaults:',
  '  provider: paced',
  '  max_tokens: 40',
  'inputs:',
  '  topic:',
  '    description: What to write about',
  'steps:',
  '  - name: outline',
  '    system: "Use {{ steps.draft.output }}"',
  '    promt: "Outline {{ topic }}."',
  '  - name: draft',
  '    prompt: "Expand: {{ steps.outline.output }}"',
  '',
].join('\n');

test('write a pipeline from empty, fix it, save it, run it and watch it stream', async () => {
  const { page, problems: errors } = await openStudio('/pipelines/new');
  await replaceText(page, WITH_PROBLEMS);

  // The typo'd key (line 11) and the reference to a later step (line 10) are marked where the
  // engine's validator says, in the list and under the text.
  await page.locator('[data-testid="problem"][data-line="11"]').waitFor({ timeout: EVENTUALLY });
  await page.locator('[data-testid="problem"][data-line="10"]').waitFor({ timeout: EVENTUALLY });
  const shown = await problems(page);
  const typo = shown.find((p) => p.line === 11);
  assert.equal(typo.column, 5, JSON.stringify(shown));
  assert.match(typo.text, /promt/);
  assert.match(shown.find((p) => p.line === 10).text, /draft/);
  assert.ok((await page.locator('.cm-lintRange-error').count()) >= 2, 'problems are underlined');
  await screenshot(page, 'studio-problems');

  // Fix the typo by completion: the problem puts the cursor on the key; type over it and pick.
  await page.click('[data-testid="problem"][data-line="11"]');
  await editorFocused(page);
  for (let i = 0; i < 5; i++) await page.keyboard.press('Shift+ArrowRight');
  await page.keyboard.type('pro');
  const option = page.locator('.cm-tooltip-autocomplete li').filter({
    has: page.locator('.cm-completionLabel', { hasText: /^prompt$/ }),
  });
  await option.waitFor({ timeout: EVENTUALLY });
  await option.click();
  await page.locator('[data-testid="problem"][data-line="11"]').waitFor({ state: 'detached', timeout: EVENTUALLY });

  // Fix the reference by hand.
  await page.click('[data-testid="problem"][data-line="10"]');
  await editorFocused(page);
  await page.keyboard.press('Home');
  await page.keyboard.press('Shift+End');
  await page.keyboard.insertText('system: "You are brief."');
  await page.locator('[data-testid="no-problems"]').waitFor({ timeout: EVENTUALLY });

  // Save: the page moves to the pipeline's own address, as version 1, stored in Postgres.
  await page.keyboard.press('Control+s');
  await page.waitForURL(`${server.url}/pipelines/e2e-studio/edit`, { timeout: EVENTUALLY });
  await page.locator('[data-testid="studio-version"]', { hasText: 'v1' }).waitFor({ timeout: EVENTUALLY });
  const stored = (await savedPipelines()).find((p) => p.name === 'e2e-studio');
  assert.equal(stored?.version, 1);
  assert.deepEqual(stored.steps, ['outline', 'draft']);

  // Run it from the generated form; the response streams in beside the editor.
  await page.locator('[data-testid="editor"][data-ready="true"]').waitFor({ timeout: EVENTUALLY });
  await page.click('[data-testid="studio-tab-run"]');
  const topic = page.locator('[data-testid="input-field"][data-input="topic"]');
  assert.equal(await topic.getAttribute('required'), '', 'an input without a default is required');
  await topic.fill('stream processing');
  await page.click('[data-testid="run-button"]');
  const live = page.locator('[data-testid="studio-run"]');
  await live.waitFor({ timeout: EVENTUALLY });
  const response = live.locator('[data-testid="response-text"]');
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="studio-run"] [data-testid="response-text"]')?.textContent ?? '').length > 0,
    null,
    { timeout: EVENTUALLY },
  );
  const early = (await response.textContent()).length;
  await page.waitForFunction(
    (n) => (document.querySelector('[data-testid="studio-run"] [data-testid="response-text"]')?.textContent ?? '').length > n,
    early,
    { timeout: EVENTUALLY },
  );
  await screenshot(page, 'studio-run');
  const runId = await live.getAttribute('data-run-id');
  const detail = await (await fetch(`${server.url}/api/executions/${runId}`)).json();
  assert.equal(detail.pipeline, 'e2e-studio');

  // Preview the second step with the first one's output from that run, once it has finished:
  // exactly what the engine sent.
  let finished;
  for (const deadline = Date.now() + EVENTUALLY; Date.now() < deadline;) {
    finished = await (await fetch(`${server.url}/api/executions/${runId}`)).json();
    if (finished.status === 'completed') break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(finished.status, 'completed');
  const outline = finished.steps.find((s) => s.step === 'outline').response;
  const draftSent = finished.steps.find((s) => s.step === 'draft').prompt;
  await page.click('[data-testid="studio-tab-preview"]');
  await page.selectOption('[data-testid="preview-step"]', 'draft');
  await page.click('[data-testid="preview-fill"]');
  await page.waitForFunction(
    (text) => document.querySelector('[data-testid="preview-output"][data-step="outline"]')?.value === text,
    outline,
    { timeout: EVENTUALLY },
  );
  await page.click('[data-testid="preview-button"]');
  await page.locator('[data-testid="preview-result"]').waitFor({ timeout: EVENTUALLY });
  assert.equal(await page.textContent('[data-testid="preview-prompt"]'), draftSent);
  assert.match(await page.textContent('[data-testid="preview-figures"]'), /paced · .* input tokens · up to 40 output/);
  await screenshot(page, 'studio-preview');

  // The list shows it.
  const { page: list } = await openPage(browser, `${server.url}/pipelines`);
  const row = list.locator('[data-testid="pipeline-row"][data-pipeline="e2e-studio"]');
  await row.waitFor({ timeout: EVENTUALLY });
  assert.match(await row.textContent(), /v1/);
  await screenshot(list, 'pipelines');
  assert.deepEqual(errors, []);
});

test('two pages save one pipeline: the second sees the conflict and keeps both texts', async () => {
  const a = await openStudio('/pipelines/research-brief/edit');
  const b = await openStudio('/pipelines/research-brief/edit');
  const base = (await savedPipelines()).find((p) => p.name === 'research-brief').version;

  await a.page.click('[data-testid="editor"] .cm-content');
  await a.page.keyboard.press('Control+End');
  await a.page.keyboard.insertText('# saved from page A\n');
  await a.page.keyboard.press('Control+s');
  await a.page.locator('[data-testid="studio-version"]', { hasText: `v${base + 1}` }).waitFor({ timeout: EVENTUALLY });

  await b.page.click('[data-testid="editor"] .cm-content');
  await b.page.keyboard.press('Control+End');
  await b.page.keyboard.insertText('# saved from page B\n');
  await b.page.keyboard.press('Control+s');
  const conflict = b.page.locator('[data-testid="conflict"]');
  await conflict.waitFor({ timeout: EVENTUALLY });
  const diff = await conflict.locator('[data-testid="diff"]').textContent();
  assert.match(diff, /- # saved from page A/);
  assert.match(diff, /\+ # saved from page B/);
  await screenshot(b.page, 'studio-conflict');
  await conflict.locator('[data-testid="keep-mine"]').click();
  await b.page.locator('[data-testid="studio-version"]', { hasText: `v${base + 2}` }).waitFor({ timeout: EVENTUALLY });
  assert.deepEqual(a.problems, []);
  assert.deepEqual(b.problems, []);
});

test('a 10 MB paste is refused with a message and the page stays responsive', async () => {
  const { page, problems: errors } = await openStudio('/pipelines/new');
  await page.click('[data-testid="editor"] .cm-content');
  await page.keyboard.insertText('x'.repeat(10_000_000));
  await page.locator('[data-testid="too-large"]').waitFor({ timeout: EVENTUALLY });
  assert.match(await page.textContent('[data-testid="too-large"]'), /limited to/);
  // Still typing, and the text is the starter's, not ten megabytes.
  await page.keyboard.type('# still here');
  await page.locator('.cm-content', { hasText: '# still here' }).waitFor({ timeout: EVENTUALLY });
  const length = await page.evaluate(() => document.querySelector('.cm-content').textContent.length);
  assert.ok(length < 10_000, `the editor holds ${length} characters`);
  assert.deepEqual(errors, []);
});

test('every example pipeline opens with no problem and its graph matches its steps', async () => {
  const saved = await savedPipelines();
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 3);
  for (const file of files) {
    const name = file.replace(/\.yaml$/, '');
    const stored = saved.find((p) => p.name === name);
    assert.ok(stored, `${file} was loaded`);
    const { page, problems: errors } = await openStudio(`/pipelines/${name}/edit`);
    await page.locator('[data-testid="no-problems"]').waitFor({ timeout: EVENTUALLY });
    const nodes = await page.locator('[data-testid="graph-node"]').evaluateAll((n) => n.map((x) => x.dataset.step));
    assert.deepEqual(nodes.toSorted(), [...stored.steps].toSorted(), name);
    if (name === 'support-triage') await screenshot(page, 'studio-graph');
    assert.deepEqual(errors, []);
    await page.close();
  }
});

test('the providers page lists what is configured and tests a connection for real', async () => {
  const { page, problems: errors } = await openPage(browser, `${server.url}/providers`);
  const row = page.locator('[data-testid="provider-row"][data-provider="instant"]');
  await row.waitFor({ timeout: EVENTUALLY });
  assert.match(await row.textContent(), /simulated/);
  await row.locator('[data-testid="test-provider"]').click();
  const result = row.locator('[data-testid="provider-result"]');
  await result.waitFor({ timeout: EVENTUALLY });
  assert.match(await result.textContent(), /answered in \d+ ms/);
  await screenshot(page, 'providers');
  assert.deepEqual(errors, []);
});

test('a batch from a file and pasted JSON lines: rows previewed, a bad row by its line, progress to the end', async () => {
  const { page, problems: errors } = await openStudio('/pipelines/research-brief/edit');
  await page.locator('[data-testid="no-problems"]').waitFor({ timeout: EVENTUALLY });
  await page.click('[data-testid="studio-tab-batch"]');

  // A picked file's text lands in the box and is read as CSV (a quoted field keeps its comma).
  const csv = 'topic\n"raft, briefly"\npaxos\n';
  await page.setInputFiles('[data-testid="batch-file"]', { name: 'topics.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.locator('[data-testid="batch-count"][data-rows="2"]').waitFor({ timeout: EVENTUALLY });
  assert.equal(await page.inputValue('[data-testid="batch-text"]'), csv);
  assert.match(await page.textContent('[data-testid="batch-format"]'), /CSV/);
  assert.match(await page.locator('[data-testid="batch-row"]').first().textContent(), /raft, briefly/);

  // Pasted JSON lines: three rows that run and one with an unknown input, named by its line.
  const rows = ['{"topic": "consensus"}', '{"topic": "gossip protocols"}', '{"topik": "typo"}', '', '{"topic": "vector clocks"}'];
  await page.fill('[data-testid="batch-text"]', rows.join('\n'));
  await page.locator('[data-testid="batch-count"][data-rows="3"]').waitFor({ timeout: EVENTUALLY });
  assert.match(await page.textContent('[data-testid="batch-format"]'), /JSON lines/);
  const shown = await page.locator('[data-testid="batch-row"]').allTextContents();
  assert.deepEqual(shown.map((r) => r.replace(/^\d+/, '')), ['consensus', 'gossip protocols', 'vector clocks']);
  const bad = page.locator('[data-testid="batch-row-error"]');
  assert.equal(await bad.count(), 1);
  assert.equal(await bad.getAttribute('data-line'), '3');
  assert.match(await bad.textContent(), /unknown input `topik`/);

  // Start the three, two at a time, and follow them to the end.
  await page.fill('[data-testid="batch-concurrency"]', '2');
  const start = page.locator('[data-testid="batch-start"]');
  assert.match(await start.textContent(), /Start 3 runs of v\d+/);
  await start.click();
  const progress = page.locator('[data-testid="batch-progress"]');
  await progress.waitFor({ timeout: EVENTUALLY });
  await screenshot(page, 'studio-batch-started');
  // Three simulated runs of three steps each at the provider's pace, two at a time.
  await page.locator('[data-testid="batch-progress"][data-state="done"][data-completed="3"]').waitFor({ timeout: 3 * EVENTUALLY });
  assert.match(await progress.textContent(), /3 of 3 finished/);
  assert.ok(await page.locator('[data-testid="batch-cancel"]').isDisabled(), 'nothing left to cancel');
  const batchId = await progress.getAttribute('data-batch-id');
  const stored = await (await fetch(`${server.url}/api/batches/${batchId}`)).json();
  assert.deepEqual(stored.statuses, { completed: 3 });
  await screenshot(page, 'studio-batch');
  assert.deepEqual(errors, []);
});

test('following a link with unsaved text asks first; declining keeps the page and the text', async () => {
  const { page, problems: errors } = await openStudio('/pipelines/research-brief/edit');
  await page.locator('[data-testid="no-problems"]').waitFor({ timeout: EVENTUALLY });
  await page.click('[data-testid="editor"] .cm-content');
  await page.keyboard.press('Control+End');
  await page.keyboard.insertText('# still thinking\n');
  await page.locator('[data-testid="dirty"]', { hasText: 'unsaved changes' }).waitFor({ timeout: EVENTUALLY });

  const asked = [];
  page.once('dialog', (dialog) => {
    asked.push(dialog.message());
    dialog.dismiss();
  });
  await page.click('a.back');
  assert.match(asked[0] ?? '', /unsaved changes/);
  assert.equal(new URL(page.url()).pathname, '/pipelines/research-brief/edit');
  assert.match(await page.textContent('[data-testid="editor"] .cm-content'), /still thinking/);

  page.once('dialog', (dialog) => dialog.accept());
  await page.click('a.back');
  await page.waitForURL(`${server.url}/pipelines`, { timeout: EVENTUALLY });
  await page.locator('[data-testid="pipeline-row"]').first().waitFor({ timeout: EVENTUALLY });
  assert.deepEqual(errors, []);
});

test('on a phone the editor and the side panel are tabs of one column', async () => {
  const opened = await openPage(browser, `${server.url}/pipelines/research-brief/edit`, { width: 390, height: 844 });
  const { page, problems: errors } = opened;
  await page.locator('[data-testid="editor"][data-ready="true"] .cm-content').waitFor({ timeout: EVENTUALLY });
  const editor = page.locator('.studio-editor');
  const graph = page.locator('[data-testid="step-graph"]');
  assert.ok(await editor.isVisible(), 'the editor shows first');
  assert.equal(await page.getAttribute('[data-testid="studio-tab-editor"]', 'aria-selected'), 'true');
  assert.ok(!(await graph.isVisible()));
  await screenshot(page, 'studio-phone-editor');

  await page.click('[data-testid="studio-tab-graph"]');
  await graph.waitFor({ state: 'visible', timeout: EVENTUALLY });
  assert.ok(!(await editor.isVisible()), 'one tab at a time');
  assert.equal(await page.getAttribute('[data-testid="studio-tab-editor"]', 'aria-selected'), 'false');
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `nothing wider than the screen (${width} px)`);
  await screenshot(page, 'studio-phone-graph');

  await page.click('[data-testid="studio-tab-editor"]');
  await editor.waitFor({ state: 'visible', timeout: EVENTUALLY });
  assert.match(await page.textContent('[data-testid="editor"] .cm-content'), /research-brief/);
  assert.deepEqual(errors, []);
});
