// A Gift Aid claim prepared in the console: gathered up to a day, its included and left-out gifts reviewed, a
// gift taken out, the HMRC schedule exported and downloaded (the very file whose SHA-256 the claim records), the
// claim marked submitted and HMRC's answer recorded.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { api, checkA11y, env, launch, screenshot, settle, signIn } from './support.mjs';

const CLAIM = JSON.parse(env('ALMONER_CLAIM'));

test('a claim is gathered, a gift taken out, its schedule downloaded, and it is submitted and paid', async () => {
  const browser = await launch();
  try {
    const { page, context, accessToken } = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: /Gift Aid/ }).click();
    await settle(page, 'Gift Aid claims');

    await page.getByLabel('Gifts dated up to').fill(CLAIM.up_to);
    await page.getByRole('button', { name: 'Gather claim' }).click();
    await page.waitForURL(/\/claims\/[0-9a-f-]{36}$/, { timeout: 15_000 });
    const claimId = new URL(page.url()).pathname.split('/').pop();
    await settle(page, /^Claim to /);

    // Both declared gifts are in (£75.00, so £18.75 of Gift Aid); the undeclared one is left out, with its reason.
    const totals = page.getByRole('region', { name: "The claim's totals" });
    await totals.getByText('on £75.00 from 2 gifts').waitFor();
    await totals.getByText('£18.75').waitFor();
    const included = page.getByRole('table', { name: 'Gifts in the claim' });
    for (const g of CLAIM.gifts) await included.getByRole('row').filter({ hasText: g.amount }).waitFor();
    const leftOut = page.getByRole('table', { name: 'Gifts left out, and why' }).getByRole('row').filter({ hasText: CLAIM.excluded.amount });
    await leftOut.waitFor();
    assert.match(await leftOut.innerText(), /declaration/i, 'the reason names the missing declaration');
    await screenshot(page, 'claim-draft');
    await checkA11y(page, 'draft claim');

    // Take the £25.00 gift out: the claim is £50.00 now.
    const [, second] = CLAIM.gifts;
    await included.getByRole('row').filter({ hasText: second.amount }).getByRole('button', { name: /Take out/ }).click();
    await page.getByRole('status').getByText('Gift taken out of the claim.').waitFor();
    await totals.getByText('on £50.00 from 1 gift', { exact: true }).waitFor();
    await totals.getByText('£12.50').waitFor();

    // Export the HMRC schedule and download it: the bytes are the file the claim records.
    await page.getByLabel('Format').selectOption('ods');
    await page.getByRole('button', { name: 'Export schedule' }).click();
    await page.getByRole('status').getByText('Schedule exported.').waitFor({ timeout: 30_000 });
    const downloadButton = page.getByRole('button', { name: /^Download ODS part 1/ });
    await downloadButton.waitFor();
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), downloadButton.click()]);
    assert.equal(download.suggestedFilename(), `gift-aid-claim-${CLAIM.up_to}.ods`);
    const bytes = await readFile(await download.path());
    assert.equal(bytes.subarray(30, 38).toString('latin1'), 'mimetype', 'an OpenDocument file');
    const files = await (await api('GET', `/api/fundraising/v1/gift-aid/claims/${claimId}/files`, accessToken)).json();
    const ods = files.data.find((f) => f.format === 'ods');
    assert.equal(createHash('sha256').update(bytes).digest('hex'), ods.sha256, 'the download is the recorded file');
    assert.equal(bytes.length, ods.size_bytes);
    await page.getByRole('status').getByText(`Downloaded gift-aid-claim-${CLAIM.up_to}.ods.`).waitFor();

    // Submitted with HMRC's reference, then paid in full.
    await page.getByLabel('HMRC reference (if known)').fill('CONSOLE-E2E-1');
    await page.getByRole('button', { name: 'Mark submitted' }).click();
    await page.getByRole('status').getByText('Claim marked submitted.').waitFor();
    await totals.getByText('Submitted', { exact: true }).waitFor();
    assert.match(await totals.innerText(), /HMRC ref CONSOLE-E2E-1/);
    await screenshot(page, 'claim-submitted');
    await checkA11y(page, 'submitted claim');
    await page.getByRole('button', { name: 'Record answer' }).click();
    await page.getByRole('status').getByText('Claim recorded as paid.').waitFor();
    await totals.getByText('Paid', { exact: true }).waitFor();

    const claim = await (await api('GET', `/api/fundraising/v1/gift-aid/claims/${claimId}`, accessToken)).json();
    assert.equal(claim.status, 'paid');
    assert.equal(claim.gifts, 1);
    assert.equal(claim.amount_minor, 5000);
    assert.equal(claim.hmrc_reference, 'CONSOLE-E2E-1');
    await context.close();
  } finally {
    await browser.close();
  }
});
