// Dashboard first-load benchmark (a script, not a test): signs in once, then loads / cold N times, each in a
// fresh browser context carrying the session's cookies, and measures navigation start to every chart drawn
// (`[data-rendered="true"]`) and the bytes transferred. Prints the built bundle's sizes too.
//
//   CONSOLE_URL=... MAILBOX_URL=... CHROMIUM_BIN=/usr/bin/chromium ALMONER_ADMIN_EMAIL=... node console/tests/bench.mjs [N]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { CONSOLE_URL, env, launch, signIn } from './support.mjs';

const N = Number(process.argv[2] ?? process.env.BENCH_RUNS ?? 5);
const here = dirname(fileURLToPath(import.meta.url));

function kib(n) {
  return `${(n / 1024).toFixed(1)} KiB`;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function bundleSizes() {
  const dir = join(here, '..', 'dist', 'assets');
  let files;
  try {
    files = readdirSync(dir);
  } catch {
    console.log(`bundle: ${dir} not found (run npm run build first)`);
    return;
  }
  let raw = 0;
  let gz = 0;
  for (const f of files.sort()) {
    const bytes = readFileSync(join(dir, f));
    const g = gzipSync(bytes, { level: 9 }).length;
    raw += statSync(join(dir, f)).size;
    gz += g;
    console.log(`bundle ${f}: ${kib(bytes.length)} (${kib(g)} gzip)`);
  }
  console.log(`bundle total: ${kib(raw)} (${kib(gz)} gzip)`);
}

async function main() {
  const browser = await launch();
  try {
    const first = await signIn(browser, env('ALMONER_ADMIN_EMAIL'));
    let state = await first.context.storageState();
    await first.context.close();

    const times = [];
    const transferred = [];
    for (let i = 0; i < N; i++) {
      const context = await browser.newContext({ storageState: state, viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
      let bytes = 0;
      cdp.on('Network.loadingFinished', (e) => {
        bytes += e.encodedDataLength;
      });
      await page.goto(`${CONSOLE_URL}/`, { waitUntil: 'commit' });
      // performance.now() counts from the navigation's start (timeOrigin).
      const handle = await page.waitForFunction(
        () => {
          const charts = document.querySelectorAll('[data-testid^="chart-"]');
          const want = Number(document.querySelector('[data-charts-expected]')?.getAttribute('data-charts-expected') ?? 1);
          const done = charts.length >= want && [...charts].every((c) => c.getAttribute('data-rendered') === 'true');
          return done ? performance.now() : false;
        },
        undefined,
        { polling: 'raf', timeout: 30_000 },
      );
      const ms = await handle.jsonValue();
      // Let late responses finish before counting bytes. The inbox's live stream (for staff who may read
      // conversations) stays open, so the network is never idle: wait for it at most two seconds.
      await page.waitForLoadState('networkidle', { timeout: 2_000 }).catch(() => undefined);
      times.push(ms);
      transferred.push(bytes);
      console.log(`run ${i + 1}: ${Math.round(ms)} ms, ${kib(bytes)}`);
      // The refresh token rotated on this load: carry the new cookie into the next context.
      state = await context.storageState();
      await context.close();
    }
    console.log(
      `dashboard first load: median ${Math.round(median(times))} ms, p max ${Math.round(Math.max(...times))} ms; ` +
        `transferred ${kib(median(transferred))} (n=${N})`,
    );
  } finally {
    await browser.close();
  }
  bundleSizes();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
