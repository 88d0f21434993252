// Every page as an admin: each drawn, screenshotted and checked with axe.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, checkA11y, CONSOLE_URL, env, existingDonor, launch, screenshot, settle, signIn, unique, waitForCharts } from './support.mjs';

test('every page passes axe as an admin', async () => {
  const browser = await launch();
  try {
    const { page, context, accessToken } = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    const visit = async (path, heading, name) => {
      await page.goto(`${CONSOLE_URL}${path}`);
      await settle(page, heading);
      await screenshot(page, `page-${name}`);
      await checkA11y(page, name);
    };

    await page.goto(`${CONSOLE_URL}/`);
    await settle(page, 'Dashboard');
    await waitForCharts(page);
    // The data tables behind the charts are checked too.
    for (const d of await page.locator('details').all()) await d.locator('summary').click();
    await screenshot(page, 'page-dashboard');
    await checkA11y(page, 'dashboard');

    await visit('/gifts/new', 'Gift entry', 'gift-entry');
    await visit('/donors', 'Donors', 'donors');

    // A donor's page: the existing donor, found by search.
    const donor = existingDonor();
    await page.getByLabel(/Search donors/).fill(donor.last_name);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByRole('table').getByRole('link', { name: new RegExp(donor.last_name) }).first().click();
    await page.waitForURL(/\/donors\/[0-9a-f-]{36}$/);
    await settle(page, new RegExp(donor.last_name));
    if (await page.locator('[data-testid^="chart-"]').count()) await waitForCharts(page);
    await screenshot(page, 'page-donor');
    await checkA11y(page, 'donor');

    // A batch's page: an open one, made here so there is one.
    const made = await api('POST', '/api/fundraising/v1/gift-batches', accessToken, {
      name: unique('Pages batch '),
      currency: 'GBP',
      expected_count: 3,
      expected_total_minor: 7500,
    });
    assert.equal(made.status, 201, `POST /gift-batches answered ${made.status}`);
    const batch = await made.json();
    await visit('/batches', 'Gift batches', 'batches');
    await visit(`/batches/${batch.id}`, batch.name, 'batch');
    await visit('/staging', 'Staging review', 'staging');
    await visit('/imports', 'Imports', 'imports');
    await visit('/claims', 'Gift Aid claims', 'claims');
    const claim = page.getByRole('table').getByRole('link', { name: /^Claim to/ }).first();
    if (await claim.count()) {
      await claim.click();
      await settle(page, /^Claim to/);
      await screenshot(page, 'page-claim');
      await checkA11y(page, 'claim');
    }
    // The SMS pages: a contact made here so there is one to open, and the newest contact import (the harness
    // seeds a dry run).
    const contact = await api('POST', '/api/messaging/v1/contacts', accessToken, {
      phone: `+4477${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`,
      first_name: 'Page',
      last_name: unique('Contact'),
      tags: ['pages'],
      attributes: { branch: 'Leeds', volunteer: true, gifts: 3 },
      consent_source: 'pages test',
      consented_at: '2025-04-06',
    });
    assert.equal(contact.status, 201, `POST /contacts answered ${contact.status}`);
    const madeContact = await contact.json();
    await visit('/contacts', 'Contacts', 'contacts');
    await visit(`/contacts/${madeContact.id}`, `Page ${madeContact.last_name}`, 'contact');
    await visit('/contacts/imports', 'Contact imports', 'contact-imports');
    const contactImport = page.getByTestId('contact-import-list').getByRole('link').first();
    if (await contactImport.count()) {
      await contactImport.click();
      await settle(page, /^Contact import /);
      await page.getByTestId('contact-import-rows').waitFor();
      await screenshot(page, 'page-contact-import');
      await checkA11y(page, 'contact import');
    }
    await visit('/do-not-contact', 'Do not contact', 'do-not-contact');
    // A template and a draft campaign made here, for their pages.
    const tmpl = await api('POST', '/api/messaging/v1/templates', accessToken, { name: unique('Pages template '), body: 'Hello {{first_name|friend}}, thank you!' });
    assert.equal(tmpl.status, 201, `POST /templates answered ${tmpl.status}`);
    const madeTemplate = await tmpl.json();
    const camp = await api('POST', '/api/messaging/v1/campaigns', accessToken, { name: unique('Pages campaign '), template_id: madeTemplate.id, sender: 'Almoner', tags: ['pages'] });
    assert.equal(camp.status, 201, `POST /campaigns answered ${camp.status}`);
    const madeCampaign = await camp.json();
    await visit('/templates', 'Templates', 'templates');
    await visit(`/templates/${madeTemplate.id}`, madeTemplate.name, 'template');
    await visit('/campaigns', 'Campaigns', 'campaigns');
    await visit(`/campaigns/${madeCampaign.id}`, madeCampaign.name, 'campaign');
    await visit('/staff', 'Staff', 'staff');
    await visit('/settings', 'Settings', 'settings');
    await visit('/no-such-page', 'Page not found', 'not-found');
    await context.close();
  } finally {
    await browser.close();
  }
});
