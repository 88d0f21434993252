// The widget's DOM: a launcher button and a chat panel inside an open shadow root on one host element, so the
// host page's styles do not reach in and the widget's do not leak out. No framework: the message list is kept
// in step by key, moving or touching only what changed, so the live region announces new messages once.
import { CSS, type Palette } from './style';
import type { Attachment, AttachmentLink } from './types';

export interface Item {
  key: string;
  author: 'member' | 'staff';
  body: string;
  conversationId?: string;
  attachments: Attachment[];
  /** Files still being uploaded with a pending message. */
  files: string[];
  state: 'sent' | 'sending' | 'failed';
  error?: string;
  at?: string;
  seen?: boolean;
  retry?: () => void;
}

export interface UiHandlers {
  send(text: string): void;
  /** A file chosen, with the text written so far (sent together, as one message). */
  attach(file: File, text: string): void;
  opened(): void;
  closed(): void;
  link(conversationId: string, objectId: string): Promise<AttachmentLink>;
}

export type Mode = 'loading' | 'chat' | 'signin' | 'blocked';

const CHAT_ICON =
  '<svg viewBox="0 0 24 24" aria-hidden="true"><path fill="currentColor" d="M6 4h12a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H9l-5 4V6a2 2 0 0 1 2-2z"/></svg>';
const CLIP_ICON =
  '<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"><path d="M21 11.5l-8.5 8.5a5 5 0 0 1-7-7L14 4.5a3.5 3.5 0 0 1 5 5L10.5 18a2 2 0 0 1-3-3l8-8"/></svg>';

type Attrs = Record<string, string | boolean>;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...kids: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === true) e.setAttribute(k, '');
    else if (v !== false) e.setAttribute(k, v);
  }
  e.append(...kids);
  return e;
}

function size(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1048576 ? `${Math.round(bytes / 1024)} kB` : `${(bytes / 1048576).toFixed(1)} MB`;
}

function time(at: string): string {
  const d = new Date(at);
  return isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export class Ui {
  readonly host = h('div', { 'data-almoner-widget': true });
  readonly #root: HTMLElement;
  readonly #launcher: HTMLButtonElement;
  readonly #badge: HTMLElement;
  readonly #panel: HTMLElement;
  readonly #greet: HTMLElement;
  readonly #status: HTMLElement;
  readonly #log: HTMLElement;
  readonly #empty: HTMLElement;
  readonly #notice: HTMLElement;
  readonly #error: HTMLElement;
  readonly #composer: HTMLFormElement;
  readonly #input: HTMLTextAreaElement;
  readonly #file: HTMLInputElement;
  readonly #close: HTMLButtonElement;
  readonly #els = new Map<string, HTMLElement>();
  isOpen = false;

  readonly #on: UiHandlers;

  constructor(on: UiHandlers) {
    this.#on = on;
    const shadow = this.host.attachShadow({ mode: 'open' });
    this.#greet = h('p', { class: 'greet', id: 'almoner-greeting' });
    this.#close = h('button', { type: 'button', class: 'close', 'aria-label': 'Close chat' }, '×');
    this.#status = h('p', { class: 'status', role: 'status', 'data-testid': 'almoner-status' }, 'Connecting…');
    this.#log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', tabindex: '0' });
    this.#empty = h('p', { class: 'empty' }, 'No messages yet.');
    this.#log.append(this.#empty);
    this.#notice = h('p', { class: 'notice', hidden: true });
    this.#error = h('p', { class: 'error', role: 'alert', 'data-testid': 'almoner-error' });
    this.#input = h('textarea', { id: 'almoner-input', 'data-testid': 'almoner-input', rows: '2', placeholder: 'Write a message…' });
    this.#file = h('input', { type: 'file', hidden: true, tabindex: '-1' });
    const attach = h('button', { type: 'button', class: 'icon', 'aria-label': 'Attach a file', 'data-testid': 'almoner-attach' });
    attach.innerHTML = CLIP_ICON;
    this.#composer = h(
      'form',
      { class: 'composer' },
      h('label', { for: 'almoner-input', class: 'sr' }, 'Message'),
      this.#input,
      this.#file,
      attach,
      h('button', { type: 'submit', class: 'send', 'data-testid': 'almoner-send' }, 'Send'),
    );
    this.#panel = h(
      'div',
      {
        class: 'panel',
        id: 'almoner-panel',
        role: 'dialog',
        'aria-labelledby': 'almoner-title',
        'aria-describedby': 'almoner-greeting',
        'data-testid': 'almoner-panel',
        hidden: true,
      },
      h('div', { class: 'head' }, h('div', {}, h('p', { class: 'title', id: 'almoner-title' }, 'Chat with us'), this.#greet), this.#close),
      this.#status,
      this.#log,
      this.#notice,
      this.#error,
      this.#composer,
    );
    this.#badge = h('span', { class: 'badge', id: 'almoner-unread', hidden: true });
    this.#launcher = h('button', {
      type: 'button',
      class: 'launcher',
      'aria-label': 'Chat with us',
      'aria-expanded': 'false',
      'aria-controls': 'almoner-panel',
      'data-testid': 'almoner-launcher',
    });
    this.#launcher.innerHTML = CHAT_ICON;
    this.#launcher.append(this.#badge);
    this.#root = h('div', { class: 'root' }, this.#panel, this.#launcher);
    // A constructed style sheet where the browser has them: a host page's Content-Security-Policy governs <style>
    // elements (shadow roots' too) but not style sheets made by script.
    if ('adoptedStyleSheets' in shadow && 'replaceSync' in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      shadow.adoptedStyleSheets = [sheet];
    } else shadow.append(h('style', {}, CSS));
    shadow.append(this.#root);

    this.#launcher.addEventListener('click', () => (this.isOpen ? this.hide(false) : this.show()));
    this.#close.addEventListener('click', () => this.hide(true));
    this.#panel.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        this.hide(true);
      }
    });
    this.#composer.addEventListener('submit', (e) => {
      e.preventDefault();
      this.#submit();
    });
    this.#input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.#submit();
      }
    });
    attach.addEventListener('click', () => this.#file.click());
    this.#file.addEventListener('change', () => {
      const f = this.#file.files?.[0];
      this.#file.value = '';
      if (!f) return;
      const text = this.#input.value;
      this.#input.value = '';
      this.#on.attach(f, text);
    });
  }

  #submit(): void {
    const text = this.#input.value;
    if (!text.trim()) return;
    this.#input.value = '';
    this.#on.send(text);
    this.#input.focus();
  }

  theme(p: Palette, greeting: string): void {
    this.#root.style.setProperty('--accent', p.accent);
    this.#root.style.setProperty('--on-accent', p.onAccent);
    this.#root.style.setProperty('--focus', p.focus);
    this.#greet.textContent = greeting;
  }

  setMode(mode: Mode, notice = ''): void {
    this.#composer.hidden = mode !== 'chat';
    this.#notice.hidden = !notice;
    this.#notice.textContent = notice;
    this.#log.hidden = mode === 'signin' || mode === 'blocked';
    if (mode !== 'chat') this.#status.hidden = mode !== 'loading';
    else this.#status.hidden = false;
  }

  setStatus(text: string, state: string): void {
    this.#status.textContent = text;
    this.#status.dataset.state = state;
  }

  setError(text: string): void {
    // The list gets shorter or taller with the message: it stays at its end if it was there.
    const log = this.#log;
    const end = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    this.#error.textContent = text;
    if (end) log.scrollTop = log.scrollHeight;
  }

  setUnread(n: number): void {
    this.#badge.hidden = n === 0 || this.isOpen;
    this.#badge.replaceChildren(n > 9 ? '9+' : String(n), h('span', { class: 'sr' }, ' unread'));
    if (n && !this.isOpen) this.#launcher.setAttribute('aria-describedby', 'almoner-unread');
    else this.#launcher.removeAttribute('aria-describedby');
  }

  show(): void {
    this.isOpen = true;
    this.#panel.hidden = false;
    this.#badge.hidden = true;
    this.#launcher.setAttribute('aria-expanded', 'true');
    (this.#composer.hidden ? this.#close : this.#input).focus();
    this.#log.scrollTop = this.#log.scrollHeight;
    this.#on.opened();
  }

  hide(returnFocus: boolean): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.#panel.hidden = true;
    this.#launcher.setAttribute('aria-expanded', 'false');
    if (returnFocus) this.#launcher.focus();
    this.#on.closed();
  }

  /** Whether focus is inside the widget (for close() from the page's own script). */
  hasFocus(): boolean {
    return this.host.shadowRoot!.activeElement !== null;
  }

  render(items: Item[]): void {
    const log = this.#log;
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    const keys = new Set(items.map((i) => i.key));
    for (const [k, el] of this.#els) {
      if (!keys.has(k)) {
        el.remove();
        this.#els.delete(k);
      }
    }
    this.#empty.hidden = items.length > 0;
    let prev: Node = this.#empty;
    for (const item of items) {
      let el = this.#els.get(item.key);
      if (!el) {
        el = h('div', { 'data-testid': 'almoner-message' });
        this.#els.set(item.key, el);
      }
      this.#fill(el, item);
      if (prev.nextSibling !== el) log.insertBefore(el, prev.nextSibling);
      prev = el;
    }
    const last = items[items.length - 1];
    if (atEnd || (last && last.author === 'member' && last.state === 'sending')) log.scrollTop = log.scrollHeight;
  }

  #fill(el: HTMLElement, item: Item): void {
    const sig = JSON.stringify([item.body, item.state, item.error, item.at, item.seen, item.attachments.map((a) => a.object_id), item.files]);
    if (el.dataset.sig === sig) return;
    el.dataset.sig = sig;
    el.className = `msg ${item.author} ${item.state}`;
    el.dataset.author = item.author;
    const kids: (Node | string)[] = [h('span', { class: 'sr' }, item.author === 'member' ? 'You: ' : 'Reply: ')];
    if (item.body) kids.push(item.body);
    for (const name of item.files) kids.push(h('span', { class: 'meta' }, item.state === 'sending' ? `Uploading ${name}…` : name));
    for (const a of item.attachments) kids.push(this.#attachment(item.conversationId, a));
    const meta = h('span', { class: 'meta' });
    if (item.state === 'sending') meta.append('Sending…');
    else if (item.state === 'failed') {
      meta.append(`Not sent: ${item.error ?? 'unknown error'}`);
      if (item.retry) {
        const retry = h('button', { type: 'button' }, 'Try again');
        retry.addEventListener('click', item.retry);
        meta.append(retry);
      }
    } else meta.append(item.at ? time(item.at) : '', item.seen ? ' · Seen' : '');
    kids.push(meta);
    el.replaceChildren(...kids);
  }

  #attachment(conversationId: string | undefined, a: Attachment): HTMLElement {
    const box = h('span', { class: 'meta' }, `${a.file_name} (${size(a.size_bytes)})`);
    if (!conversationId) return box;
    const image = a.content_type.startsWith('image/');
    const load = () => this.#on.link(conversationId, a.object_id);
    load().then(
      (l) => {
        if (image) {
          const img = h('img', { src: l.url, alt: a.file_name, 'data-testid': 'almoner-attachment' });
          // Its height arrives with it: the list stays at its end if it was there.
          const log = this.#log;
          const end = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
          img.addEventListener('load', () => end && (log.scrollTop = log.scrollHeight));
          box.replaceChildren(img);
        } else {
          const link = h('a', { href: l.url, target: '_blank', rel: 'noopener', download: a.file_name, 'data-testid': 'almoner-attachment' });
          link.textContent = `${a.file_name} (${size(a.size_bytes)})`;
          // Download links are short-lived: fetched again (from a cache that knows their expiry) before a click.
          const fresh = () => void load().then((n) => (link.href = n.url), () => undefined);
          link.addEventListener('mouseenter', fresh);
          link.addEventListener('focus', fresh);
          box.replaceChildren(link);
        }
      },
      (e: Error) => box.append(`: cannot be shown (${e.message})`),
    );
    return box;
  }
}
