// Almoner's chat widget: one script tag on a charity's own website.
//
//   <script src="https://<gateway>/widget.js" data-tenant="<tenant uuid>" data-identifier="<member id>"
//           data-identifier-hash="<hex HMAC>" data-name="Ann" data-email="ann@example.org" async></script>
//
// The API is the script's own origin unless `data-api` says otherwise. The page's script can also call
// window.AlmonerWidget.identify({identifier, identifierHash, name, email}), .open() and .close(); the widget
// dispatches `almoner-widget:ready` on window once that object exists. See docs/widget.md.
import { ApiError, getConfig, retryable } from './api';
import { Session, uuid } from './session';
import { palette } from './style';
import { Ui } from './ui';
import type { Identity, WidgetConfig } from './types';

interface WidgetApi {
  version: string;
  identify(identity: Identity): void;
  open(): void;
  close(): void;
}

declare global {
  interface Window {
    AlmonerWidget?: WidgetApi;
  }
}

const STATUS = { connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Reconnecting…' };

function storage(): Storage | undefined {
  try {
    return window.localStorage;
  } catch {
    return undefined;
  }
}

class Widget {
  #config: WidgetConfig | undefined;
  #loading: Promise<void> | undefined;
  #session: Session | undefined;
  #who: string | undefined;
  readonly #ui: Ui;
  readonly #visitorKey: string;

  readonly #base: string;
  readonly #tenant: string;
  #identity: Identity;

  constructor(base: string, tenant: string, identity: Identity) {
    this.#base = base;
    this.#tenant = tenant;
    this.#identity = identity;
    this.#visitorKey = `almoner-widget:visitor:${tenant}`;
    this.#ui = new Ui({
      send: (text) => this.#session?.send(text),
      attach: (file, text) => this.#session?.send(text, file),
      opened: () => {
        if (!this.#config) void this.#load();
        else if (!this.#session) this.#begin(true);
        this.#changed();
      },
      closed: () => this.#changed(),
      link: (c, o) => this.#session?.link(c, o) ?? Promise.reject(new Error('not connected')),
    });
    this.#ui.setMode('loading');
    document.body.append(this.#ui.host);
    addEventListener('visibilitychange', () => this.#changed());
    void this.#load();
  }

  #load(): Promise<void> {
    this.#loading ??= (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          this.#config = await getConfig(this.#base, this.#tenant);
          break;
        } catch (e) {
          // A page whose origin the tenant does not allow gets a 403 without CORS headers: to the page, that
          // is a network failure like any other. Tried a few times, then again when the panel opens.
          if (!retryable(e) || attempt >= 3) {
            const text =
              e instanceof ApiError && e.status
                ? e.message
                : 'The chat is not available right now. If this keeps happening, this website may not be set up to use it.';
            this.#ui.setMode('blocked');
            this.#ui.setError(text);
            console.warn(`Almoner chat: the widget's settings could not be loaded from ${this.#base}: ${(e as Error).message}`);
            this.#loading = undefined;
            return;
          }
          await new Promise((r) => setTimeout(r, 1000 * 2 ** attempt));
        }
      }
      this.#ui.setError('');
      this.#ui.theme(palette(this.#config.accent_colour), this.#config.greeting);
      this.#begin(false);
    })();
    return this.#loading;
  }

  /**
   * Starts the chat for whoever the page says the member is. A visitor's own id (where identity is not required)
   * is made only when they first open the chat, and kept for their next visit.
   */
  #begin(opening: boolean): void {
    const cfg = this.#config;
    if (!cfg) return;
    const identifier = this.#identity.identifier || undefined;
    const hash = (identifier && this.#identity.identifierHash) || undefined;
    let who = identifier;
    if (!who) {
      if (cfg.identity_required) {
        this.#stop();
        this.#ui.setMode('signin', 'Please sign in to chat.');
        return;
      }
      const store = storage();
      who = store?.getItem(this.#visitorKey) ?? undefined;
      if (!who) {
        if (!opening) {
          this.#ui.setMode('chat');
          this.#ui.setStatus('', 'idle');
          return;
        }
        who = uuid();
        store?.setItem(this.#visitorKey, who);
      }
    }
    const key = `${who}\n${hash}`;
    if (this.#session && this.#who === key) return;
    this.#stop();
    this.#who = key;
    this.#ui.setMode('chat');
    this.#ui.setError('');
    this.#session = new Session(this.#base, this.#tenant, who, hash, {
      status: (s) => this.#ui.setStatus(STATUS[s], s),
      changed: () => this.#changed(),
      blocked: (e) => this.#blocked(e),
      error: (text) => this.#ui.setError(text),
      isOpen: () => this.#ui.isOpen,
    });
    this.#session.start(identifier ? { name: this.#identity.name, email: this.#identity.email } : undefined);
  }

  #stop(): void {
    this.#session?.close();
    this.#session = undefined;
    this.#who = undefined;
    this.#ui.render([]);
    this.#ui.setUnread(0);
  }

  #blocked(e: ApiError): void {
    this.#stop();
    this.#ui.setMode('blocked');
    this.#ui.setError(e.code === 'identity_unverified' ? `We could not confirm who you are, so the chat is not available. ${e.message}` : e.message);
    console.warn(`Almoner chat: refused (${e.code}): ${e.message}`);
  }

  #changed(): void {
    const s = this.#session;
    if (!s) return;
    this.#ui.render(s.items());
    s.markRead();
    this.#ui.setUnread(s.unread());
  }

  identify(next: Identity): void {
    const before = this.#identity;
    this.#identity = { ...before, ...next };
    if (next.identifier !== undefined && next.identifier !== before.identifier) {
      // Someone else: the previous member's conversation goes with them.
      this.#stop();
    }
    if (!this.#config) return;
    if (!this.#session || this.#who === undefined) this.#begin(this.#ui.isOpen);
    else if (next.identifierHash !== undefined && next.identifierHash !== before.identifierHash) {
      this.#stop();
      this.#begin(this.#ui.isOpen);
    } else if (next.name !== undefined || next.email !== undefined) {
      this.#session.profile({ name: this.#identity.name, email: this.#identity.email });
    }
  }

  open(): void {
    if (!this.#ui.isOpen) this.#ui.show();
  }

  close(): void {
    this.#ui.hide(this.#ui.hasFocus());
  }
}

(() => {
  if (window.AlmonerWidget) return; // Included twice: the first one serves.
  const script = (document.currentScript ??
    document.querySelector('script[data-tenant][src*="widget.js"]')) as HTMLScriptElement | null;
  const data = script?.dataset ?? {};
  const tenant = data.tenant;
  if (!script || !tenant) {
    console.error('Almoner chat: the widget script needs data-tenant="<tenant id>"');
    return;
  }
  const base = (data.api || new URL(script.src, location.href).origin).replace(/\/+$/, '');
  const identity: Identity = {
    identifier: data.identifier || undefined,
    identifierHash: data.identifierHash || undefined,
    name: data.name || undefined,
    email: data.email || undefined,
  };
  let widget: Widget | undefined;
  let early: Identity | undefined;
  let openEarly = false;
  window.AlmonerWidget = {
    version: '1',
    identify: (i) => (widget ? widget.identify(i) : (early = { ...early, ...i })),
    open: () => (widget ? widget.open() : (openEarly = true)),
    close: () => (widget ? widget.close() : (openEarly = false)),
  };
  const start = () => {
    widget = new Widget(base, tenant, { ...identity, ...early });
    if (openEarly) widget.open();
  };
  if (document.body) start();
  else addEventListener('DOMContentLoaded', start, { once: true });
  dispatchEvent(new Event('almoner-widget:ready'));
})();
