// Access in Chromium against a pipescope started with a token: a page without a session sends the
// browser to the login page, signing in brings it back, hydrated and live; a link from another
// site reaches the page with the SameSite=Strict cookie; and no page of the app breaks its
// Content-Security-Policy (each page's own scripts, the WASM and its chunks, the editor's styles).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { EVENTUALLY, newContext, screenshot, startPipescope, startRun, usePipescope, watch } from '../support.mjs';

const TOKEN = `e2e-${randomUUID()}`;

const shared = usePipescope(['--token', TOKEN]);

const PIPELINE = `
name: e2e-access
defaults: { provider: simulated, max_tokens: 20 }
steps:
  - name: outline
    prompt: "Outline access control."
`;

async function hydrated(page) {
  await page.waitForSelector('[data-hydrated="true"]', { timeout: EVENTUALLY });
}

/**
 * A context signed in through the login form, as a user would be, with the dashboard it lands
 * on hydrated (a page left while it loads would count its cancelled requests as failures).
 */
async function signedIn() {
  const context = await newContext(shared.browser, { viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const problems = await watch(page);
  await page.goto(`${shared.server.url}/login`);
  await page.fill('#token', TOKEN);
  await Promise.all([page.waitForURL(`${shared.server.url}/`), page.click('button[type="submit"]')]);
  await hydrated(page);
  return { context, page, problems };
}

test('the login page stands before the dashboard; signing in opens it, hydrated and live', async () => {
  const context = await newContext(shared.browser, { viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const problems = await watch(page);

  // A page without a session: the login page, remembering where the user was going.
  await page.goto(`${shared.server.url}/logs?level=warn`);
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.locator('[data-testid="login"]').waitFor();
  await screenshot(page, 'login');
  // The API says 401 rather than redirecting.
  assert.equal(await page.evaluate(() => fetch('/api/pipelines').then((r) => r.status)), 401);

  // A wrong token: the form again, saying so.
  await page.fill('#token', 'not-the-token-at-all');
  await page.click('button[type="submit"]');
  await page.locator('.login-error').waitFor();
  assert.match(await page.textContent('.login-error'), /not valid/);

  // The right one: back where the user was going, and every page opens.
  await page.fill('#token', TOKEN);
  await Promise.all([page.waitForURL(`${shared.server.url}/logs?level=warn`), page.click('button[type="submit"]')]);
  await hydrated(page);
  const [cookie] = (await context.cookies()).filter((c) => c.name === 'pipescope_session');
  assert.ok(cookie, 'a session cookie');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.ok(!cookie.value.includes(TOKEN), 'the cookie does not hold the token');

  // The two refusals above, as the browser reported them, and nothing else.
  const unauthorized = 'console: Failed to load resource: the server responded with a status of 401 (Unauthorized)';
  assert.deepEqual(problems, [unauthorized, unauthorized]);

  // The dashboard hydrates and goes live: its event stream is open, and a run started now shows.
  // (In a tab of its own: leaving the log viewer would cancel its event stream.)
  const dashboard = await context.newPage();
  const dashboardProblems = await watch(dashboard);
  await dashboard.goto(shared.server.url);
  await hydrated(dashboard);
  await dashboard.waitForFunction(() => document.querySelector('[data-testid="connection"]')?.dataset.state === 'live', null, { timeout: EVENTUALLY });
  const id = await startRun(shared.server.url, { yaml: PIPELINE }, TOKEN);
  await dashboard.locator(`[data-testid="run"][data-run-id="${id}"]`).waitFor({ timeout: EVENTUALLY });
  // No script can read the cookie; the page's own calls carry it.
  assert.equal(await dashboard.evaluate(() => document.cookie.includes('pipescope_session')), false);
  assert.equal(await dashboard.evaluate(() => fetch('/api/pipelines').then((r) => r.status)), 200);
  await screenshot(dashboard, 'signed-in-dashboard');
  assert.deepEqual(dashboardProblems, []);
});

test('a link from another site opens the page with the session (SameSite=Strict)', async () => {
  const { context, problems: atLogin } = await signedIn();
  const page = await context.newPage();
  const problems = await watch(page);
  // A page on another site (localhost is another site than 127.0.0.1) linking to pipescope.
  const other = createServer((_, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<!DOCTYPE html><a id="go" href="${shared.server.url}/logs">pipescope logs</a>`);
  });
  await new Promise((resolve) => other.listen(0, '127.0.0.1', resolve));
  try {
    await page.goto(`http://localhost:${other.address().port}/`);
    await Promise.all([page.waitForURL(`${shared.server.url}/logs`), page.click('#go')]);
    await hydrated(page);
    assert.equal(new URL(page.url()).pathname, '/logs', 'not sent to the login page');
  } finally {
    other.close();
  }
  assert.deepEqual(problems, []);
  assert.deepEqual(atLogin, []);
});

test('a dashboard whose session is gone goes to the login page instead of staying offline', async () => {
  const { context, page, problems } = await signedIn();
  await page.waitForSelector('[data-testid="connection"][data-state="live"]', { timeout: EVENTUALLY });
  // The session ends (as when it expires) and the stream drops (the server restarts): the
  // browser's reconnect is refused with a 401, which an EventSource cannot tell from a server
  // that is down.
  await context.clearCookies();
  await shared.server.stop();
  shared.server = await startPipescope(['--token', TOKEN], shared.server);
  try {
    await page.waitForURL(/\/login\?next=(%2F|\/)$/, { timeout: EVENTUALLY });
  } catch (e) {
    const state = await page.getAttribute('[data-testid="connection"]', 'data-state').catch(() => '?');
    throw new Error(`${e.message}\nurl ${page.url()} state ${state}\n${problems.join('\n')}`);
  }
  await page.locator('[data-testid="login"]').waitFor();
  // What the browser reported on the way: the stream cut and refused while the server was down,
  // then refused (401), and the probe's 401; nothing else (no page error, no CSP violation).
  for (const problem of problems) {
    assert.match(problem, /401 \(Unauthorized\)|ERR_CONNECTION_REFUSED|request failed: .*\/(api\/(events|bus\/stats)|pkg\/)/, problem);
  }
  await context.close();
});

test('no page breaks the Content-Security-Policy', async () => {
  const { context, page: dashboard, problems: atLogin } = await signedIn();
  const id = await startRun(shared.server.url, { yaml: PIPELINE }, TOKEN);
  // Each page in a tab of its own (its own response, its own policy; leaving a page would cancel
  // its event stream), shown as a user sees it.
  const pages = [
    ['/', '[data-testid="connection"][data-state="live"]'],
    [`/runs/${id}`, '[data-testid="connection"]'],
    [`/runs/${id}/steps/outline`, '[data-testid="connection"]'],
    ['/logs', '[data-testid="logs-list"]'],
    ['/pipelines', '[data-testid="pipeline-row"]'],
    ['/pipelines/new', '[data-testid="editor"][data-ready="true"] .cm-content'],
    ['/pipelines/e2e-access/edit', '[data-testid="editor"][data-ready="true"] .cm-content'],
    ['/providers', '[data-testid="provider-row"]'],
    ['/login', '[data-testid="login"]'],
  ];
  for (const [path, ready] of pages) {
    const page = await context.newPage();
    const problems = await watch(page);
    await page.goto(`${shared.server.url}${path}`);
    await page.locator(ready).first().waitFor({ timeout: EVENTUALLY });
    if (path === '/login') {
      // Signed in: what the session allows and a way out; no script at all.
      assert.match(await page.textContent('[data-testid="login"]'), /full access/);
      assert.equal(await page.locator('script').count(), 0);
    } else {
      await hydrated(page);
      // The header names a nonce, and the page's scripts carry it.
      const nonce = await page.evaluate(() => document.querySelector('script[nonce]')?.nonce);
      assert.ok(nonce, `${path}: the page's scripts carry a nonce`);
    }
    if (path.startsWith('/pipelines/')) {
      // The editor's styles are in a <style> with the nonce: the editor is styled, not bare.
      const display = await page.evaluate(() => getComputedStyle(document.querySelector('.cm-editor')).display);
      assert.equal(display, 'flex', path);
    }
    // Any violation is a console error (`watch`); none, and no other problem either.
    assert.deepEqual(problems, [], path);
  }
  assert.deepEqual(atLogin, []);
  await dashboard.close();
});
