// Another tenant's admin cannot find tenant A's donor.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, checkA11y, CONSOLE_URL, env, existingDonor, launch, screenshot, settle, signIn } from './support.mjs';

test("another tenant's admin does not find the donor", async () => {
  const browser = await launch();
  try {
    const { page, context, accessToken, grant } = await signIn(browser, env('ALMONER_OTHER_ADMIN_EMAIL'));
    const donor = existingDonor();
    await page.getByTestId('tenant-name').getByText(grant.staff.tenant_name).waitFor();

    await page.goto(`${CONSOLE_URL}/donors`);
    await settle(page, 'Donors');
    await page.getByLabel(/Search donors/).fill(donor.last_name);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByRole('table').getByText('No donors found.').waitFor();
    assert.equal(await page.getByRole('table').locator('tbody').getByText(donor.last_name).count(), 0);
    await screenshot(page, 'other-tenant-donor-search');
    await checkA11y(page, 'donor search, other tenant');

    // The gift entry search finds nothing either.
    await page.goto(`${CONSOLE_URL}/gifts/new`);
    await page.getByTestId('donor-search').fill(donor.last_name);
    await page.getByText('No donor found.').first().waitFor();
    assert.equal(await page.getByRole('listbox', { name: 'Donors found' }).count(), 0);

    // And the API itself, with this admin's token.
    const res = await api('GET', `/api/fundraising/v1/donors?q=${encodeURIComponent(donor.last_name)}`, accessToken);
    assert.equal(res.status, 200);
    const page1 = await res.json();
    assert.equal(page1.data.filter((d) => d.last_name === donor.last_name && (d.email ?? null) === (donor.email ?? null)).length, 0);
    await context.close();
  } finally {
    await browser.close();
  }
});
