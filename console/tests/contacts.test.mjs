// SMS contacts through the pages: a contact from a local UK number (its 422 shown at the field first), listed in
// E.164; a number put on the do-not-contact list; a CSV of 21 contacts (a duplicate within the file, a landline and
// the listed number among them) imported with a column mapped to an attribute: the dry run's counts and outcome
// filter, the commit's progress bar reaching 100%, the contacts listed; a contact's number put on the list from its
// page, its badge, an edit saved as a merge patch; a staff entry taken off the list; a contact deleted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, checkA11y, CONSOLE_URL, env, launch, screenshot, settle, signIn, unique, waitForFocusOnLabel } from './support.mjs';

const MESSAGING = '/api/messaging/v1';

/** Numbers no other run uses: `07xxx xxxxxx` (a UK mobile in local form) and its E.164, `+447xxxxxxxxx`. */
function numbers() {
  const base = 100_000_000 + Math.floor(Math.random() * 800_000_000);
  const digits = (n) => String(base + n);
  return {
    local: (n) => `07${digits(n).slice(0, 3)} ${digits(n).slice(3)}`,
    e164: (n) => `+447${digits(n)}`,
  };
}

async function summaryCount(page, outcome) {
  return (await page.locator(`[data-testid="contact-import-summary"] tr[data-outcome="${outcome}"] td`).innerText()).trim();
}

/** Waits until the import's row table shows exactly `n` rows, all with `outcome` (any when undefined). */
async function waitForRows(page, n, outcome) {
  await page.waitForFunction(
    ([n, outcome]) => {
      if (document.querySelectorAll('.loading').length) return false;
      const rows = [...document.querySelectorAll('[data-testid="contact-import-rows"] tbody tr[data-outcome]')];
      return rows.length === n && (!outcome || rows.every((r) => r.getAttribute('data-outcome') === outcome));
    },
    [n, outcome],
    { timeout: 15_000 },
  );
}

test('contacts: a new contact, the do-not-contact list, an import from dry run to commit', async () => {
  const browser = await launch();
  try {
    const { page, accessToken } = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    const tag = unique('sms').replace(/[^a-z0-9]/gi, '').toLowerCase();
    const n = numbers();

    // ---- a contact from the form ----
    await page.goto(`${CONSOLE_URL}/contacts`);
    await settle(page, 'Contacts');
    await checkA11y(page, 'contacts');
    const phoneField = page.getByLabel('Mobile number (required)');
    // A landline: the service's 422 is shown at the field, which takes focus.
    await phoneField.fill('020 7946 0018');
    await page.getByLabel('Last name', { exact: true }).fill(`Form${tag}`);
    await page.getByRole('button', { name: 'Add contact' }).click();
    const phoneId = await phoneField.getAttribute('id');
    await page.locator(`#${phoneId}-error`).getByText(/mobile/i).waitFor({ timeout: 10_000 });
    assert.equal(await phoneField.getAttribute('aria-invalid'), 'true');
    await waitForFocusOnLabel(page, 'Mobile number (required)');
    await screenshot(page, 'contacts-new-contact-422');
    await checkA11y(page, 'contacts with a field error');

    await phoneField.fill(n.local(0));
    await page.getByLabel('First name', { exact: true }).fill('Nia');
    await page.getByLabel('Email', { exact: true }).fill(`nia.${tag}@example.org`);
    await page.getByLabel('Tags', { exact: true }).fill('Console test, form');
    await page.getByLabel('Where they agreed').fill('website sign-up');
    await page.getByLabel('When they agreed').fill('2025-04-06');
    await page.getByRole('button', { name: 'Add contact' }).click();
    await page.getByTestId('contact-created').getByText(n.e164(0)).waitFor({ timeout: 10_000 });
    // Focus goes back to the number for the next contact.
    await waitForFocusOnLabel(page, 'Mobile number (required)');
    const formRow = page.getByTestId('contact-list').locator(`tr[data-phone="${n.e164(0)}"]`);
    await formRow.waitFor({ timeout: 10_000 });
    const formText = await formRow.innerText();
    assert.match(formText, new RegExp(`Nia Form${tag}`));
    assert.match(formText, /\+447\d{9}/);
    assert.match(formText, /console test, form/);
    await screenshot(page, 'contacts-created');

    // ---- a number on the do-not-contact list, from its page ----
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Do not contact' }).click();
    await settle(page, 'Do not contact');
    await page.getByLabel('Number (required)').fill(n.local(1));
    await page.getByLabel('Note', { exact: true }).fill(`asked by phone (${tag})`);
    await page.getByRole('button', { name: 'Add to the do-not-contact list' }).click();
    await page.getByTestId('dnc-notice').getByText(`${n.e164(1)} is on the do-not-contact list.`).waitFor({ timeout: 10_000 });
    const listed = page.getByTestId('dnc-list').locator(`tr[data-phone="${n.e164(1)}"]`);
    await listed.waitFor();
    // Who added it: the member's name, once the staff list has been read.
    await listed.getByText('Ada Admin').waitFor();
    const listedText = await listed.innerText();
    assert.match(listedText, /Added by staff/);
    assert.match(listedText, new RegExp(`asked by phone \\(${tag}\\)`));
    await screenshot(page, 'do-not-contact');
    await checkA11y(page, 'do-not-contact');

    // ---- an import: 17 new, 1 update, a duplicate, a landline, a listed number ----
    const lines = ['Mobile,First name,Surname,Email,Branch,Shoe size'];
    for (let i = 2; i <= 18; i++) lines.push(`${n.local(i)},Imp${i},Import${tag},imp${i}.${tag}@example.org,Leeds,${i % 5 + 4}`);
    lines.push(`${n.local(0)},Nia,Form${tag},,York,6`); // the form's contact: updated (the file's tag is added)
    lines.push(`${n.e164(2)},Dup,Import${tag},,Leeds,5`); // line 2's number again
    lines.push(`020 7946 0018,Land,Line${tag},,Leeds,5`); // a landline
    lines.push(`${n.local(1)},Opted,Out${tag},,Leeds,5`); // on the do-not-contact list
    const csv = lines.join('\r\n') + '\r\n';

    await page.goto(`${CONSOLE_URL}/contacts`);
    await settle(page, 'Contacts');
    await page.getByRole('link', { name: 'Contact imports' }).click();
    await settle(page, 'Contact imports');
    await page.setInputFiles('#contact-import-file', { name: `${tag}.csv`, mimeType: 'text/csv', buffer: Buffer.from(csv) });
    // The headers are read from the file's first line: Branch becomes an attribute, Shoe size stays ignored.
    await page.getByTestId('contact-import-mapping').waitFor();
    await page.getByLabel('Branch', { exact: true }).selectOption('attribute');
    await page.getByLabel('Attribute key for the column Branch').fill('branch');
    await page.getByLabel('Where they agreed (required)').fill(`gala sign-up sheet ${tag}`);
    await page.getByLabel('When they agreed').fill('2025-04-06');
    await page.getByLabel('Tags for everyone in the file').fill(tag);
    await checkA11y(page, 'contact import form');
    await page.getByRole('button', { name: 'Upload and check (dry run)' }).click();
    await page.waitForURL(/\/contacts\/imports\/[0-9a-f-]{36}$/, { timeout: 30_000 });
    await settle(page, /^Contact import /);
    await page.getByTestId('contact-import-status').getByText('Dry run', { exact: false }).waitFor();
    await waitForRows(page, 21);
    assert.equal(await summaryCount(page, 'create'), '17');
    assert.equal(await summaryCount(page, 'update'), '1');
    assert.equal(await summaryCount(page, 'unchanged'), '0');
    assert.equal(await summaryCount(page, 'duplicate_in_file'), '1');
    assert.equal(await summaryCount(page, 'invalid_number'), '1');
    assert.equal(await summaryCount(page, 'invalid'), '0');
    assert.equal(await summaryCount(page, 'do_not_contact'), '1');
    assert.equal(await page.getByTestId('contact-import-ignored').innerText(), 'Shoe size');
    await screenshot(page, 'contact-import-dry-run');
    await checkA11y(page, 'contact import dry run');

    // The outcome filter: one row each.
    const show = page.getByLabel('Show rows');
    await show.selectOption('duplicate_in_file');
    await waitForRows(page, 1, 'duplicate_in_file');
    const dup = await page.getByTestId('contact-import-rows').locator('tbody tr').first().innerText();
    assert.match(dup, /^20\b/, `the duplicate is line 20: ${dup}`);
    assert.ok(dup.includes(n.e164(2)), `the duplicate's number: ${dup}`);
    assert.match(dup, /\b2\b/, `the detail names line 2: ${dup}`);
    await show.selectOption('invalid_number');
    await waitForRows(page, 1, 'invalid_number');
    assert.match(await page.getByTestId('contact-import-rows').locator('tbody tr').first().innerText(), /020 7946 0018/);
    await show.selectOption('do_not_contact');
    await waitForRows(page, 1, 'do_not_contact');
    assert.ok((await page.getByTestId('contact-import-rows').locator('tbody tr').first().innerText()).includes(n.e164(1)));
    await screenshot(page, 'contact-import-filtered');
    await show.selectOption({ index: 0 });
    await waitForRows(page, 21);

    // The commit, to 100%.
    await page.getByRole('button', { name: 'Commit this import' }).click();
    await page.getByTestId('contact-import-progress').waitFor({ timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="contact-import-progress"]')?.getAttribute('value') === '100', undefined, {
      timeout: 60_000,
    });
    await page.getByTestId('contact-import-progress-text').getByText('100%').waitFor();
    await page.getByTestId('contact-import-status').getByText('Committed').waitFor({ timeout: 30_000 });
    assert.equal(await summaryCount(page, 'create'), '17');
    // Written rows link to their contacts once the rows are read again.
    await page.getByTestId('contact-import-rows').getByRole('link', { name: n.e164(2) }).first().waitFor({ timeout: 15_000 });
    await screenshot(page, 'contact-import-committed');
    await checkA11y(page, 'contact import committed');

    // The import among the past ones, committed.
    const importId = new URL(page.url()).pathname.split('/').pop();
    await page.getByRole('link', { name: 'All contact imports' }).click();
    await settle(page, 'Contact imports');
    const pastRow = page.getByTestId('contact-import-list').locator('tbody tr').filter({ has: page.locator(`a[href="/contacts/imports/${importId}"]`) });
    await pastRow.waitFor();
    const pastText = await pastRow.innerText();
    assert.match(pastText, /Committed/);
    assert.match(pastText, /17 new contacts/);
    assert.match(pastText, new RegExp(`gala sign-up sheet ${tag}`));

    // ---- the contacts listed, by the file's tag: 17 new and the updated one ----
    await page.goto(`${CONSOLE_URL}/contacts`);
    await settle(page, 'Contacts');
    await page.getByLabel('Tag', { exact: true }).fill(tag);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.waitForFunction(
      () => document.querySelectorAll('.loading').length === 0 && document.querySelectorAll('[data-testid="contact-list"] tbody tr[data-phone]').length === 18,
      undefined,
      { timeout: 15_000 },
    );
    for (const i of [0, 2, 18]) await page.getByTestId('contact-list').locator(`tr[data-phone="${n.e164(i)}"]`).waitFor();
    assert.equal(await page.getByTestId('contact-list').locator(`tr[data-phone="${n.e164(1)}"]`).count(), 0, 'the listed number was not imported');
    await screenshot(page, 'contacts-imported');

    // ---- a contact's page: its attribute, its number put on the list, the badge ----
    await page.getByTestId('contact-list').getByRole('link', { name: `Imp3 Import${tag}`, exact: true }).click();
    await page.waitForURL(/\/contacts\/[0-9a-f-]{36}$/);
    await settle(page, `Imp3 Import${tag}`);
    const contactId = new URL(page.url()).pathname.split('/').pop();
    const attributes = page.getByTestId('contact-attributes');
    await attributes.getByRole('row', { name: /branch/ }).getByText('Leeds').waitFor();
    assert.equal(await page.getByTestId('contact-dnc-badge').count(), 0);
    await checkA11y(page, 'contact');
    await page.getByLabel('Note (optional)').fill('asked at the gala');
    await page.getByRole('button', { name: 'Put this number on the do-not-contact list' }).click();
    await page.getByTestId('contact-dnc-badge').getByText('Do not contact').waitFor({ timeout: 10_000 });
    await page.getByTestId('contact-dnc-entry').getByText('Added by staff').waitFor();
    // The form is gone: focus is on the panel's heading, not lost.
    await page.waitForFunction(() => document.activeElement?.id === 'dnc-title', undefined, { timeout: 5_000 });

    // An edit: only what changed is sent, as a merge patch.
    const patchSent = page.waitForRequest((r) => r.method() === 'PATCH' && r.url().endsWith(`${MESSAGING}/contacts/${contactId}`));
    await page.getByLabel('First name', { exact: true }).fill('Imogen');
    await page.getByRole('button', { name: 'Save contact' }).click();
    const patch = await patchSent;
    assert.equal(patch.headers()['content-type'], 'application/merge-patch+json');
    assert.deepEqual(JSON.parse(patch.postData() ?? '{}'), { first_name: 'Imogen' });
    await page.getByTestId('contact-notice').getByText('Contact saved.').waitFor({ timeout: 10_000 });
    await page.getByTestId('contact-name').getByText(`Imogen Import${tag}`).waitFor();
    const read = await api('GET', `${MESSAGING}/contacts/${contactId}`, accessToken);
    assert.equal(read.status, 200);
    const stored = await read.json();
    assert.equal(stored.first_name, 'Imogen');
    assert.equal(stored.do_not_contact, true);
    assert.equal(stored.attributes.branch, 'Leeds');
    await screenshot(page, 'contact-do-not-contact');
    await checkA11y(page, 'contact on the do-not-contact list');

    // The list's "do not contact" filter shows it, with its badge.
    await page.getByRole('link', { name: 'All contacts' }).click();
    await settle(page, 'Contacts');
    await page.getByLabel('Tag', { exact: true }).fill(tag);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByLabel('Do not contact', { exact: true }).selectOption('true');
    await page.waitForFunction(
      () => document.querySelectorAll('.loading').length === 0 && document.querySelectorAll('[data-testid="contact-list"] tbody tr[data-phone]').length === 1,
      undefined,
      { timeout: 15_000 },
    );
    const dncRow = page.getByTestId('contact-list').locator(`tr[data-phone="${n.e164(3)}"]`);
    await dncRow.getByText('Do not contact').waitFor();
    await screenshot(page, 'contacts-do-not-contact-filter');

    // ---- the staff entry taken off the list (after a confirm) ----
    await page.goto(`${CONSOLE_URL}/do-not-contact`);
    await settle(page, 'Do not contact');
    const entryRow = page.getByTestId('dnc-list').locator(`tr[data-phone="${n.e164(1)}"]`);
    await entryRow.waitFor();
    page.once('dialog', (d) => void d.accept());
    await entryRow.getByRole('button', { name: `Remove ${n.e164(1)}` }).click();
    await page.getByTestId('dnc-notice').getByText(`${n.e164(1)} is off the do-not-contact list.`).waitFor({ timeout: 10_000 });
    await entryRow.waitFor({ state: 'detached', timeout: 10_000 });
    const gone = await api('GET', `${MESSAGING}/do-not-contact/${encodeURIComponent(n.e164(1))}`, accessToken);
    assert.equal(gone.status, 404);

    // ---- a contact deleted (after a confirm) ----
    const del = await api('GET', `${MESSAGING}/contacts?q=${encodeURIComponent(n.e164(4).slice(1))}`, accessToken);
    assert.equal(del.status, 200);
    const [toDelete] = (await del.json()).data;
    assert.ok(toDelete, 'the contact to delete');
    await page.goto(`${CONSOLE_URL}/contacts/${toDelete.id}`);
    await settle(page, `Imp4 Import${tag}`);
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Delete contact' }).click();
    await page.waitForURL((u) => u.pathname === '/contacts', { timeout: 10_000 });
    await settle(page, 'Contacts');
    const after = await api('GET', `${MESSAGING}/contacts/${toDelete.id}`, accessToken);
    assert.equal(after.status, 404);
  } finally {
    await browser.close();
  }
});
