// One member's chat: their token, live stream, newest conversation and its messages, and messages on their way.
// Messages are kept by id and shown in `seq` order, so a replayed or repeated copy never shows twice; a message
// being sent shows at once and is replaced by the server's copy (matched on its client_message_id), whichever
// of the answer and the stream brings it first. A send that fails on the network is retried with the same
// client_message_id (and Idempotency-Key), which the server answers with the message it already has.
import { Api, ApiError, call, retryable } from './api';
import { Live, type LiveStatus } from './live';
import { backoff } from './sse';
import type { Item } from './ui';
import type { Attachment, AttachmentLink, AttachmentUpload, Conversation, Message } from './types';

interface Pending {
  cid: string;
  body: string;
  file?: File;
  attachments: Attachment[];
  failed?: string;
}

interface Posted {
  conversation: Conversation;
  message: Message;
}

export interface SessionView {
  status(s: LiveStatus): void;
  changed(): void;
  /** The chat cannot go on (identity refused, origin not allowed): shown instead of it. */
  blocked(e: ApiError): void;
  error(text: string): void;
  isOpen(): boolean;
}

export function uuid(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  // Pages served over plain HTTP (not a secure context) have no randomUUID; a version 4 UUID all the same.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** Waits `ms`, or less if the browser comes back online meanwhile. */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      removeEventListener('online', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    addEventListener('online', done);
  });
}

export class Session {
  readonly #api: Api;
  readonly #live: Live;
  #conversation: Conversation | undefined;
  readonly #messages = new Map<string, Message>();
  readonly #pending = new Map<string, Pending>();
  readonly #links = new Map<string, Promise<AttachmentLink>>();
  #queue: Promise<void> = Promise.resolve();
  #readSent = 0;
  #closed = false;
  #profile: { name?: string; email?: string } | undefined;
  #ready = false;

  readonly #view: SessionView;

  constructor(
    base: string,
    tenant: string,
    identifier: string,
    hash: string | undefined,
    view: SessionView,
  ) {
    this.#view = view;
    this.#api = new Api(base, tenant, identifier, hash);
    this.#live = new Live(this.#api, {
      status: (s) => view.status(s),
      ready: (reload) => {
        if (reload) void this.#reload();
        this.#ready = true;
        const p = this.#profile;
        this.#profile = undefined;
        if (p) void this.#save(p);
      },
      message: (c, m) => this.#onMessage(c, m),
      conversation: (c) => this.#onConversation(c),
      fatal: (e) => this.#block(e),
    });
  }

  /**
   * Connects. The profile (name, email) is saved once the stream is ready: the member's record is made on their
   * first request, so it is not raced by a second one.
   */
  start(profile?: { name?: string; email?: string }): void {
    this.#profile = profile;
    this.#live.start();
  }

  close(): void {
    this.#closed = true;
    this.#live.stop();
    this.#api.close();
  }

  #block(e: ApiError): void {
    if (this.#closed) return;
    this.close();
    this.#view.blocked(e);
  }

  /** Saves the member's name and email (once connected). */
  profile(p: { name?: string; email?: string }): void {
    if (this.#ready) void this.#save(p);
    else this.#profile = p;
  }

  async #save(p: { name?: string; email?: string }): Promise<void> {
    if (!p.name && !p.email) return;
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await this.#api.member('PUT', '/profile', { name: p.name ?? null, email: p.email ?? null });
        return;
      } catch (e) {
        if (!retryable(e) || attempt >= 3) {
          // Not worth interrupting the chat for; the integrator sees it in the browser's console.
          console.warn('Almoner chat: the member profile was not saved:', (e as Error).message);
          return;
        }
        await pause(backoff(attempt + 2));
      }
    }
  }

  /** Loads the newest conversation and its messages over REST (first connection, after a reset). */
  async #reload(): Promise<void> {
    try {
      const list = await this.#api.json<{ data: Conversation[] }>('GET', '/conversations');
      const newest = list.data[0];
      if (newest) await this.#load(newest);
      else this.#view.changed();
    } catch (e) {
      this.#failed(e);
    }
  }

  async #load(c: Conversation): Promise<void> {
    this.#adopt(c);
    let after = 0;
    for (;;) {
      const page = await this.#api.json<{ data: Message[]; more: boolean }>(
        'GET',
        `/conversations/${c.id}/messages?after_seq=${after}&limit=500`,
      );
      for (const m of page.data) this.#keep(m);
      const last = page.data[page.data.length - 1];
      if (!page.more || !last) break;
      after = last.seq;
    }
    this.#view.changed();
  }

  #failed(e: unknown): void {
    if (this.#closed) return;
    if (e instanceof ApiError && (e.status === 403 || (e.status === 401 && e.code !== 'unauthorized'))) this.#block(e);
    else this.#view.error((e as Error).message);
  }

  /** Makes `c` the conversation shown (another one's messages go), or updates it. */
  #adopt(c: Conversation): void {
    if (this.#conversation?.id !== c.id) {
      this.#messages.clear();
      this.#readSent = 0;
      this.#conversation = c;
    } else if (c.revision >= this.#conversation.revision) this.#conversation = c;
  }

  #keep(m: Message): void {
    if (m.conversation_id !== this.#conversation?.id) return;
    this.#messages.set(m.id, m);
    if (m.client_message_id) this.#pending.delete(m.client_message_id);
  }

  #onMessage(c: Conversation, m: Message): void {
    const current = this.#conversation;
    if (current && current.id !== c.id) {
      // Another conversation: only a newer one (started in another tab) takes over.
      if (c.created_at <= current.created_at) return;
      void this.#load(c).catch((e) => this.#failed(e));
      return;
    }
    if (!current) {
      this.#adopt(c);
      // A conversation this page has not seen: it may hold earlier messages too.
      if (m.seq > 1) void this.#load(c).catch((e) => this.#failed(e));
    } else this.#adopt(c);
    this.#keep(m);
    this.#view.changed();
  }

  #onConversation(c: Conversation): void {
    if (this.#conversation?.id === c.id) {
      this.#adopt(c);
      this.#view.changed();
    } else if (!this.#conversation || c.created_at > this.#conversation.created_at) {
      void this.#load(c).catch((e) => this.#failed(e));
    }
  }

  send(body: string, file?: File): void {
    const p: Pending = { cid: uuid(), body, file, attachments: [] };
    this.#pending.set(p.cid, p);
    this.#view.changed();
    this.#enqueue(p);
  }

  #enqueue(p: Pending): void {
    // One at a time, in order: the first creates the conversation the next ones go to.
    this.#queue = this.#queue.then(() => this.#deliver(p));
  }

  async #deliver(p: Pending): Promise<void> {
    for (let attempt = 0; !this.#closed && this.#pending.has(p.cid); attempt++) {
      try {
        if (p.file) {
          p.attachments = [await this.#upload(p.file)];
          p.file = undefined;
        }
        const body: Record<string, unknown> = { body: p.body, client_message_id: p.cid };
        if (p.attachments.length) body.attachments = p.attachments.map((a) => a.object_id);
        const to = this.#conversation ? `/conversations/${this.#conversation.id}/messages` : '/conversations';
        const posted = await this.#api.json<Posted>('POST', to, body, { 'idempotency-key': p.cid });
        if (this.#conversation?.id !== posted.conversation.id) this.#adopt(posted.conversation);
        this.#keep(posted.message);
        this.#pending.delete(p.cid);
        this.#view.error('');
        this.#view.changed();
        return;
      } catch (e) {
        if (this.#closed) return;
        if (!retryable(e)) {
          p.failed = (e as Error).message;
          this.#view.error(p.failed);
          this.#view.changed();
          return;
        }
        await pause(backoff(attempt));
      }
    }
  }

  async #upload(file: File): Promise<Attachment> {
    const made = await this.#api.json<AttachmentUpload>('POST', '/attachments', {
      file_name: file.name,
      content_type: file.type || 'application/octet-stream',
      size_bytes: file.size,
    });
    const u = made.upload;
    await call(u.url, { method: u.method || 'PUT', headers: u.headers, body: file });
    return this.#api.json<Attachment>('POST', `/attachments/${made.object_id}/complete`);
  }

  /** A short-lived link to an attachment, kept until shortly before it expires. */
  link(conversationId: string, objectId: string): Promise<AttachmentLink> {
    const key = `${conversationId}/${objectId}`;
    let found = this.#links.get(key);
    if (!found) {
      found = this.#api.json<AttachmentLink>('GET', `/conversations/${conversationId}/attachments/${objectId}`);
      this.#links.set(key, found);
      found.then(
        (l) => {
          const left = Date.parse(l.expires_at) - Date.now() - 10_000;
          setTimeout(() => this.#links.delete(key), Math.max(0, Math.min(left, 2 ** 31 - 1)));
        },
        () => this.#links.delete(key),
      );
    }
    return found;
  }

  /** Staff messages not yet read. */
  unread(): number {
    const read = Math.max(this.#conversation?.read_seq ?? 0, this.#readSent);
    let n = 0;
    for (const m of this.#messages.values()) if (m.author === 'staff' && m.seq > read) n++;
    return n;
  }

  /** Sends a read receipt when the panel is open on a visible page and shows staff messages not yet read. */
  markRead(): void {
    const c = this.#conversation;
    if (!c || !this.#view.isOpen() || document.visibilityState === 'hidden' || !this.unread()) return;
    let seq = 0;
    for (const m of this.#messages.values()) seq = Math.max(seq, m.seq);
    if (seq <= this.#readSent) return;
    this.#readSent = seq;
    this.#api.json<Conversation>('POST', `/conversations/${c.id}/read`, { seq }).then(
      (after) => {
        if (this.#conversation?.id === after.id) {
          this.#adopt(after);
          this.#view.changed();
        }
      },
      () => {
        // Sent again at the next chance.
        this.#readSent = 0;
      },
    );
  }

  items(): Item[] {
    const staffRead = this.#conversation?.staff_read_seq ?? 0;
    const shown: Item[] = [...this.#messages.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((m) => ({
        key: m.client_message_id ? `c:${m.client_message_id}` : `i:${m.id}`,
        author: m.author,
        body: m.body,
        conversationId: m.conversation_id,
        attachments: m.attachments ?? [],
        files: [],
        state: 'sent',
        at: m.created_at,
        seen: m.author === 'member' && m.seq <= staffRead,
      }));
    for (const p of this.#pending.values()) {
      shown.push({
        key: `c:${p.cid}`,
        author: 'member',
        body: p.body,
        attachments: p.attachments,
        files: p.file ? [p.file.name] : [],
        state: p.failed ? 'failed' : 'sending',
        error: p.failed,
        retry: () => {
          p.failed = undefined;
          this.#view.changed();
          this.#enqueue(p);
        },
      });
    }
    return shown;
  }
}
