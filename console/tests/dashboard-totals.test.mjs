// The dashboard's fiscal-year total rises after a gift is entered (rollup updates asynchronously).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONSOLE_URL, enterGiftForNewDonor, env, launch, screenshot, settle, signIn, unique } from './support.mjs';

async function fyTotal(page) {
  await settle(page, 'Dashboard');
  const el = page.getByTestId('fy-total');
  await el.waitFor();
  return { minor: Number(await el.getAttribute('data-value')), text: await el.innerText() };
}

test('the fiscal year total rises after a gift', async () => {
  const browser = await launch();
  try {
    const { page, context } = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    await page.goto(`${CONSOLE_URL}/`);
    const before = await fyTotal(page);
    await screenshot(page, 'dashboard-before-gift');

    const last = unique('Dashboard');
    await enterGiftForNewDonor(page, { first: 'Dot', last, email: `${last.toLowerCase()}@example.org`, amount: '7.00' });

    await page.goto(`${CONSOLE_URL}/`);
    let after = await fyTotal(page);
    const end = Date.now() + 10_000;
    while (after.minor < before.minor + 700 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 1000));
      await page.reload();
      after = await fyTotal(page);
    }
    await screenshot(page, 'dashboard-after-gift');
    assert.ok(after.minor >= before.minor + 700, `fy-total went from ${before.text} to ${after.text}, expected at least £7.00 more`);
    assert.notEqual(after.text, before.text);
    await context.close();
  } finally {
    await browser.close();
  }
});
