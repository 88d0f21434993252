// Signing in through the magic link as an admin; the link works once; the refresh cookie stays out of page
// scripts' reach; a reload keeps the session; signing out ends it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkA11y, CONSOLE_URL, env, launch, screenshot, settle, signIn, waitForCharts } from './support.mjs';

test('admin signs in by magic link, reloads, and signs out', async () => {
  const browser = await launch();
  try {
    const { page, context, link, grant } = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    assert.equal(grant.token_type, 'Bearer');
    assert.equal(grant.staff.role, 'admin');

    // The dashboard shows, and the token is gone from the address bar.
    assert.equal(new URL(page.url()).pathname, '/');
    assert.ok(!page.url().includes('token='), `the token stayed in the URL: ${page.url()}`);
    await settle(page, 'Dashboard');
    await page.getByTestId('fy-total').waitFor();
    await waitForCharts(page);
    // The page's title is set by an effect after the render.
    await page.waitForFunction(() => document.title === 'Dashboard · Almoner', undefined, { timeout: 5_000 });
    await screenshot(page, 'sign-in-dashboard');
    await checkA11y(page, 'dashboard');

    // The refresh cookie is HttpOnly: the browser holds it, page scripts never see it.
    const cookies = await context.cookies();
    const httpOnly = cookies.filter((c) => c.httpOnly);
    assert.ok(httpOnly.length > 0, `no HttpOnly cookie was set: ${JSON.stringify(cookies.map((c) => c.name))}`);
    const visible = await page.evaluate(() => document.cookie);
    for (const c of httpOnly) {
      assert.ok(!visible.includes(c.name), `document.cookie shows ${c.name}`);
      assert.ok(!visible.includes(c.value), 'document.cookie shows the refresh token');
    }
    assert.ok(httpOnly.every((c) => c.path.startsWith('/api/identity/v1/session')), `cookie paths: ${httpOnly.map((c) => c.path)}`);
    // Nothing of the session in web storage either.
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    assert.ok(!stored.includes(grant.access_token), 'the access token was written to web storage');

    // The link works once.
    const again = await context.newPage();
    await again.goto(link);
    await again.getByText('This sign-in link has expired or was already used').waitFor();
    assert.ok(!again.url().includes('token='), 'the used token stayed in the URL');
    await again.getByRole('link', { name: /new sign-in link/ }).waitFor();
    await screenshot(again, 'sign-in-link-used-twice');
    await checkA11y(again, 'used sign-in link');
    await again.close();

    // A reload restores the session from the refresh cookie.
    await page.reload();
    await settle(page, 'Dashboard');
    assert.equal(new URL(page.url()).pathname, '/');
    await page.locator('header').getByText(grant.staff.name).waitFor();

    // Signing out goes to /sign-in, and stays signed out.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${CONSOLE_URL}/sign-in`);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await screenshot(page, 'signed-out');
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await page.goto(`${CONSOLE_URL}/`);
    await page.waitForURL(`${CONSOLE_URL}/sign-in`);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await checkA11y(page, 'sign-in page');
    await context.close();
  } finally {
    await browser.close();
  }
});
