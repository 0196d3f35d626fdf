// The console when its session runs out (run by console_e2e_test.cpp against a gateway whose idle
// timeout is GW_SESSION_IDLE_MS): the next action is refused by the gateway and the page says so and
// offers the sign-in again, without showing data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.GW_CONSOLE_URL;
const TOKEN = process.env.GW_TOKEN;
const IDLE_MS = Number(process.env.GW_SESSION_IDLE_MS);
const ARTIFACTS = process.env.GW_ARTIFACTS;

test('an idle session ends: the next action leads back to the sign-in', async () => {
  assert.ok(BASE && TOKEN && IDLE_MS > 0 && ARTIFACTS, 'GW_CONSOLE_URL, GW_TOKEN, GW_SESSION_IDLE_MS and GW_ARTIFACTS are set');
  const browser = await chromium.launch({ executablePath: process.env.GW_CHROMIUM || '/usr/bin/chromium' });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    await page.goto(`${BASE}/console/`);
    await page.getByLabel('Access token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Signed in as').waitFor();
    await page.waitForTimeout(IDLE_MS + 500);
    await page.getByRole('link', { name: 'Break-glass' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.match(await page.locator('main').innerText(), /Your session has ended/);
    assert.equal(await page.locator('#site-nav').isVisible(), false, 'no navigation without a session');
    await page.screenshot({ path: path.join(ARTIFACTS, '13-session-ended.png'), fullPage: true });
    // Signing in again works, under a new session.
    await page.getByLabel('Access token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Signed in as').waitFor();
    await context.close();
  } finally {
    await browser.close();
  }
});
