// SMS templates and campaigns through the pages: a template typed into the editor, its live counter going from one
// GSM-7 segment to UCS-2 when an emoji is typed, saved, previewed for a contact (and for one missing a variable); a
// campaign to a tag, refused while the kill switch is on (409 tenant_paused), then queued: its queued count is the
// API's; the kill switch paused and resumed from the page; the campaign paused, resumed and cancelled (after a
// confirm), its jobs cancelled. Then a segment written on its page with a live count, a campaign to it sent through the
// fake Twilio (its delivery callbacks arriving through webhook-ingest), its report's counts on the page equal to the
// API's, with a chart; the tenant's spend against its budgets. axe on each page.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, checkA11y, CONSOLE_URL, env, launch, screenshot, settle, signIn, unique, waitForCharts } from './support.mjs';

const MESSAGING = '/api/messaging/v1';

async function mergePatch(path, token, body) {
  return fetch(`${CONSOLE_URL}${path}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', 'content-type': 'application/merge-patch+json' },
    body: JSON.stringify(body),
  });
}

/** Waits until the counter shows `encoding` and `segments`. */
async function waitForCounter(page, encoding, segments) {
  await page.waitForFunction(
    ([encoding, segments]) => {
      const c = document.querySelector('[data-testid="template-counter"]');
      return c?.getAttribute('data-encoding') === encoding && c?.getAttribute('data-segments') === String(segments);
    },
    [encoding, segments],
    { timeout: 10_000 },
  );
}

async function waitForStatus(page, statuses) {
  await page.waitForFunction(
    (statuses) => statuses.includes(document.querySelector('.page-head [data-testid="campaign-status"]')?.getAttribute('data-status') ?? ''),
    statuses,
    { timeout: 15_000 },
  );
}

test('templates and campaigns: the live counter, a campaign queued, the kill switch, pause, resume, cancel', async () => {
  const browser = await launch();
  let token;
  try {
    const { page, accessToken } = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    token = accessToken;
    const tag = unique('camp').replace(/[^a-z0-9]/gi, '').toLowerCase();

    // No quiet hours, so the campaign is queued to send now whatever the time of day.
    const quiet = await mergePatch(`${MESSAGING}/settings`, accessToken, { quiet_start: '00:00', quiet_end: '00:00' });
    assert.equal(quiet.status, 200, `PATCH /settings answered ${quiet.status}: ${await quiet.text()}`);

    // Three contacts with the tag and a first name; one without a first name (its preview lacks {{first_name}}).
    const base = 100_000_000 + Math.floor(Math.random() * 800_000_000);
    const people = ['Ada', 'Grace', 'Mary', null];
    const contacts = [];
    for (const [i, first] of people.entries()) {
      const res = await api('POST', `${MESSAGING}/contacts`, accessToken, {
        phone: `+447${base + i}`,
        first_name: first,
        last_name: `Camp${tag}${i}`,
        tags: [tag],
        consent_source: 'campaigns test',
      });
      assert.equal(res.status, 201, `POST /contacts answered ${res.status}`);
      contacts.push(await res.json());
    }

    // ---- a template, its counter live as it is typed ----
    await page.goto(`${CONSOLE_URL}/templates`);
    await settle(page, 'Templates');
    await page.getByTestId('kill-switch').getByRole('button', { name: 'Pause all sending' }).waitFor();
    await checkA11y(page, 'templates');
    const name = `Thanks ${tag}`;
    await page.getByLabel('Name (required)').fill(name);
    const body = page.getByLabel('Message (required)');
    await body.pressSequentially('Hi {{first_name}}, thank you for your gift!', { delay: 5 });
    await waitForCounter(page, 'GSM-7', 1);
    const counter = page.getByTestId('template-counter');
    assert.equal((await page.getByTestId('counter-encoding').innerText()).trim(), 'GSM-7');
    assert.match(await page.getByTestId('counter-segments').innerText(), /^1 segment$/);
    assert.match(await page.getByTestId('counter-cost').innerText(), /^\$\d/);
    // The whole text, with the opt-out line, and the variable left as written.
    assert.match(await page.getByTestId('counter-text').innerText(), /Hi \{\{first_name\}\}, thank you for your gift!\n.*STOP/s);
    assert.equal(await counter.getAttribute('aria-live'), 'polite');
    await screenshot(page, 'templates-gsm7');
    // An emoji: UCS-2, and the counter names it.
    await body.pressSequentially(' 🎉', { delay: 5 });
    await waitForCounter(page, 'UCS-2', 1);
    assert.match(await page.getByTestId('counter-non-gsm').innerText(), /🎉/);
    await screenshot(page, 'templates-ucs2');
    await checkA11y(page, 'templates with the counter');
    await page.getByRole('button', { name: 'Save new template' }).click();
    await page.getByTestId('template-notice').getByText(`Template “${name}” saved.`).waitFor({ timeout: 10_000 });
    await page.getByTestId('template-list').getByRole('link', { name }).waitFor({ timeout: 10_000 });
    const templates = await (await api('GET', `${MESSAGING}/templates?limit=500`, accessToken)).json();
    const template = templates.data.find((t) => t.name === name);
    assert.ok(template, `the template ${name} through the API`);
    assert.equal(template.body, 'Hi {{first_name}}, thank you for your gift! 🎉');
    assert.deepEqual(template.variables, ['first_name']);

    // ---- its page: preview for a contact, and for one without a first name ----
    await page.getByTestId('template-list').getByRole('link', { name }).click();
    await page.waitForURL(/\/templates\/[0-9a-f-]{36}$/);
    await settle(page, name);
    await waitForCounter(page, 'UCS-2', 1);
    await page.getByLabel(/Find a contact/).fill(`Camp${tag}0`);
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    await page.getByRole('button', { name: new RegExp(`^Ada Camp${tag}0`) }).click();
    await page.getByTestId('contact-preview').getByText(/Hi Ada, thank you for your gift! 🎉/).waitFor({ timeout: 10_000 });
    await page.getByLabel(/Find a contact/).fill(`Camp${tag}3`);
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    await page.getByRole('button', { name: new RegExp(`^Camp${tag}3`) }).click();
    await page.getByTestId('contact-preview').getByText(/has no value for \{\{first_name\}\}/).waitFor({ timeout: 10_000 });
    await screenshot(page, 'template-page');
    await checkA11y(page, 'template');

    // ---- a campaign to the tag ----
    await page.goto(`${CONSOLE_URL}/campaigns`);
    await settle(page, 'Campaigns');
    await checkA11y(page, 'campaigns');
    const campaignName = `Appeal ${tag}`;
    await page.getByLabel('Name (required)').fill(campaignName);
    // The template list is read when the form opens.
    await page.getByLabel('Template (required)').locator('option', { hasText: name }).waitFor({ state: 'attached' });
    await page.getByLabel('Template (required)').selectOption({ label: name });
    await page.getByLabel('Tags', { exact: true }).fill(tag);
    await page.getByLabel('Sender (required)').fill('Almoner');
    // To send tomorrow: scheduled, so nothing is sent while the test looks at it.
    const tomorrow = new Date(Date.now() + 24 * 3600_000);
    const pad = (n) => String(n).padStart(2, '0');
    await page
      .getByLabel('Send time')
      .fill(`${tomorrow.getFullYear()}-${pad(tomorrow.getMonth() + 1)}-${pad(tomorrow.getDate())}T${pad(tomorrow.getHours())}:${pad(tomorrow.getMinutes())}`);
    await page.getByRole('button', { name: 'Create draft campaign' }).click();
    await page.getByTestId('campaign-created').getByRole('link', { name: campaignName }).waitFor({ timeout: 10_000 });
    await page.getByTestId('campaign-list').getByRole('link', { name: campaignName }).waitFor({ timeout: 10_000 });
    await screenshot(page, 'campaigns-created');
    await page.getByTestId('campaign-created').getByRole('link', { name: campaignName }).click();
    await page.waitForURL(/\/campaigns\/[0-9a-f-]{36}$/);
    const campaignId = page.url().split('/').pop();
    await settle(page, campaignName);
    await waitForStatus(page, ['draft']);
    await checkA11y(page, 'campaign draft');

    // ---- the kill switch, from the page: queueing is refused while it is on ----
    const killSwitch = page.getByTestId('kill-switch');
    await killSwitch.getByRole('button', { name: 'Pause all sending' }).click();
    const banner = killSwitch.getByTestId('kill-switch-banner');
    await banner.waitFor({ timeout: 10_000 });
    assert.match(await banner.innerText(), /Sending is paused \(by .+ at .+\)/);
    const settings = await (await api('GET', `${MESSAGING}/settings`, accessToken)).json();
    assert.equal(settings.paused, true);
    await page.getByRole('button', { name: 'Queue campaign' }).click();
    const refused = page.getByRole('alert').filter({ hasText: /kill switch/i });
    await refused.waitFor({ timeout: 10_000 });
    await screenshot(page, 'campaign-kill-switch-on');
    await checkA11y(page, 'campaign with the kill switch on');
    await killSwitch.getByRole('button', { name: 'Resume sending' }).click();
    await killSwitch.getByTestId('kill-switch-state').waitFor({ timeout: 10_000 });
    assert.equal(await killSwitch.getByTestId('kill-switch-banner').count(), 0);
    assert.equal((await (await api('GET', `${MESSAGING}/settings`, accessToken)).json()).paused, false);

    // ---- queued: its count is the API's ----
    await page.getByRole('button', { name: 'Queue campaign' }).click();
    await waitForStatus(page, ['scheduled', 'running']);
    await page.getByTestId('campaign-notice').getByText('Campaign queued.').waitFor();
    // The Queue button is gone: focus is on the actions' heading.
    await page.waitForFunction(() => document.activeElement?.id === 'campaign-actions-title', undefined, { timeout: 5_000 });
    const queued = await (await api('GET', `${MESSAGING}/campaigns/${campaignId}`, accessToken)).json();
    assert.ok(['scheduled', 'running'].includes(queued.status), `status ${queued.status}`);
    assert.equal(queued.queue_summary.jobs, 3, `queue_summary ${JSON.stringify(queued.queue_summary)}`);
    assert.equal(queued.queue_summary.variables_missing, 1, `queue_summary ${JSON.stringify(queued.queue_summary)}`);
    assert.equal((await page.getByTestId('queue-jobs').innerText()).trim(), String(queued.queue_summary.jobs));
    assert.equal(queued.status, 'scheduled');
    assert.ok(queued.queue_summary.first_send_at, `queue_summary ${JSON.stringify(queued.queue_summary)}`);
    assert.equal(queued.jobs.queued, 3, `jobs ${JSON.stringify(queued.jobs)}`);
    const queuedRow = page.getByTestId('campaign-jobs').locator('tr[data-job-status="queued"] td');
    await queuedRow.waitFor();
    assert.equal((await queuedRow.innerText()).trim(), '3');
    await screenshot(page, 'campaign-queued');
    await checkA11y(page, 'campaign queued');

    // ---- paused and resumed ----
    await page.getByRole('button', { name: 'Pause campaign' }).click();
    await waitForStatus(page, ['paused']);
    await page.getByTestId('campaign-notice').getByText('Campaign paused.').waitFor();
    await screenshot(page, 'campaign-paused');
    await page.getByRole('button', { name: 'Resume campaign' }).click();
    await waitForStatus(page, ['scheduled', 'running']);
    await page.getByTestId('campaign-notice').getByText('Campaign resumed.').waitFor();

    // ---- cancelled, after a confirm: its jobs cancelled ----
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Cancel campaign' }).click();
    await waitForStatus(page, ['cancelled']);
    await page.getByTestId('campaign-notice').getByText(/Campaign cancelled/).waitFor();
    const cancelled = page.getByTestId('campaign-jobs').locator('tr[data-job-status="cancelled"] td');
    await cancelled.waitFor();
    assert.equal((await cancelled.innerText()).trim(), '3');
    const after = await (await api('GET', `${MESSAGING}/campaigns/${campaignId}`, accessToken)).json();
    assert.equal(after.status, 'cancelled');
    assert.equal(after.jobs.cancelled, 3, `jobs ${JSON.stringify(after.jobs)}`);
    await screenshot(page, 'campaign-cancelled');
    await checkA11y(page, 'campaign cancelled');

    // Listed as cancelled with its queued count.
    await page.goto(`${CONSOLE_URL}/campaigns`);
    await settle(page, 'Campaigns');
    const row = page.getByTestId('campaign-list').locator(`tr[data-id="${campaignId}"]`);
    await row.waitFor();
    assert.equal(await row.locator('[data-testid="campaign-status"]').getAttribute('data-status'), 'cancelled');
    assert.match(await row.innerText(), /\b3\b/);
  } finally {
    // Whatever happened, sending is left on for the other tests.
    if (token) await api('POST', `${MESSAGING}/resume`, token).catch(() => undefined);
    await browser.close();
  }
});

test('a segment counted live, a campaign to it sent, its report and chart matching the API, the spend against the budgets', async () => {
  const browser = await launch();
  let token;
  try {
    const { page, accessToken } = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    token = accessToken;
    const tag = unique('seg').replace(/[^a-z0-9]/gi, '').toLowerCase();
    const quiet = await mergePatch(`${MESSAGING}/settings`, accessToken, { quiet_start: '00:00', quiet_end: '00:00' });
    assert.equal(quiet.status, 200);
    await api('POST', `${MESSAGING}/resume`, accessToken);

    // Three contacts with the tag: two gold members, one silver.
    const base = 100_000_000 + Math.floor(Math.random() * 800_000_000);
    for (const [i, level] of ['gold', 'gold', 'silver'].entries()) {
      const res = await api('POST', `${MESSAGING}/contacts`, accessToken, {
        phone: `+447${base + i}`,
        first_name: `Seg${i}`,
        tags: [tag],
        attributes: { level },
        consent_source: 'segments test',
        consented_at: '2026-01-01',
      });
      assert.equal(res.status, 201, `POST /contacts answered ${res.status}`);
    }
    const template = await (await api('POST', `${MESSAGING}/templates`, accessToken, { name: `Gold ${tag}`, body: 'Hello {{first_name|friend}}, thank you!' })).json();

    // ---- the segment, its count live as conditions are added ----
    await page.goto(`${CONSOLE_URL}/segments`);
    await settle(page, 'Segments');
    await checkA11y(page, 'segments');
    const name = `Gold members ${tag}`;
    await page.getByLabel('Name (required)').fill(name);
    await page.getByLabel('Tagged with any of').fill(tag);
    const counts = page.getByTestId('segment-counts');
    await page.waitForFunction(() => document.querySelector('[data-testid="segment-counts"]')?.getAttribute('data-contacts') === '3', undefined, { timeout: 10_000 });
    await page.getByRole('button', { name: 'Add a condition on an attribute' }).click();
    await page.getByLabel('Attribute 1: key').fill('level');
    await page.getByLabel('Attribute 1: value').fill('gold');
    await page.waitForFunction(() => document.querySelector('[data-testid="segment-counts"]')?.getAttribute('data-contacts') === '2', undefined, { timeout: 10_000 });
    assert.equal((await counts.getByTestId('segment-reachable').innerText()).trim(), '2');
    await screenshot(page, 'segments-new');
    await checkA11y(page, 'segments with conditions');
    await page.getByRole('button', { name: 'Save segment' }).click();
    await page.getByTestId('segment-created').getByRole('link', { name }).waitFor({ timeout: 10_000 });
    const segments = await (await api('GET', `${MESSAGING}/segments?limit=500`, accessToken)).json();
    const saved = segments.data.find((g) => g.name === name);
    assert.ok(saved, `the segment ${name} through the API`);
    assert.deepEqual(saved.filter, { tags_any: [tag], attributes: [{ key: 'level', op: 'eq', value: 'gold' }] });
    await page.getByTestId('segment-list').getByRole('link', { name }).click();
    await page.waitForURL(/\/segments\/[0-9a-f-]{36}$/);
    await settle(page, name);
    const one = await (await api('GET', `${MESSAGING}/segments/${saved.id}`, accessToken)).json();
    assert.equal((await page.getByTestId('segment-contacts').first().innerText()).trim(), String(one.counts.contacts));
    assert.match(await page.getByTestId('segment-description').innerText(), /level is gold/);
    await screenshot(page, 'segment-page');
    await checkA11y(page, 'segment');

    // ---- a campaign to it, sent now ----
    await page.goto(`${CONSOLE_URL}/campaigns`);
    await settle(page, 'Campaigns');
    const spendBefore = await (await api('GET', `${MESSAGING}/spend`, accessToken)).json();
    const campaignName = `Gold ${tag}`;
    await page.getByLabel('Name (required)').fill(campaignName);
    await page.getByLabel('Template (required)').locator('option', { hasText: template.name }).waitFor({ state: 'attached' });
    await page.getByLabel('Template (required)').selectOption({ label: template.name });
    await page.getByLabel('Audience').locator('option', { hasText: name }).waitFor({ state: 'attached' });
    await page.getByLabel('Audience').selectOption({ label: `Segment: ${name}` });
    assert.equal(await page.getByLabel('Tags', { exact: true }).count(), 0, 'a segment audience has no tags');
    await page.getByLabel('Sender (required)').fill('+447700900000');
    await page.getByRole('button', { name: 'Create draft campaign' }).click();
    await page.getByTestId('campaign-created').getByRole('link', { name: campaignName }).click();
    await page.waitForURL(/\/campaigns\/[0-9a-f-]{36}$/);
    const campaignId = page.url().split('/').pop();
    await settle(page, campaignName);
    assert.match(await page.getByTestId('campaign-audience').innerText(), /segment/i);
    await page.getByRole('button', { name: 'Queue campaign' }).click();
    await page.getByTestId('campaign-notice').getByText('Campaign queued.').waitFor();
    // Sent, and both delivered callbacks applied: the page polls every 2 s.
    await page.waitForFunction(
      () => document.querySelector('[data-testid="report-delivered"]')?.textContent?.trim() === '2' && document.querySelector('[data-testid="report-pending"]')?.textContent?.trim() === '0',
      undefined,
      { timeout: 45_000 },
    );
    await waitForCharts(page, 1);
    const report = await (await api('GET', `${MESSAGING}/campaigns/${campaignId}/report`, accessToken)).json();
    assert.equal(report.queued, 2, JSON.stringify(report));
    const shown = async (id) => (await page.getByTestId(id).innerText()).trim();
    for (const [id, key] of [
      ['report-queued', 'queued'],
      ['report-sent', 'sent'],
      ['report-delivered', 'delivered'],
      ['report-undelivered', 'undelivered'],
      ['report-failed', 'failed'],
      ['report-blocked', 'blocked'],
      ['report-pending', 'pending'],
      ['report-segments', 'segments'],
      ['report-opt-outs', 'opt_outs'],
      ['report-human-clicks', 'human_clicks'],
    ]) {
      assert.equal(await shown(id), String(report[key]), `${id} on the page is the API's ${key}`);
    }
    assert.equal(await shown('report-spend'), `$${(report.spend_micros / 1_000_000).toFixed(2)}`);
    const label = await page.getByTestId('chart-campaign-outcomes').getAttribute('aria-label');
    assert.match(label, /Delivered 2/);
    await screenshot(page, 'campaign-report');
    await checkA11y(page, 'campaign report');

    // ---- the spend against the budgets: what the campaign cost, counted today ----
    await page.goto(`${CONSOLE_URL}/campaigns`);
    await settle(page, 'Campaigns');
    const spend = await (await api('GET', `${MESSAGING}/spend`, accessToken)).json();
    assert.equal(spend.day.spent_micros - spendBefore.day.spent_micros, report.spend_micros);
    const day = page.getByTestId('spend-day');
    await day.waitFor();
    assert.equal(await day.getAttribute('data-spent'), String(spend.day.spent_micros));
    assert.equal(await day.getAttribute('data-budget'), String(spend.day.budget_micros));
    await screenshot(page, 'campaigns-budgets');
  } finally {
    if (token) await api('POST', `${MESSAGING}/resume`, token).catch(() => undefined);
    await browser.close();
  }
});
