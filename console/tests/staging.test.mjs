// Staging review against payments that came in as signed Stripe webhooks: one key approves a payment from an
// address two donors share with the donor chosen, one key rejects a payment naming nobody. Both decisions are the
// service's, read back through the API.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, checkA11y, env, launch, screenshot, settle, signIn, waitForFocusOnLabel } from './support.mjs';

const STAGED = JSON.parse(env('ALMONER_STAGED'));

async function decided(accessToken, status) {
  const res = await api('GET', `/api/fundraising/v1/staging?status=${status}&limit=100`, accessToken);
  assert.equal(res.status, 200);
  return (await res.json()).data;
}

test('a staged payment is approved for the chosen donor with "a", another rejected with "r"', async () => {
  const browser = await launch();
  try {
    const { page, context, accessToken } = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Staging' }).click();
    await settle(page, 'Staging review');

    // The payment from the shared address, with both donors offered and the first chosen.
    const { amount, payer_email: payerEmail, candidates } = STAGED.approve;
    const entry = page.getByTestId('staged-entry').filter({ hasText: amount });
    await entry.getByRole('heading', { name: new RegExp(`^${amount.replace('.', '\\.')} via Stripe`) }).waitFor();
    assert.match(await entry.innerText(), /Several donors share the payer’s email/);
    assert.match(await entry.innerText(), new RegExp(payerEmail.replace(/[.]/g, '\\.')));
    for (const c of candidates) await entry.getByLabel(c.name, { exact: false }).first().waitFor();
    assert.ok(await entry.getByLabel(candidates[0].name, { exact: false }).first().isChecked(), 'the first candidate is chosen');
    await screenshot(page, 'staging-pending');
    await checkA11y(page, 'staging review');

    // From the keyboard: select the entry, Tab into its donors, arrow to the second, "a".
    const chosen = candidates[1];
    await entry.getByRole('heading').click();
    await page.keyboard.press('Tab');
    await page.keyboard.press('ArrowDown');
    assert.ok(await entry.getByLabel(chosen.name, { exact: false }).first().isChecked(), `${chosen.name} is chosen`);
    await page.keyboard.press('a');
    await page.getByRole('status').getByText(`Payment of ${amount} approved.`).waitFor({ timeout: 15_000 });
    await entry.waitFor({ state: 'detached' });

    const approved = (await decided(accessToken, 'approved')).find((e) => e.payer.email === payerEmail);
    assert.ok(approved, 'the service lists the payment as approved');
    assert.equal(approved.donor_id, chosen.id, `the gift went to ${chosen.name}`);
    assert.ok(approved.gift_id, 'approving recorded a gift');

    // The other payment names nobody: "r" asks why, Enter rejects it.
    const other = page.getByTestId('staged-entry').filter({ hasText: STAGED.reject.amount });
    assert.match(await other.innerText(), /The payment has no email address/);
    await other.getByRole('heading').click();
    await page.keyboard.press('r');
    await waitForFocusOnLabel(page, 'Why reject it?');
    await page.keyboard.type('A test payment from the Stripe dashboard');
    await page.keyboard.press('Enter');
    await page.getByRole('status').getByText(`Payment of ${STAGED.reject.amount} rejected.`).waitFor({ timeout: 15_000 });
    await other.waitFor({ state: 'detached' });
    const rejected = (await decided(accessToken, 'rejected')).find((e) => e.rejection_reason === 'A test payment from the Stripe dashboard');
    assert.ok(rejected, 'the service lists the payment as rejected, with the reason');
    assert.equal(rejected.gift_id ?? null, null, 'a rejected payment is no gift');

    // The approved list links to the donor, whose page shows the gift.
    await page.getByLabel('Show').selectOption('approved');
    const done = page.getByTestId('staged-entry').filter({ hasText: amount });
    await done.getByRole('link', { name: 'the donor' }).click();
    await page.waitForURL(new RegExp(`/donors/${chosen.id}$`));
    await settle(page, chosen.name);
    await page.getByTestId('donor-gifts').getByText(amount).waitFor();
    await screenshot(page, 'staging-approved-donor');
    await context.close();
  } finally {
    await browser.close();
  }
});
