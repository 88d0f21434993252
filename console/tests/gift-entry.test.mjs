// Gift entry: a gift for a new donor reaches the donor's page; a new donor who looks like an existing one
// brings up the duplicate prompt.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkA11y, CONSOLE_URL, enterGiftForNewDonor, env, existingDonor, launch, screenshot, settle, signIn, unique, waitForFocusOnLabel, waitForFocusOnTestId } from './support.mjs';

test('a gift for a new donor, then the duplicate prompt for an existing one', async () => {
  const browser = await launch();
  try {
    const { page, context } = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    const last = unique('Giftentry');
    const email = `${last.toLowerCase()}@example.org`;
    const text = await enterGiftForNewDonor(page, { first: 'Ada', last, email, postcode: 'SW1A 1AA', amount: '12.34' });
    assert.match(text, /£12\.34/);
    assert.match(text, new RegExp(last));
    await screenshot(page, 'gift-entry-confirmation');
    await checkA11y(page, 'gift entry after a gift');

    // The form is ready for the next gift, focus back on its first field.
    await waitForFocusOnTestId(page, 'donor-search');
    assert.equal(await page.getByLabel('Amount').inputValue(), '');

    // The confirmation links to the donor's page, which lists the gift.
    await page.getByTestId('gift-confirmation').getByRole('link').click();
    await page.waitForURL(/\/donors\/[0-9a-f-]{36}$/);
    await settle(page, `Ada ${last}`);
    const gifts = page.getByTestId('donor-gifts');
    await gifts.getByText('£12.34').waitFor();
    await screenshot(page, 'donor-page-with-gift');
    await checkA11y(page, 'donor page');

    // The donor search is a combobox driven from the keyboard: type, arrow down, Enter; focus moves on to the amount.
    const existing = existingDonor();
    await page.goto(`${CONSOLE_URL}/gifts/new`);
    const search = page.getByTestId('donor-search');
    await search.fill(existing.last_name);
    await page.getByRole('listbox', { name: 'Donors found' }).getByRole('option').first().waitFor();
    assert.equal(await search.getAttribute('aria-expanded'), 'true');
    await search.press('ArrowDown');
    await search.press('ArrowUp');
    await search.press('Enter');
    await page.getByTestId('selected-donor').getByText(existing.last_name, { exact: false }).waitFor();
    await waitForFocusOnLabel(page, 'Amount');
    await checkA11y(page, 'gift entry with a donor chosen');

    // Someone entering the existing donor again is shown them first.
    await page.goto(`${CONSOLE_URL}/gifts/new`);
    await page.getByRole('button', { name: 'New donor' }).click();
    await page.getByLabel('First name').fill(existing.first_name);
    await page.getByLabel('Last name (required)').fill(existing.last_name);
    if (existing.email) await page.getByLabel('Email', { exact: true }).fill(existing.email);
    if (existing.postcode) await page.getByLabel('Postcode').fill(existing.postcode);
    await page.getByLabel('Amount').fill('5');
    await page.getByRole('button', { name: 'Save gift' }).click();
    const prompt = page.getByTestId('duplicate-prompt');
    await prompt.waitFor();
    await prompt.getByRole('heading', { name: 'Possible existing donors' }).waitFor();
    await prompt.getByText(existing.last_name, { exact: false }).first().waitFor();
    assert.ok((await prompt.getByRole('button', { name: /Use this donor/ }).count()) >= 1);
    await prompt.getByRole('button', { name: 'Create a new donor anyway' }).waitFor();
    assert.match(await prompt.innerText(), /Matched by: /);
    await screenshot(page, 'gift-entry-duplicate-prompt');
    await checkA11y(page, 'duplicate prompt');
    await context.close();
  } finally {
    await browser.close();
  }
});
