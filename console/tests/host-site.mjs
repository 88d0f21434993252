// The chat widget's browser tests' host site: a charity's own website, started here with node:http on another
// origin than the gateway, whose pages embed the widget with one script tag; and a small PNG to attach.
import { createServer } from 'node:http';
import { deflateSync } from 'node:zlib';
import { CONSOLE_URL } from './support.mjs';

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A tiny web server on 127.0.0.1 (a port of its own, so another origin than the gateway) serving set pages. */
export async function hostSite() {
  const pages = new Map();
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    const page = pages.get(path);
    if (page === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...page.headers }).end(page.html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    set: (path, html, headers = {}) => pages.set(path, { html, headers }),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** A host site's page embedding the widget with one script tag; `window.__loadedAt` tells a reload apart. */
export function hostPage({ tenant, identifier, hash, name, email, nonce }) {
  const attrs = { src: `${CONSOLE_URL}/widget.js`, 'data-tenant': tenant };
  if (identifier) attrs['data-identifier'] = identifier;
  if (hash) attrs['data-identifier-hash'] = hash;
  if (name) attrs['data-name'] = name;
  if (email) attrs['data-email'] = email;
  const tag = Object.entries(attrs)
    .map(([k, v]) => `${k}="${escapeHtml(v)}"`)
    .join(' ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Friends of the Test Charity</title></head>
<body><header><h1>Friends of the Test Charity</h1></header>
<main><p>Welcome. Questions about your donation? Use the chat button.</p></main>
<script${nonce ? ` nonce="${nonce}"` : ''}>window.__loadedAt = Date.now();</script>
<script ${tag}${nonce ? ` nonce="${nonce}"` : ''} async></script>
</body></html>`;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
/** A small valid PNG: `size` × `size` pixels of one colour (8-bit RGB). */
export function png(r, g, b, size = 48) {
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'ascii');
    data.copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: size }, () => [r, g, b]).flat())]);
  const pixels = Buffer.concat(Array.from({ length: size }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(pixels)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
