// The first page end to end: server-rendered, hydrated, interactive, and the server function
// round trip showing live health from the server's own PostgreSQL.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENTUALLY, launchBrowser, openPage, screenshot, startPipescope } from '../support.mjs';

let server;
let browser;

before(async () => {
  server = await startPipescope();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the dashboard hydrates and shows live server health', async () => {
  const { page, problems } = await openPage(browser, server.url);

  // Server-rendered values, present before and after hydration.
  assert.equal(await page.textContent('[data-testid="active-pipelines"] .chip-value'), '0');
  assert.match(await page.textContent('[data-testid="db-status"]'), /^built-in · [\d.]+ ms$/);
  assert.equal(await page.textContent('[data-testid="tokens-total"] .chip-value'), '0');
  assert.ok(await page.isVisible('[data-testid="no-runs"]'));

  // The uptime ticks in the browser once hydrated.
  const before = await page.textContent('[data-testid="uptime"]');
  await page.waitForFunction(
    (initial) => document.querySelector('[data-testid="uptime"]').textContent !== initial,
    before,
    { timeout: EVENTUALLY },
  );

  await screenshot(page, 'dashboard-desktop');
  assert.deepEqual(problems, []);
});

test('the health panel opens on click and re-checks through the server function', async () => {
  const { page, problems } = await openPage(browser, server.url);
  const toggle = page.locator('[data-testid="health-toggle"]');

  assert.equal(await page.locator('[data-testid="health-panel"]').count(), 0);
  await toggle.click();
  await page.waitForSelector('[data-testid="health-panel"]');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  assert.equal(await page.textContent('[data-testid="health-status"]'), 'ok');
  assert.match(await page.textContent('[data-testid="version"]'), /^\d+\.\d+\.\d+$/);

  const checkedAt = await page.textContent('[data-testid="checked-at"]');
  const calls = [];
  page.on('request', (req) => {
    if (req.url().includes('/api/')) calls.push(req.url());
  });
  await page.click('[data-testid="health-recheck"]');
  await page.waitForFunction(
    (initial) => document.querySelector('[data-testid="checked-at"]')?.textContent !== initial,
    checkedAt,
    { timeout: EVENTUALLY },
  );
  assert.ok(calls.some((u) => u.includes('get_health')), `a server function call was made: ${calls}`);
  // The panel stays open across the refresh.
  assert.ok(await page.isVisible('[data-testid="health-panel"]'));

  await screenshot(page, 'dashboard-health-panel');
  await toggle.click();
  assert.equal(await page.locator('[data-testid="health-panel"]').count(), 0);
  assert.deepEqual(problems, []);
});

test('a narrow screen keeps the header usable', async () => {
  const { page, problems } = await openPage(browser, server.url, { width: 390, height: 844 });
  assert.ok(await page.isVisible('[data-testid="health-toggle"]'));
  assert.ok(await page.isVisible('[data-testid="nav-pipelines"]'), 'the pipelines are one tap away');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, 'no horizontal scrolling');
  await screenshot(page, 'dashboard-mobile');
  assert.deepEqual(problems, []);
});
