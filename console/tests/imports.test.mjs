// An import through the page: a CSV uploaded through storage's presigned link, the dry run's outcomes filtered by
// outcome, then the commit with its progress bar reaching 100%.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkA11y, env, launch, screenshot, settle, signIn, unique } from './support.mjs';

test('an import: upload, dry run with outcomes, commit to 100%', async () => {
  const browser = await launch();
  try {
    const { page } = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    const tag = unique('imp').replace(/[^a-z0-9]/gi, '').toLowerCase();
    const rows = [];
    for (let i = 1; i <= 12; i++) {
      rows.push(`${tag}-${i},Ada${i},Import${tag},ada${i}.${tag}@example.org,${10 + i}.00,2025-05-${String(i).padStart(2, '0')},${tag}-g${i}`);
    }
    // The last row repeats the first gift's reference: the dry run calls it a duplicate.
    rows.push(`${tag}-1,Ada1,Import${tag},ada1.${tag}@example.org,11.00,2025-05-01,${tag}-g1`);
    const csv = ['Donor ID,First Name,Last Name,Email,Amount,Gift Date,Gift Reference', ...rows].join('\n') + '\n';

    await page.goto(new URL('/imports', page.url()).toString());
    await settle(page, 'Imports');
    await page.setInputFiles('#import-file', { name: `${tag}.csv`, mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByLabel('Source system').fill(`src_${tag}`);
    await page.getByRole('button', { name: 'Upload and check (dry run)' }).click();
    await page.waitForURL(/\/imports\/[0-9a-f-]{36}$/, { timeout: 30_000 });
    await page.getByTestId('import-status').getByText('Dry run', { exact: false }).waitFor({ timeout: 30_000 });
    await page.getByTestId('import-outcomes').waitFor({ timeout: 30_000 });
    await screenshot(page, 'import-dry-run');
    await checkA11y(page, 'import dry run');

    // Filtering by outcome shows only those rows.
    const show = page.getByLabel('Show rows');
    const options = await show.locator('option').allInnerTexts();
    const duplicate = options.find((o) => o.startsWith('Duplicate gift'));
    assert.ok(duplicate, `a duplicate gift among the outcomes: ${options.join(' | ')}`);
    await show.selectOption({ label: duplicate });
    const shown = page.getByTestId('import-outcomes').locator('tbody tr');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="import-outcomes"] tbody tr').length === 1);
    assert.match(await shown.first().innerText(), /duplicate/i);

    await page.getByRole('button', { name: 'Commit this import' }).click();
    const progress = page.getByTestId('import-progress');
    await progress.waitFor({ timeout: 30_000 });
    await page.waitForFunction(
      () => document.querySelector('[data-testid="import-progress"]')?.getAttribute('value') === '100',
      undefined,
      { timeout: 60_000 },
    );
    await page.getByTestId('import-progress-text').getByText('100%').waitFor();
    await page.getByTestId('import-status').getByText('Committed', { exact: false }).waitFor({ timeout: 30_000 });
    await screenshot(page, 'import-committed');

    // The imports page lists it among the organisation's imports, committed, with what its rows did.
    const importId = new URL(page.url()).pathname.split('/').pop();
    await page.getByRole('link', { name: 'All imports' }).click();
    await settle(page, 'Imports');
    const listed = page.getByTestId('import-list').locator('tbody tr').filter({ has: page.locator(`a[href="/imports/${importId}"]`) });
    await listed.waitFor();
    const text = await listed.innerText();
    assert.match(text, new RegExp(`src_${tag}`));
    assert.match(text, /Committed/);
    assert.match(text, /1 duplicate/);
    await page.getByLabel('Show').selectOption('dry_run');
    // A committed import is no dry run: it leaves the filtered list.
    await page.locator(`[data-testid="import-list"] a[href="/imports/${importId}"]`).waitFor({ state: 'detached' });
    await page.waitForFunction(() => document.querySelectorAll('.loading').length === 0);
    await checkA11y(page, 'imports list');
  } finally {
    await browser.close();
  }
});
