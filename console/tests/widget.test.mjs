// The chat widget (console/widget/, served by the gateway at /widget.js) embedded by one script tag in a page of
// another origin, a "host site" started here with node:http, as a charity's own website would embed it. The
// tenant's widget settings allow that origin and require identity; the host page carries the member's identifier
// and its HMAC made with the tenant's widget secret, exactly as the host's server would (docs/identity-widget.md).
//
// In Chromium: the member opens the widget and writes; staff see it through the staff API and reply; the reply
// shows live (within a second, no reload); with the member's network cut, staff replies sent meanwhile show once
// it is back, each exactly once, and a message written while offline is delivered once; an image goes through
// the attachment flow and shows, and a file of a refused type says why. A forged hash gets no token and no conversation; a page of an origin the
// tenant does not allow is refused. A page without the member asks them to sign in until its script identifies
// them; where the tenant does not require identity, an anonymous visitor chats under an id of their own.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { hostPage, hostSite, png } from './host-site.mjs';
import { api, checkA11y, CONSOLE_URL, env, jwtClaims, launch, screenshot, signIn, unique } from './support.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** The widget's focused element's data-testid (focus inside its shadow root). */
function focusedTestId(page) {
  return page.evaluate(() => document.querySelector('[data-almoner-widget]')?.shadowRoot?.activeElement?.getAttribute('data-testid') ?? null);
}

async function waitForFocus(page, testId) {
  const end = Date.now() + 5_000;
  while (Date.now() < end) {
    if ((await focusedTestId(page)) === testId) return;
    await sleep(50);
  }
  assert.fail(`focus did not move to ${testId}; it is on ${await focusedTestId(page)}`);
}

async function json(res, what) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    assert.fail(`${what} answered ${res.status} with something other than JSON: ${text.slice(0, 300)}`);
  }
}

describe('the chat widget on a host site', () => {
  let browser;
  let staffToken;
  let tenant;
  let host;
  let otherHost;
  let secret;
  let context;
  let page;
  let conversationId;
  const identifier = unique('member-');
  let hash;
  let firstMessage;
  const memberName = 'Ann Member';
  const memberEmail = `${unique('ann-')}@example.org`;
  const greeting = 'Hello from the Test Charity! Ask us anything about your donations.';

  /** The member's conversation as staff see it, once it exists (member.identifier is the host's identifier). */
  async function staffConversation() {
    const end = Date.now() + 15_000;
    for (;;) {
      const res = await api('GET', '/api/messaging/v1/conversations?limit=100', staffToken);
      const body = await json(res, 'GET /api/messaging/v1/conversations');
      assert.equal(res.status, 200, `GET /api/messaging/v1/conversations: ${JSON.stringify(body)}`);
      const found = body.data.find((c) => c.member?.identifier === identifier);
      if (found) return found;
      assert.ok(Date.now() < end, `no conversation with member ${identifier} reached staff within 15 s`);
      await sleep(250);
    }
  }

  async function staffMessages(id) {
    const res = await api('GET', `/api/messaging/v1/conversations/${id}/messages?after_seq=0&limit=500`, staffToken);
    const body = await json(res, 'GET .../messages');
    assert.equal(res.status, 200, `GET /api/messaging/v1/conversations/${id}/messages: ${JSON.stringify(body)}`);
    return body.data;
  }

  /** Waits until staff see a message satisfying `pred` in the member's conversation. */
  async function staffSee(pred, what, timeout = 10_000) {
    const end = Date.now() + timeout;
    for (;;) {
      const found = (await staffMessages(conversationId)).filter(pred);
      if (found.length) return found;
      assert.ok(Date.now() < end, `staff did not see ${what} within ${timeout / 1000} s`);
      await sleep(250);
    }
  }

  async function staffReply(body) {
    const res = await api('POST', `/api/messaging/v1/conversations/${conversationId}/messages`, staffToken, { body });
    const answer = await json(res, 'the staff reply');
    assert.equal(res.status, 201, `the staff reply: ${JSON.stringify(answer)}`);
    return answer.message;
  }

  const cspViolations = [];
  const messages = (p = page) => p.getByTestId('almoner-message');
  const message = (text, p = page) => messages(p).filter({ hasText: text });

  before(async () => {
    browser = await launch();
    const staff = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    staffToken = staff.accessToken;
    await staff.context.close();
    tenant = jwtClaims(staffToken).tid;
    assert.match(tenant ?? '', /^[0-9a-f-]{36}$/, `the staff token's tid: ${tenant}`);

    host = await hostSite();
    otherHost = await hostSite();
    const settings = {
      allowed_origins: [host.origin],
      identity_required: true,
      greeting,
      accent_colour: '#0b6e4f',
      notify_email_on_reply: false,
      reply_mail_url: null,
    };
    const put = await api('PUT', '/api/identity/v1/widget', staffToken, settings);
    const saved = await json(put, 'PUT /api/identity/v1/widget');
    assert.equal(put.status, 200, `PUT /api/identity/v1/widget: ${JSON.stringify(saved)}`);
    assert.deepEqual(saved.allowed_origins, [host.origin]);
    const rotated = await api('POST', '/api/identity/v1/widget/secret', staffToken);
    const made = await json(rotated, 'POST /api/identity/v1/widget/secret');
    assert.ok(rotated.ok, `POST /api/identity/v1/widget/secret: ${rotated.status} ${JSON.stringify(made)}`);
    secret = made.secret;
    assert.match(secret, /^[0-9a-f]{64}$/);

    // What the host's server renders for its signed-in member.
    hash = createHmac('sha256', secret).update(identifier).digest('hex');
    // Under a strict Content-Security-Policy, as a careful charity's site would be: the gateway's origin for the
    // script, its API and its file links, no inline style at all (the widget's styles are a constructed sheet).
    const nonce = unique('n');
    host.set('/', hostPage({ tenant, identifier, hash, name: memberName, email: memberEmail, nonce }), {
      'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}' ${CONSOLE_URL}; connect-src ${CONSOLE_URL}; img-src ${CONSOLE_URL}; style-src 'none'; base-uri 'none'; form-action 'none'`,
    });
    // The same member with a hash the host's server did not make.
    const forged = createHmac('sha256', 'f'.repeat(64)).update(identifier).digest('hex');
    host.set('/forged', hostPage({ tenant, identifier, hash: forged }));
    otherHost.set('/', hostPage({ tenant, identifier, hash }));
    // No member: the host's visitor is not signed in (or the page identifies them later, by script).
    host.set('/anonymous', hostPage({ tenant }));

    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'warning' || m.type() === 'error') console.log(`[widget page ${m.type()}] ${m.text()}`);
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on('response', (r) => r.status() >= 400 && console.log(`[widget page] ${r.request().method()} ${r.url()}: ${r.status()}`));
    await page.goto(`${host.origin}/`);
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close();
    await host?.close();
    await otherHost?.close();
  });

  test('a member opens the widget and writes; staff see the message', async () => {
    const launcher = page.getByTestId('almoner-launcher');
    await launcher.waitFor();
    assert.equal(await launcher.getAttribute('aria-label'), 'Chat with us');
    assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
    // Everything lives in an open shadow root on one element: the host page gets no style of the widget's.
    const isolation = await page.evaluate(() => {
      const hosts = document.querySelectorAll('[data-almoner-widget]');
      return {
        hosts: hosts.length,
        mode: hosts[0]?.shadowRoot?.mode,
        pageStyles: document.styleSheets.length,
        globals: Object.keys(window).filter((k) => /almoner/i.test(k)),
      };
    });
    assert.deepEqual(isolation, { hosts: 1, mode: 'open', pageStyles: 0, globals: ['AlmonerWidget'] });
    // Styled, the page's CSP notwithstanding: a round launcher in the accent colour.
    const look = await launcher.evaluate((b) => ({ width: getComputedStyle(b).width, background: getComputedStyle(b).backgroundColor }));
    assert.deepEqual(look, { width: '56px', background: 'rgb(11, 110, 79)' });

    await launcher.click();
    const panel = page.getByTestId('almoner-panel');
    await panel.waitFor();
    assert.equal(await panel.getAttribute('role'), 'dialog');
    assert.equal(await launcher.getAttribute('aria-expanded'), 'true');
    await panel.getByText(greeting).waitFor();
    await page.getByTestId('almoner-status').filter({ hasText: /^Connected$/ }).waitFor({ timeout: 10_000 });
    await waitForFocus(page, 'almoner-input');
    assert.equal(await page.getByRole('log').getAttribute('aria-live'), 'polite');
    await page.getByRole('textbox', { name: 'Message' }).waitFor();
    await page.getByRole('button', { name: 'Attach a file' }).waitFor();

    // Enter sends; Shift+Enter is a new line within the message.
    const first = `Hello, I have a question about Gift Aid ${unique('q')}`;
    firstMessage = first;
    const input = page.getByTestId('almoner-input');
    await input.fill(first);
    await input.press('Enter');
    await message(first).waitFor();
    assert.equal(await message(first).getAttribute('data-author'), 'member');
    assert.equal(await input.inputValue(), '', 'the input is cleared once sent');
    await input.pressSequentially('line one');
    await input.press('Shift+Enter');
    await input.pressSequentially('line two');
    await input.press('Enter');
    await message('line one').waitFor();
    assert.match(await message('line one').innerText(), /line one\nline two/);
    // Both delivered (no longer pending).
    await page.waitForFunction(
      () => ![...document.querySelector('[data-almoner-widget]').shadowRoot.querySelectorAll('[data-testid="almoner-message"]')].some((m) => m.classList.contains('sending')),
      undefined,
      { timeout: 10_000 },
    );

    const conversation = await staffConversation();
    conversationId = conversation.id;
    const seen = await staffSee((m) => m.body === 'line one\nline two', 'the second message');
    assert.equal(seen[0].author, 'member');
    const all = await staffMessages(conversationId);
    assert.deepEqual(
      all.map((m) => [m.author, m.body]),
      [
        ['member', first],
        ['member', 'line one\nline two'],
      ],
    );
    assert.ok(all.every((m) => m.client_message_id), 'each message carries the widget client_message_id');
    // The profile the page gave (data-name, data-email).
    assert.equal(conversation.member.verified, true);
    const withProfile = await staffConversation();
    assert.equal(withProfile.member.name, memberName);
    assert.equal(withProfile.member.email, memberEmail);

    await screenshot(page, 'widget-open');
    await checkA11y(page, 'chat widget open');

    // Escape closes and gives focus back to the launcher.
    await input.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
    await waitForFocus(page, 'almoner-launcher');
    await launcher.click();
    await panel.waitFor();
  });

  test('a staff reply shows in the widget within a second, without a reload; unread replies badge the launcher', async () => {
    assert.ok(conversationId, 'the first test made the conversation');
    const loadedAt = await page.evaluate(() => window.__loadedAt);
    const body = `Thanks for writing! ${unique('r')}`;
    const sent = await staffReply(body);
    const started = Date.now();
    await message(body).waitFor({ timeout: 1_000 });
    console.log(`the staff reply showed in the widget ${Date.now() - started} ms after the API answered`);
    assert.equal(await message(body).getAttribute('data-author'), 'staff');
    assert.equal(await page.evaluate(() => window.__loadedAt), loadedAt, 'the page was not reloaded');

    // The panel is open: the widget sends a read receipt, which staff see.
    const end = Date.now() + 10_000;
    for (;;) {
      const c = await staffConversation();
      if (c.member_read_seq >= sent.seq) break;
      assert.ok(Date.now() < end, `the member's read receipt did not reach seq ${sent.seq}: ${JSON.stringify(c)}`);
      await sleep(200);
    }

    // Closed: a new reply badges the launcher, and opening reads it.
    await page.getByRole('button', { name: 'Close chat' }).click();
    await page.getByTestId('almoner-panel').waitFor({ state: 'hidden' });
    const unread = `Did that answer your question? ${unique('u')}`;
    await staffReply(unread);
    const badge = page.getByTestId('almoner-launcher').locator('.badge');
    await badge.filter({ hasText: '1' }).waitFor({ timeout: 5_000 });
    await screenshot(page, 'widget-unread-badge');
    await page.getByTestId('almoner-launcher').click();
    await message(unread).waitFor();
    await badge.waitFor({ state: 'hidden' });
  });

  test('with the network cut, staff replies sent meanwhile show once it is back, each exactly once', async () => {
    assert.ok(conversationId, 'the first test made the conversation');
    const loadedAt = await page.evaluate(() => window.__loadedAt);
    const status = page.getByTestId('almoner-status');
    await status.filter({ hasText: /^Connected$/ }).waitFor();

    await context.setOffline(true);
    await status.filter({ hasText: 'Reconnecting…' }).waitFor({ timeout: 5_000 });
    // Written while offline: shown at once as pending, delivered (once) when the network is back.
    const offline = `Sent while offline ${unique('o')}`;
    await page.getByTestId('almoner-input').fill(offline);
    await page.getByTestId('almoner-input').press('Enter');
    await message(offline).filter({ hasText: 'Sending…' }).waitFor();

    const a = `First reply while you were away ${unique('a')}`;
    const b = `Second reply while you were away ${unique('b')}`;
    await staffReply(a);
    await staffReply(b);
    await sleep(1_500);
    assert.equal(await message(a).count(), 0, 'a reply showed while the member was offline: the network was not cut');
    await screenshot(page, 'widget-offline');

    await context.setOffline(false);
    const back = Date.now();
    await message(a).waitFor({ timeout: 5_000 });
    await message(b).waitFor({ timeout: 5_000 });
    console.log(`both replies showed ${Date.now() - back} ms after the network came back`);
    await status.filter({ hasText: /^Connected$/ }).waitFor({ timeout: 5_000 });
    await message(offline).filter({ hasNotText: 'Sending…' }).waitFor({ timeout: 10_000 });
    // Settled: nothing arrives twice.
    await sleep(1_500);
    assert.equal(await message(a).count(), 1, 'the first reply shows exactly once');
    assert.equal(await message(b).count(), 1, 'the second reply shows exactly once');
    assert.equal(await message(offline).count(), 1, 'the message written offline shows exactly once');
    const order = await messages().allInnerTexts();
    const ia = order.findIndex((t) => t.includes(a));
    const ib = order.findIndex((t) => t.includes(b));
    assert.ok(ia >= 0 && ia < ib, 'the replies show in their order');
    assert.equal(await page.evaluate(() => window.__loadedAt), loadedAt, 'the page was not reloaded');
    const delivered = await staffSee((m) => m.body === offline, 'the message written offline');
    assert.equal(delivered.length, 1, 'the message written offline reached staff exactly once');
    await screenshot(page, 'widget-back-online');
  });

  test('an image sent from the widget reaches staff and shows in the widget', async () => {
    assert.ok(conversationId, 'the first test made the conversation');
    const image = png(230, 120, 20);
    // What is written in the box goes with the file, as one message.
    await page.getByTestId('almoner-input').fill('Here is my receipt');
    const chooser = page.waitForEvent('filechooser');
    await page.getByTestId('almoner-attach').click();
    await (await chooser).setFiles({ name: 'receipt.png', mimeType: 'image/png', buffer: image });

    const shown = page.getByTestId('almoner-attachment').and(page.getByRole('img', { name: 'receipt.png' }));
    const alert = page.getByTestId('almoner-error');
    const end = Date.now() + 20_000;
    while (!(await shown.count())) {
      const refused = ((await alert.textContent()) ?? '').trim();
      if (refused) assert.fail(`the widget refused the image: ${refused}`);
      assert.ok(Date.now() < end, 'the image did not show in the widget within 20 s');
      await sleep(200);
    }
    await page.waitForFunction(
      () => {
        const img = document.querySelector('[data-almoner-widget]').shadowRoot.querySelector('img[data-testid="almoner-attachment"]');
        return img && img.complete && img.naturalWidth === 48;
      },
      undefined,
      { timeout: 10_000 },
    );
    const withFile = await staffSee((m) => m.attachments?.some((f) => f.file_name === 'receipt.png'), 'the image');
    assert.equal(withFile.length, 1);
    const [file] = withFile[0].attachments;
    assert.equal(withFile[0].body, 'Here is my receipt', 'the text and the picture are one message');
    assert.equal(await page.getByTestId('almoner-input').inputValue(), '', 'the box was emptied');
    assert.equal(file.content_type, 'image/png');
    assert.equal(file.size_bytes, image.length);
    await screenshot(page, 'widget-image');

    // A type the tenant's limits refuse: the widget shows why (the problem's detail), and nothing is sent.
    const before = (await staffMessages(conversationId)).length;
    const refusedChooser = page.waitForEvent('filechooser');
    await page.getByTestId('almoner-attach').click();
    await (await refusedChooser).setFiles({ name: 'setup.exe', mimeType: 'application/x-msdownload', buffer: Buffer.from('MZ, not really a program') });
    const error = page.getByTestId('almoner-error');
    await error.filter({ hasText: /./ }).waitFor({ timeout: 10_000 });
    console.log(`the widget showed, for a refused file: ${(await error.textContent()).trim()}`);
    await message('setup.exe').filter({ hasText: 'Not sent' }).waitFor();
    assert.equal((await staffMessages(conversationId)).length, before, 'nothing was sent');
    await screenshot(page, 'widget-attachment-refused');
    assert.deepEqual(cspViolations, [], "the widget did something the host page's Content-Security-Policy refuses");
  });

  test('a forged identifier hash gets no token, and the widget shows no conversation', async () => {
    const forgedContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const p = await forgedContext.newPage();
      const answer = p.waitForResponse((r) => r.url().includes('/api/identity/v1/widget/token') && r.request().method() === 'POST');
      await p.goto(`${host.origin}/forged`);
      const res = await answer;
      assert.equal(res.status(), 401);
      assert.equal((await res.json()).code, 'identity_unverified');

      await p.getByTestId('almoner-launcher').click();
      const alert = p.getByTestId('almoner-panel').getByRole('alert');
      await alert.filter({ hasText: /./ }).waitFor({ timeout: 10_000 });
      assert.equal(await messages(p).count(), 0, 'no conversation is shown');
      assert.equal(await p.getByTestId('almoner-input').isVisible(), false, 'no message can be written');
      await screenshot(p, 'widget-forged-hash');
      await checkA11y(p, 'chat widget refused');
    } finally {
      await forgedContext.close();
    }
  });

  test('a page of an origin the tenant does not allow is refused', async () => {
    // What the browser cannot show the page (the refusal carries no CORS headers), asked from Node with its Origin.
    const config = await fetch(`${CONSOLE_URL}/api/identity/v1/widget/config?tenant_id=${tenant}`, { headers: { origin: otherHost.origin } });
    assert.equal(config.status, 403);
    assert.equal((await json(config, 'the config for another origin')).code, 'origin_not_allowed');
    assert.equal(config.headers.get('access-control-allow-origin'), null);
    const tokenFor = (origin) =>
      fetch(`${CONSOLE_URL}/api/identity/v1/widget/token`, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/json' },
        body: JSON.stringify({ tenant_id: tenant, identifier, identifier_hash: hash }),
      });
    const refused = await tokenFor(otherHost.origin);
    assert.equal(refused.status, 403);
    assert.equal((await json(refused, 'a token for another origin')).code, 'origin_not_allowed');
    // A member token issued to the allowed origin is no use from another one.
    const issued = await tokenFor(host.origin);
    const grant = await json(issued, 'a token for the allowed origin');
    assert.equal(issued.status, 200, JSON.stringify(grant));
    const elsewhere = await fetch(`${CONSOLE_URL}/api/messaging/v1/member/conversations`, {
      headers: { origin: otherHost.origin, authorization: `Bearer ${grant.access_token}` },
    });
    assert.equal(elsewhere.status, 403);
    assert.equal((await json(elsewhere, 'the member API from another origin')).code, 'origin_not_allowed');

    // In the browser: the page gets no settings, so no token and no conversation.
    const otherContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const p = await otherContext.newPage();
      const tokenRequests = [];
      p.on('request', (r) => r.url().includes('/api/identity/v1/widget/token') && tokenRequests.push(r.url()));
      const outcome = new Promise((resolve) => {
        const isConfig = (r) => r.url().includes('/api/identity/v1/widget/config');
        p.on('response', (r) => isConfig(r) && resolve({ status: r.status() }));
        p.on('requestfailed', (r) => isConfig(r) && resolve({ failed: r.failure()?.errorText }));
      });
      await p.goto(`${otherHost.origin}/`);
      const seen = await outcome;
      assert.ok(seen.status === 403 || seen.failed, `the settings request from another origin: ${JSON.stringify(seen)}`);
      await p.getByTestId('almoner-launcher').click();
      const alert = p.getByTestId('almoner-panel').getByRole('alert');
      await alert.filter({ hasText: /./ }).waitFor({ timeout: 20_000 });
      assert.equal(await messages(p).count(), 0, 'no conversation is shown');
      assert.equal(await p.getByTestId('almoner-input').isVisible(), false, 'no message can be written');
      assert.deepEqual(tokenRequests, [], 'no token was asked for');
      await screenshot(p, 'widget-origin-not-allowed');
    } finally {
      await otherContext.close();
    }
  });
  test('a page without the member asks them to sign in; AlmonerWidget.identify() signs them in later', async () => {
    const anonymousContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const p = await anonymousContext.newPage();
      const tokenRequests = [];
      p.on('request', (r) => r.url().includes('/api/identity/v1/widget/token') && tokenRequests.push(r.url()));
      await p.goto(`${host.origin}/anonymous`);
      await p.getByTestId('almoner-launcher').click();
      await p.getByTestId('almoner-panel').getByText('Please sign in to chat.').waitFor();
      assert.equal(await p.getByTestId('almoner-input').isVisible(), false, 'no message can be written');
      assert.deepEqual(tokenRequests, [], 'no token is asked for without an identity');
      await screenshot(p, 'widget-sign-in-needed');
      await checkA11y(p, 'chat widget asking to sign in');

      // The page's own script identifies the member (say, after its sign-in finished).
      await p.evaluate(([identifier, identifierHash]) => window.AlmonerWidget.identify({ identifier, identifierHash }), [identifier, hash]);
      await p.getByTestId('almoner-status').filter({ hasText: /^Connected$/ }).waitFor({ timeout: 10_000 });
      await message(firstMessage, p).waitFor({ timeout: 10_000 });
      await p.getByTestId('almoner-input').waitFor();
      assert.equal(await p.getByTestId('almoner-panel').getByText('Please sign in to chat.').count(), 0);

      // close() and open() from the page's script.
      await p.evaluate(() => window.AlmonerWidget.close());
      await p.getByTestId('almoner-panel').waitFor({ state: 'hidden' });
      assert.equal(await p.getByTestId('almoner-launcher').getAttribute('aria-expanded'), 'false');
      await p.evaluate(() => window.AlmonerWidget.open());
      await p.getByTestId('almoner-panel').waitFor();
      assert.equal(await p.getByTestId('almoner-launcher').getAttribute('aria-expanded'), 'true');
    } finally {
      await anonymousContext.close();
    }
  });

  test('where identity is not required, a visitor chats under an id of their own, kept for their next visit', async () => {
    const settings = {
      allowed_origins: [host.origin],
      identity_required: false,
      greeting,
      accent_colour: '#0b6e4f',
      notify_email_on_reply: false,
      reply_mail_url: null,
    };
    const put = await api('PUT', '/api/identity/v1/widget', staffToken, settings);
    assert.equal(put.status, 200, `PUT /api/identity/v1/widget: ${await put.text()}`);
    const visitorContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const p = await visitorContext.newPage();
      const tokenRequests = [];
      p.on('request', (r) => r.url().includes('/api/identity/v1/widget/token') && tokenRequests.push(r.postDataJSON()));
      await p.goto(`${host.origin}/anonymous`);
      await p.getByTestId('almoner-launcher').waitFor();
      await sleep(500);
      assert.deepEqual(tokenRequests, [], 'a visitor who has not opened the chat gets no token (and no record)');

      await p.getByTestId('almoner-launcher').click();
      await p.getByTestId('almoner-status').filter({ hasText: /^Connected$/ }).waitFor({ timeout: 10_000 });
      const visitorId = await p.evaluate(() =>
        Object.entries(localStorage).find(([k]) => k.startsWith('almoner-widget:visitor:'))?.[1],
      );
      assert.match(visitorId ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.deepEqual(tokenRequests, [{ tenant_id: tenant, identifier: visitorId }], 'a visitor token, without a hash');
      const text = `A question from a visitor ${unique('v')}`;
      await p.getByTestId('almoner-input').fill(text);
      await p.getByTestId('almoner-input').press('Enter');
      await message(text, p).filter({ hasNotText: 'Sending…' }).waitFor({ timeout: 10_000 });

      const end = Date.now() + 15_000;
      for (;;) {
        const res = await api('GET', '/api/messaging/v1/conversations?limit=100', staffToken);
        const found = (await res.json()).data.find((c) => c.member?.identifier === visitorId);
        if (found) {
          assert.equal(found.member.verified, false, 'a visitor is not a verified member');
          break;
        }
        assert.ok(Date.now() < end, 'the visitor conversation did not reach staff within 15 s');
        await sleep(250);
      }

      // Next visit: the same id, so the same conversation.
      await p.reload();
      await p.getByTestId('almoner-launcher').click();
      await message(text, p).waitFor({ timeout: 10_000 });
      assert.equal(tokenRequests.at(-1).identifier, visitorId);
    } finally {
      await visitorContext.close();
      const restored = await api('PUT', '/api/identity/v1/widget', staffToken, { ...settings, identity_required: true });
      assert.equal(restored.status, 200);
    }
  });
});
