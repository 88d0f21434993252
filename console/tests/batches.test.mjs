// Batch gift entry: a batch of 2 gifts totalling £30 refuses processing after one entry, and is processed into
// gifts once both are entered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, checkA11y, CONSOLE_URL, env, existingDonor, launch, screenshot, settle, signIn, unique, waitForFocusOnLabel, waitForFocusOnTestId } from './support.mjs';

/** Keys one gift on the batch page's entry row from the keyboard: donor search, arrow, Enter, amount, Enter. */
async function enterGift(page, donorLastName, amount) {
  const search = page.getByTestId('donor-search');
  await search.fill(donorLastName);
  await page.getByRole('listbox', { name: 'Donors found' }).getByRole('option').first().waitFor();
  await search.press('ArrowDown');
  await search.press('Enter');
  await page.getByTestId('selected-donor').getByText(donorLastName, { exact: false }).waitFor();
  const amountField = page.getByLabel('Amount');
  await waitForFocusOnLabel(page, 'Amount', 'the amount');
  await amountField.fill(amount);
  await amountField.press('Enter');
  // Ready for the next gift: the donor search is back, with focus.
  await search.waitFor();
  await waitForFocusOnTestId(page, 'donor-search');
}

test('a batch of 2 gifts totalling £30: refused after one, processed after both', async () => {
  const browser = await launch();
  try {
    const { page, context, accessToken } = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    const donor = existingDonor();
    const name = unique('Cheques ');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Batches' }).click();
    await settle(page, 'Gift batches');
    await page.getByLabel('Batch name').fill(name);
    await page.getByLabel('Number of gifts').fill('2');
    await page.getByLabel('Expected total').fill('30.00');
    await page.getByRole('button', { name: 'Create batch' }).click();
    await page.waitForURL(/\/batches\/[0-9a-f-]{36}$/);
    const batchId = new URL(page.url()).pathname.split('/').pop();
    await settle(page, name);
    const status = page.getByTestId('batch-status');
    assert.equal(await status.getAttribute('role'), 'status');
    await status.getByText('Entered 0 of 2 gifts, £0.00 of £30.00').waitFor();
    const processButton = page.getByRole('button', { name: 'Process batch' });
    assert.ok(await processButton.isDisabled(), 'Process is disabled with no entries');

    // One gift of £10: the batch does not match yet.
    await enterGift(page, donor.last_name, '10');
    await status.getByText('Entered 1 of 2 gifts, £10.00 of £30.00').waitFor();
    assert.match(await status.innerText(), /1 more gift to enter; £20\.00 still to enter/);
    assert.ok(await processButton.isDisabled(), 'Process is disabled while count and total differ');
    const entries = page.getByTestId('batch-entries');
    await entries.getByRole('cell', { name: '£10.00', exact: true }).waitFor();
    await screenshot(page, 'batch-one-entry');
    await checkA11y(page, 'batch with one entry');

    // The service refuses it too.
    const refused = await api('POST', `/api/fundraising/v1/gift-batches/${batchId}/process`, accessToken);
    assert.equal(refused.status, 409, `processing a mismatched batch answered ${refused.status}`);
    const problem = await refused.json();
    assert.equal(problem.code, 'batch_totals_mismatch');

    // The second, £20: count and total match, and it is processed.
    await enterGift(page, donor.last_name, '20.00');
    await status.getByText('Entered 2 of 2 gifts, £30.00 of £30.00').waitFor();
    await processButton.waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('button')].some((b) => b.textContent?.trim() === 'Process batch' && !b.disabled));
    await processButton.click();
    await status.getByText(/Processed: 2 gifts recorded/).waitFor({ timeout: 15_000 });
    await page.getByText('Processed', { exact: true }).first().waitFor();
    assert.equal(await page.getByRole('button', { name: 'Process batch' }).count(), 0);
    assert.equal(await page.getByTestId('batch-gift-link').count(), 2);
    await screenshot(page, 'batch-processed');
    await checkA11y(page, 'processed batch');

    // The gifts exist, carrying the batch's id.
    const gifts = await api('GET', `/api/fundraising/v1/gifts?batch_id=${batchId}`, accessToken);
    assert.equal(gifts.status, 200);
    const amounts = (await gifts.json()).data.map((g) => g.amount_minor).sort((a, b) => a - b);
    assert.deepEqual(amounts, [1000, 2000]);

    // A gift's link leads to its donor's page, which lists it.
    await page.getByTestId('batch-gift-link').first().click();
    await page.waitForURL(/\/donors\/[0-9a-f-]{36}#gift-[0-9a-f-]{36}$/);
    await settle(page, new RegExp(donor.last_name));
    await page.getByTestId('donor-gifts').getByText('£10.00').first().waitFor();

    // The list shows the batch processed.
    await page.goto(`${CONSOLE_URL}/batches`);
    await settle(page, 'Gift batches');
    const row = page.getByTestId('batch-list').getByRole('row').filter({ hasText: name });
    await row.getByText('Processed').waitFor();
    await row.getByText('2 of 2').waitFor();
    await screenshot(page, 'batch-list');
    await checkA11y(page, 'batch list');
    await context.close();
  } finally {
    await browser.close();
  }
});
