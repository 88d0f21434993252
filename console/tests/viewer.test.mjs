// A viewer sees no write controls, and the services refuse a write with the viewer's token anyway.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, checkA11y, CONSOLE_URL, env, launch, screenshot, settle, signIn } from './support.mjs';

const WRITE_CONTROLS = /^(Save gift|New donor|Enter a gift|Gather claim|Upload and check|Commit this import|Approve|Reject|Add staff member|Save role|Remove|Save organisation settings|Save Gift Aid settings|Export schedule|Mark submitted|Create batch|Add to batch|Process batch|Add contact|Save contact|Delete contact|Set attribute|Put this number|Add to the do-not-contact list|Save SMS settings|Pause all sending|Resume sending|Save new template|Save template|Delete template|Create draft campaign|Queue campaign|Pause campaign|Resume campaign|Cancel campaign|Delete draft)/;

async function writeControls(page) {
  const names = await page.$$eval('main button, main a.button, main input[type="submit"]', (els) =>
    els.filter((e) => !e.disabled && e.offsetParent !== null).map((e) => (e.textContent || e.value || '').trim()),
  );
  return names.filter((n) => WRITE_CONTROLS.test(n));
}

test('a viewer has no write controls, and a write with their token is refused', async () => {
  const browser = await launch();
  try {
    const { page, context, accessToken, grant } = await signIn(browser, env('ALMONER_VIEWER_EMAIL'));
    assert.equal(grant.staff.role, 'viewer');
    assert.ok(grant.scopes.every((s) => s.endsWith(':read')), `a viewer's scopes: ${grant.scopes}`);
    await page.getByTestId('staff-role').getByText('Viewer').waitFor();
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Gift entry' }).count(), 0);
    // The SMS pages are there to read.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Contacts' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Templates' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Campaigns' }).waitFor();

    // A contact's page and a contact import's dry run (the harness seeds both), found with the viewer's token.
    const contacts = await (await api('GET', '/api/messaging/v1/contacts?limit=1', accessToken)).json();
    assert.ok(contacts.data?.length, `a contact for the viewer to open: ${JSON.stringify(contacts)}`);
    const dryRuns = await (await api('GET', '/api/messaging/v1/contact-imports?status=dry_run&limit=1', accessToken)).json();
    assert.ok(dryRuns.data?.length, `a contact import's dry run for the viewer to open: ${JSON.stringify(dryRuns)}`);

    // A template and a campaign, if the tests before made one (campaigns.test.mjs, pages.test.mjs).
    const templates = await (await api('GET', '/api/messaging/v1/templates?limit=1', accessToken)).json();
    const campaigns = await (await api('GET', '/api/messaging/v1/campaigns?limit=1', accessToken)).json();

    const pages = [
      ['/', 'Dashboard'],
      ['/gifts/new', 'Gift entry'],
      ['/donors', 'Donors'],
      ['/batches', 'Gift batches'],
      ['/staging', 'Staging review'],
      ['/imports', 'Imports'],
      ['/claims', 'Gift Aid claims'],
      ['/contacts', 'Contacts'],
      [`/contacts/${contacts.data[0].id}`, /./],
      ['/contacts/imports', 'Contact imports'],
      [`/contacts/imports/${dryRuns.data[0].id}`, /^Contact import /],
      ['/do-not-contact', 'Do not contact'],
      ['/templates', 'Templates'],
      ...(templates.data?.length ? [[`/templates/${templates.data[0].id}`, templates.data[0].name]] : []),
      ['/campaigns', 'Campaigns'],
      ...(campaigns.data?.length ? [[`/campaigns/${campaigns.data[0].id}`, campaigns.data[0].name]] : []),
      ['/staff', 'Staff'],
      ['/settings', 'Settings'],
    ];
    for (const [path, heading] of pages) {
      await page.goto(`${CONSOLE_URL}${path}`);
      await settle(page, heading);
      assert.deepEqual(await writeControls(page), [], `write controls on ${path} for a viewer`);
      await screenshot(page, `viewer-${path === '/' ? 'dashboard' : path.slice(1).replace(/\//g, '-')}`);
    }
    await checkA11y(page, 'settings as viewer');
    // The SMS settings are shown, not editable.
    await page.getByRole('heading', { level: 2, name: 'Text messages (SMS)' }).waitFor();
    assert.equal(await page.getByLabel('Numbers written without a country code are').evaluate((el) => el.matches(':disabled')), true);

    // A messaging write with the viewer's token is refused too.
    const sms = await api('POST', '/api/messaging/v1/do-not-contact', accessToken, { phone: '+447700900999' });
    assert.equal(sms.status, 403, `POST /do-not-contact with a viewer's token answered ${sms.status}`);

    // The services enforce the scopes whatever the page shows.
    const res = await api('POST', '/api/fundraising/v1/donors', accessToken, { last_name: 'Viewer-Write' });
    assert.equal(res.status, 403, `POST /donors with a viewer's token answered ${res.status}`);
    const problem = await res.json();
    assert.equal(problem.code, 'forbidden');
    await context.close();
  } finally {
    await browser.close();
  }
});
