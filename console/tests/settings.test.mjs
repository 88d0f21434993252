// Settings: the tenant's time zone is chosen from the browser's IANA zones, saved to identity, and the console's
// times follow it. The zone is put back to Europe/London afterwards, for the other tests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, checkA11y, CONSOLE_URL, env, launch, screenshot, settle, signIn } from './support.mjs';

async function chooseZone(page, zone) {
  const select = page.getByLabel('Time zone');
  await select.selectOption(zone);
  await page.getByRole('button', { name: 'Save organisation settings' }).click();
  await page.getByText('Organisation settings saved.').waitFor();
}

test("the tenant's time zone is saved, and times are shown in it", async () => {
  const browser = await launch();
  try {
    const { page, context, accessToken } = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    const before = await (await api('GET', '/api/identity/v1/tenant', accessToken)).json();
    const original = before.time_zone;
    assert.ok(original, `GET /tenant has a time_zone: ${JSON.stringify(before)}`);

    await page.goto(`${CONSOLE_URL}/settings`);
    await settle(page, 'Settings');
    const select = page.getByLabel('Time zone');
    assert.equal(await select.inputValue(), original);
    assert.ok((await select.locator('option').count()) > 100, 'every IANA zone the browser knows is offered');

    try {
      await chooseZone(page, 'Australia/Sydney');
      const after = await (await api('GET', '/api/identity/v1/tenant', accessToken)).json();
      assert.equal(after.time_zone, 'Australia/Sydney');
      // The last-saved time is shown in Sydney's zone (AEDT, UTC+11, in December; AEST, UTC+10, in June).
      const hint = page.getByText(/The console shows times in this zone/);
      assert.match(await hint.innerText(), /GMT\+1[01]|AE[DS]T/);
      await screenshot(page, 'settings-time-zone');
      await checkA11y(page, 'settings with a time zone');

      // A reload reads it back.
      await page.reload();
      await settle(page, 'Settings');
      assert.equal(await page.getByLabel('Time zone').inputValue(), 'Australia/Sydney');
    } finally {
      if ((await page.getByLabel('Time zone').inputValue()) !== original) await chooseZone(page, original);
      const restored = await (await api('GET', '/api/identity/v1/tenant', accessToken)).json();
      assert.equal(restored.time_zone, original);
    }
    await context.close();
  } finally {
    await browser.close();
  }
});
