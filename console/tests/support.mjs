// Shared steps of the console's browser tests: launching Debian's Chromium through playwright-core, signing in
// through a mailed magic link, screenshots, and axe-core accessibility checks.
//
// Environment (provided by the harness): CONSOLE_URL, MAILBOX_URL, CHROMIUM_BIN, SCREENSHOT_DIR,
// ALMONER_ADMIN_EMAIL, ALMONER_VIEWER_EMAIL, ALMONER_OTHER_ADMIN_EMAIL, ALMONER_EXISTING_DONOR.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (see console/README.md)`);
  return v;
}

export const CONSOLE_URL = (process.env.CONSOLE_URL ?? '').replace(/\/+$/, '');

export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launch() {
  return chromium.launch({ executablePath: env('CHROMIUM_BIN'), args: CHROMIUM_ARGS });
}

export function existingDonor() {
  return JSON.parse(env('ALMONER_EXISTING_DONOR'));
}

/** A name no other run has used. */
export function unique(prefix) {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The messages the SMTP sink holds for an address, oldest first. */
export async function mailbox(address) {
  const res = await fetch(`${env('MAILBOX_URL').replace(/\/+$/, '')}/messages?to=${encodeURIComponent(address)}`);
  assert.equal(res.status, 200, `mailbox answered ${res.status}`);
  return res.json();
}

const LINK = /https?:\/\/[^\s<>"]+/g;

function signInLink(message) {
  return (message.text ?? '').match(LINK)?.find((u) => u.includes('/sign-in/callback#token=')) ?? null;
}

/** Waits (up to ~15 s) for a sign-in link mailed after the first `before` messages. */
export async function waitForLink(address, before, timeoutMs = 15_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const messages = await mailbox(address);
    for (const m of messages.slice(before).reverse()) {
      const link = signInLink(m);
      if (link) return link;
    }
    await sleep(250);
  }
  throw new Error(`no sign-in link was mailed to ${address} within ${timeoutMs / 1000} s`);
}

/**
 * The link as the console under test serves it: identity builds links from its configured console URL; when that
 * differs from CONSOLE_URL (another host name for the same gateway), the path and token are kept.
 */
function onConsole(link) {
  const u = new URL(link);
  const base = new URL(CONSOLE_URL);
  if (u.origin !== base.origin) {
    console.warn(`note: the mailed link's origin ${u.origin} is not CONSOLE_URL ${base.origin}; following it on CONSOLE_URL`);
  }
  return `${base.origin}${u.pathname}${u.search}${u.hash}`;
}

/** Asks for a sign-in link on the sign-in page, as a person would. */
export async function requestLink(page, email) {
  await page.goto(`${CONSOLE_URL}/sign-in`);
  await page.getByLabel('Email address').fill(email);
  await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
  const sent = page.getByText('If that address belongs to a staff member, a link is on its way.');
  const refused = page.getByRole('alert');
  await sent.or(refused).first().waitFor({ timeout: 10_000 });
  if (await refused.isVisible()) {
    throw new Error(`asking for a sign-in link failed: ${await refused.innerText()} (the harness may need a higher sign_in.max_links_per_address)`);
  }
}

/**
 * Signs in through a mailed link in a fresh context. Returns the page (on the console, signed in), its context,
 * the access token from the /sign-in/tokens answer, the grant itself and the link (used once already).
 */
export async function signIn(browser, email) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const before = (await mailbox(email)).length;
  await requestLink(page, email);
  const link = onConsole(await waitForLink(email, before));
  const answer = page.waitForResponse((r) => r.url().endsWith('/api/identity/v1/sign-in/tokens') && r.request().method() === 'POST');
  await page.goto(link);
  const res = await answer;
  assert.equal(res.status(), 200, `POST /sign-in/tokens answered ${res.status()}`);
  const grant = await res.json();
  await page.waitForURL((u) => !u.pathname.startsWith('/sign-in'), { timeout: 10_000 });
  await page.locator('header').getByText(grant.staff.name).waitFor();
  return { page, context, accessToken: grant.access_token, grant, link };
}

let axeCache;
function axeSource() {
  axeCache ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  return axeCache;
}

let shotSeq = 0;

/** A full-page screenshot into SCREENSHOT_DIR, named after the test and step. */
export async function screenshot(page, name) {
  const dir = process.env.SCREENSHOT_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${String(++shotSeq).padStart(2, '0')}-${name.replace(/[^a-z0-9_-]+/gi, '-')}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

/** Runs axe-core on the page; fails on any `serious` or `critical` violation, printing each. */
export async function checkA11y(page, name) {
  const hasAxe = await page.evaluate(() => typeof window.axe !== 'undefined');
  // Evaluated through the DevTools protocol, which the console's CSP (script-src 'self', no inline script) does not
  // govern: a <script> tag (page.addScriptTag) would be refused, as it should be.
  if (!hasAxe) await page.evaluate(`${axeSource()}\n;void 0`);
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of results.violations) {
    const where = v.nodes.slice(0, 5).map((n) => n.target.join(' ')).join(' | ');
    console.log(`[axe ${name}] ${v.impact}: ${v.id}: ${v.help} (${v.nodes.length} nodes: ${where})`);
  }
  assert.equal(bad.length, 0, `${name}: ${bad.length} serious or critical accessibility violations: ${bad.map((v) => v.id).join(', ')}`);
}

/** Waits until every chart on the page has drawn (`data-rendered="true"`), and at least `expected` are there. */
export async function waitForCharts(page, expected = 1, timeout = 15_000) {
  await page.waitForFunction(
    (n) => {
      const charts = document.querySelectorAll('[data-testid^="chart-"]');
      const want = Number(document.querySelector('[data-charts-expected]')?.getAttribute('data-charts-expected') ?? n);
      return charts.length >= Math.max(n, want) && [...charts].every((c) => c.getAttribute('data-rendered') === 'true');
    },
    expected,
    { timeout },
  );
}

/** Waits for the page's heading and for loading messages to go. */
export async function settle(page, heading) {
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('.loading').length === 0, undefined, { timeout: 15_000 });
}

/** Calls the API through the gateway with a bearer token, from Node. */
export async function api(method, path, token, body) {
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method === 'POST') headers['idempotency-key'] = crypto.randomUUID();
  return fetch(`${CONSOLE_URL}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** Enters a gift for a new donor on the gift entry page; returns the confirmation's text. */
export async function enterGiftForNewDonor(page, { first, last, email, postcode, amount }) {
  await page.goto(`${CONSOLE_URL}/gifts/new`);
  await page.getByRole('heading', { level: 1, name: 'Gift entry' }).waitFor();
  await page.getByRole('button', { name: 'New donor' }).click();
  await page.getByLabel('First name').fill(first);
  await page.getByLabel('Last name (required)').fill(last);
  if (email) await page.getByLabel('Email', { exact: true }).fill(email);
  if (postcode) await page.getByLabel('Postcode').fill(postcode);
  const amountField = page.getByLabel('Amount');
  await amountField.fill(amount);
  // Keyboard-first: Enter in a field saves the gift.
  await amountField.press('Enter');
  const confirmation = page.getByTestId('gift-confirmation');
  await page.waitForFunction(() => /recorded/.test(document.querySelector('[data-testid="gift-confirmation"]')?.textContent ?? ''), undefined, {
    timeout: 15_000,
  });
  return confirmation.innerText();
}

/**
 * Waits until the element labelled `label` has focus. The console moves focus in a task after the render that
 * shows the change (a setTimeout), so reading document.activeElement straight away races it.
 */
export async function waitForFocusOnLabel(page, label, what = label) {
  const id = await page.getByLabel(label).getAttribute('id');
  try {
    await page.waitForFunction((want) => document.activeElement?.id === want, id, { timeout: 5_000 });
  } catch {
    const actual = await page.evaluate(() => document.activeElement?.outerHTML?.slice(0, 200) ?? 'nothing');
    throw new Error(`focus did not move to ${what} (#${id}); it is on ${actual}`);
  }
}

/** Waits until the element with data-testid `testId` has focus (see waitForFocusOnLabel). */
export async function waitForFocusOnTestId(page, testId) {
  try {
    await page.waitForFunction((want) => document.activeElement?.getAttribute('data-testid') === want, testId, { timeout: 5_000 });
  } catch {
    const actual = await page.evaluate(() => document.activeElement?.outerHTML?.slice(0, 200) ?? 'nothing');
    throw new Error(`focus did not move to [data-testid=${testId}]; it is on ${actual}`);
  }
}

/** The claims of a JWT (its payload, not verified): `tid` is the tenant, `sub` the subject. */
export function jwtClaims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}
