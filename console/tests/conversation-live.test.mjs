// A conversation live end to end, both sides in one browser: staff have the inbox open (/inbox) before a member,
// on a host site of another origin embedding the chat widget (as in widget.test.mjs), attaches a picture (the
// widget's attach button; a PNG made here) and writes a line. The open inbox lists the new conversation within a
// second of the widget's send being answered, without a reload; opened, it shows the message and the picture.
// Staff answer through the conversation's Reply box: the widget shows the reply within a second, without a
// reload. With the member's network cut, two more replies are sent from the inbox; once the network is back the
// widget shows both within five seconds, each exactly once, in order, still without a reload.
//
// The latencies (the new conversation in the inbox, the reply in the widget) are printed. They are measured from
// the browser's own record of the request (its start time plus responseEnd, wall clock) to the moment a
// MutationObserver in the other page saw the element appear (Date.now() there): both pages run in the same browser
// on the same machine, so the two clocks are one.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { hostPage, hostSite, png } from './host-site.mjs';
import { api, CONSOLE_URL, env, jwtClaims, launch, screenshot, settle, signIn, unique } from './support.mjs';

const MESSAGING = '/api/messaging/v1';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function json(res, what, status = 200) {
  const text = await res.text();
  assert.equal(res.status, status, `${what} answered ${res.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : undefined;
}

/** Whether a Playwright request is `method` on exactly `path` (of the gateway). */
const isCall = (req, method, path) => req.method() === method && new URL(req.url()).pathname === path;

/**
 * When the browser had the whole answer to `res` (wall clock, ms): its request's start time plus responseEnd, or
 * Node's clock now where the browser does not say.
 */
async function answeredAt(res) {
  await res.finished();
  const t = res.request().timing();
  return t.responseEnd >= 0 ? t.startTime + t.responseEnd : Date.now();
}

/** Counts a page's document loads from now on (a reload is one; a client-side route change is not). */
function countLoads(page) {
  const counter = { loads: 0 };
  page.on('load', () => counter.loads++);
  return counter;
}

test('a conversation live: the open inbox lists a widget member’s picture within a second, replies reach the widget within a second and after an outage, once each', async () => {
  const browser = await launch();
  let host;
  try {
    // ---- staff: signed in, the inbox open and live before the member writes ----
    const staff = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    const inbox = staff.page;
    const token = staff.accessToken;
    const tenant = jwtClaims(token).tid;
    assert.match(tenant ?? '', /^[0-9a-f-]{36}$/, `the staff token's tid: ${tenant}`);
    inbox.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && console.log(`[inbox ${m.type()}] ${m.text()}`));
    inbox.on('response', (r) => r.status() >= 400 && console.log(`[inbox] ${r.request().method()} ${r.url()}: ${r.status()}`));

    // ---- the host site: the tenant allows its origin, requires identity; its server signs the member ----
    const identifier = unique('live-member-');
    const memberName = `Lina Live ${unique('')}`;
    const memberEmail = `${unique('lina-')}@example.org`;
    host = await hostSite();
    await json(
      await api('PUT', '/api/identity/v1/widget', token, {
        allowed_origins: [host.origin],
        identity_required: true,
        greeting: 'Hello! Ask us anything about your donations.',
        accent_colour: '#0b6e4f',
        notify_email_on_reply: false,
        reply_mail_url: null,
      }),
      'PUT /api/identity/v1/widget',
    );
    const { secret } = await json(await api('POST', '/api/identity/v1/widget/secret', token), 'POST /api/identity/v1/widget/secret');
    assert.match(secret, /^[0-9a-f]{64}$/);
    const hash = createHmac('sha256', secret).update(identifier, 'utf8').digest('hex');
    host.set('/', hostPage({ tenant, identifier, hash, name: memberName, email: memberEmail }));

    await inbox.goto(`${CONSOLE_URL}/inbox`);
    await settle(inbox, 'Inbox');
    await inbox.locator('[data-testid="inbox-live"][data-state="live"]').waitFor({ timeout: 15_000 });
    const inboxLoads = countLoads(inbox);
    const inboxUrl = inbox.url();
    assert.equal(new URL(inboxUrl).pathname, '/inbox');
    // A mark that a reload would wipe, and the moment each conversation row (and each preview it shows) first
    // appeared, recorded in the page as the DOM changes.
    await inbox.evaluate(() => {
      window.__inboxNotReloaded = true;
      window.__rowSeen = {};
      window.__previewSeen = {};
      const scan = () => {
        const now = Date.now();
        for (const r of document.querySelectorAll('[data-testid="conversation-row"]')) {
          const id = r.getAttribute('data-conversation-id');
          if (!id) continue;
          window.__rowSeen[id] ??= now;
          const preview = r.querySelector('.preview')?.textContent ?? '';
          window.__previewSeen[id] ??= {};
          window.__previewSeen[id][preview] ??= now;
        }
      };
      scan();
      new MutationObserver(scan).observe(document.body, { childList: true, subtree: true, characterData: true, attributes: true });
    });
    await screenshot(inbox, 'live-inbox-before');

    // ---- the member: the host page, the widget open and connected ----
    const memberContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const member = await memberContext.newPage();
    member.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && console.log(`[widget ${m.type()}] ${m.text()}`));
    member.on('response', (r) => r.status() >= 400 && console.log(`[widget] ${r.request().method()} ${r.url()}: ${r.status()}`));
    // The widget saves the member's name once its stream is ready: the inbox then lists them by it.
    const profileSaved = member.waitForResponse((r) => isCall(r.request(), 'PUT', `${MESSAGING}/member/profile`), { timeout: 20_000 });
    await member.goto(`${host.origin}/`);
    const memberLoads = countLoads(member);
    const memberUrl = member.url();
    const loadedAt = await member.evaluate(() => window.__loadedAt);
    await member.getByTestId('almoner-launcher').click();
    await member.getByTestId('almoner-panel').waitFor();
    await member.getByTestId('almoner-status').filter({ hasText: /^Connected$/ }).waitFor({ timeout: 10_000 });
    const profile = await profileSaved;
    assert.equal(profile.status(), 200, `PUT /member/profile answered ${profile.status()}`);
    // Each staff message the widget shows, with the moment it first appeared (in its open shadow root).
    await member.evaluate(() => {
      const root = document.querySelector('[data-almoner-widget]').shadowRoot;
      const seen = new WeakSet();
      window.__staffSeen = [];
      const scan = () => {
        const now = Date.now();
        for (const el of root.querySelectorAll('[data-testid="almoner-message"][data-author="staff"]')) {
          if (seen.has(el)) continue;
          seen.add(el);
          window.__staffSeen.push({ at: now, text: el.textContent });
        }
      };
      scan();
      new MutationObserver(scan).observe(root, { childList: true, subtree: true, attributes: true });
    });
    const widgetMessages = member.getByTestId('almoner-message');
    const staffInWidget = (text) => member.locator('[data-testid="almoner-message"][data-author="staff"]').filter({ hasText: text });
    const notReloaded = async (what) => {
      assert.equal(await member.evaluate(() => window.__loadedAt), loadedAt, `the host page was reloaded (${what})`);
      assert.equal(memberLoads.loads, 0, `the host page loaded again (${what})`);
      assert.equal(member.url(), memberUrl, `the host page navigated (${what})`);
    };
    const inboxNotReloaded = async (what) => {
      assert.equal(await inbox.evaluate(() => window.__inboxNotReloaded === true), true, `the inbox was reloaded (${what})`);
      assert.equal(inboxLoads.loads, 0, `the inbox loaded a document again (${what})`);
    };

    // ---- the member attaches a picture (the widget sends it at once; the first message starts the conversation) ----
    const image = png(20, 110, 200, 32);
    const fileName = `receipt-${unique('')}.png`;
    const created = member.waitForResponse((r) => isCall(r.request(), 'POST', `${MESSAGING}/member/conversations`), { timeout: 20_000 });
    const chooser = member.waitForEvent('filechooser');
    await member.getByTestId('almoner-attach').click();
    await (await chooser).setFiles({ name: fileName, mimeType: 'image/png', buffer: image });
    const createdRes = await created;
    const sentAt = await answeredAt(createdRes);
    const started = await createdRes.json();
    assert.equal(createdRes.status(), 201, `POST /member/conversations: ${JSON.stringify(started)}`);
    const id = started.conversation.id;
    assert.deepEqual(
      started.message.attachments.map((a) => [a.file_name, a.content_type, a.size_bytes]),
      [[fileName, 'image/png', image.length]],
    );

    // ---- the inbox lists it within a second of that answer, without a reload ----
    const row = inbox.locator(`[data-testid="conversation-row"][data-conversation-id="${id}"]`);
    try {
      await row.waitFor({ timeout: 5_000 });
    } catch {
      assert.fail(`the new conversation ${id} was not listed in the open inbox within 5 s of the widget's send`);
    }
    const rowLatency = Math.round((await inbox.evaluate((cid) => window.__rowSeen[cid], id)) - sentAt);
    console.log(`[latency] the new conversation showed in the open inbox ${rowLatency} ms after the widget's send was answered`);
    assert.ok(rowLatency <= 1_000, `the new conversation took ${rowLatency} ms to show in the open inbox (at most 1000)`);
    assert.equal(inbox.url(), inboxUrl, 'the inbox navigated');
    await inboxNotReloaded('the new conversation');
    await row.getByText(memberName).waitFor({ timeout: 2_000 });
    assert.equal(await row.getAttribute('data-status'), 'open');
    assert.equal(await row.getAttribute('data-unread'), '1');

    // The picture in the widget, and then a line about it: the row follows.
    await member.locator(`img[data-testid="almoner-attachment"][alt="${fileName}"]`).waitFor({ timeout: 10_000 });
    const caption = `Here is the receipt for my gift ${unique('c')}`;
    const captionSent = member.waitForResponse((r) => isCall(r.request(), 'POST', `${MESSAGING}/member/conversations/${id}/messages`), { timeout: 20_000 });
    await member.getByTestId('almoner-input').fill(caption);
    await member.getByTestId('almoner-input').press('Enter');
    const captionRes = await captionSent;
    const captionAt = await answeredAt(captionRes);
    assert.equal(captionRes.status(), 201, `POST /member/conversations/${id}/messages answered ${captionRes.status()}`);
    await row.locator('.preview').filter({ hasText: caption }).waitFor({ timeout: 5_000 });
    const previewLatency = Math.round((await inbox.evaluate(([cid, text]) => window.__previewSeen[cid]?.[text], [id, caption])) - captionAt);
    console.log(`[latency] the member's next message showed in the inbox row ${previewLatency} ms after the widget's send was answered`);
    assert.equal(await row.getAttribute('data-unread'), '2');
    await inboxNotReloaded('the row updated');
    await screenshot(inbox, 'live-inbox-new-conversation');

    // ---- opened: the picture and the message ----
    await row.getByRole('link').click();
    await inbox.waitForURL(new RegExp(`/inbox/${id}$`));
    await settle(inbox, memberName);
    const memberMessages = inbox.locator('[data-testid="inbox-message"][data-author="member"]');
    await memberMessages.filter({ hasText: caption }).waitFor();
    const picture = memberMessages.locator(`img[alt="${fileName}"]`);
    await picture.waitFor({ timeout: 10_000 });
    await inbox.waitForFunction(
      (name) => {
        const img = document.querySelector(`[data-testid="inbox-message"][data-author="member"] img[alt="${name}"]`);
        return img instanceof HTMLImageElement && img.complete && img.naturalWidth === 32;
      },
      fileName,
      { timeout: 10_000 },
    );
    assert.equal(await memberMessages.count(), 2, 'the picture and the message, each once');
    assert.equal(await memberMessages.first().locator('img').count(), 1, 'the picture is the first message');
    await inboxNotReloaded('the conversation opened');
    await screenshot(inbox, 'live-conversation-opened');

    // ---- a reply from the inbox's Reply box reaches the widget within a second, without a reload ----
    const staffMessages = inbox.locator('[data-testid="inbox-message"][data-author="staff"]');
    const replyBox = inbox.getByLabel('Reply');
    /** Sends `text` with the Reply box and its Send button; returns when the browser had the answer (wall clock). */
    async function reply(text) {
      const posted = inbox.waitForResponse((r) => isCall(r.request(), 'POST', `${MESSAGING}/conversations/${id}/messages`), { timeout: 20_000 });
      await replyBox.fill(text);
      await inbox.getByRole('button', { name: 'Send', exact: true }).click();
      const res = await posted;
      const at = await answeredAt(res);
      assert.equal(res.status(), 201, `the reply answered ${res.status()}`);
      await staffMessages.filter({ hasText: text }).waitFor({ timeout: 10_000 });
      assert.equal(await replyBox.inputValue(), '', 'the reply box is emptied');
      return at;
    }
    const firstReply = `Thank you, we have it. ${unique('r')}`;
    const replyAt = await reply(firstReply);
    try {
      await staffInWidget(firstReply).waitFor({ timeout: 5_000 });
    } catch {
      assert.fail('the staff reply did not show in the widget within 5 s');
    }
    const seenAt = await member.evaluate((text) => window.__staffSeen.find((s) => s.text.includes(text))?.at, firstReply);
    const replyLatency = Math.round(seenAt - replyAt);
    console.log(`[latency] the staff reply showed in the widget ${replyLatency} ms after the inbox's send was answered`);
    assert.ok(replyLatency <= 1_000, `the staff reply took ${replyLatency} ms to show in the widget (at most 1000)`);
    await notReloaded('the first reply');
    await inboxNotReloaded('the first reply');
    assert.equal(await staffInWidget(firstReply).count(), 1);
    await screenshot(member, 'live-widget-reply');

    // ---- the member's network cut: two replies meanwhile show once it is back, each exactly once ----
    const status = member.getByTestId('almoner-status');
    await memberContext.setOffline(true);
    await status.filter({ hasText: 'Reconnecting…' }).waitFor({ timeout: 5_000 });
    const a = `First reply while you were away ${unique('a')}`;
    const b = `Second reply while you were away ${unique('b')}`;
    await reply(a);
    await reply(b);
    await sleep(1_500);
    assert.equal(await staffInWidget(a).count(), 0, 'a reply showed while the member was offline: the network was not cut');
    assert.equal(await staffInWidget(b).count(), 0, 'a reply showed while the member was offline: the network was not cut');
    await screenshot(member, 'live-widget-offline');

    await memberContext.setOffline(false);
    const back = Date.now();
    for (const text of [a, b]) {
      const left = Math.max(1, 5_000 - (Date.now() - back));
      try {
        await staffInWidget(text).waitFor({ timeout: left });
      } catch {
        assert.fail(`"${text}" did not show in the widget within 5 s of the network coming back`);
      }
    }
    console.log(`[latency] both replies sent while offline showed in the widget ${Date.now() - back} ms after the network came back`);
    await status.filter({ hasText: /^Connected$/ }).waitFor({ timeout: 5_000 });
    // Settled: nothing arrives twice.
    await sleep(1_500);
    assert.equal(await staffInWidget(a).count(), 1, 'the first reply sent while offline shows exactly once');
    assert.equal(await staffInWidget(b).count(), 1, 'the second reply sent while offline shows exactly once');
    assert.equal(await staffInWidget(firstReply).count(), 1, 'the first reply still shows exactly once');
    const texts = await widgetMessages.allInnerTexts();
    const order = [firstReply, a, b].map((t) => texts.findIndex((x) => x.includes(t)));
    assert.ok(order[0] >= 0 && order[0] < order[1] && order[1] < order[2], `the replies show in their order: ${JSON.stringify(order)}`);
    assert.equal(await member.locator('[data-testid="almoner-message"][data-author="staff"]').count(), 3, 'three staff messages in the widget');
    assert.equal(await member.locator('[data-testid="almoner-message"][data-author="member"]').count(), 2, 'the member’s two messages in the widget');
    await notReloaded('after the outage');
    await inboxNotReloaded('after the outage');
    assert.equal(await staffMessages.count(), 3, 'the inbox shows each reply once');
    await screenshot(member, 'live-widget-back-online');

    await memberContext.close();
    await staff.context.close();
  } finally {
    await browser.close();
    await host?.close();
  }
});
