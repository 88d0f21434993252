// The member's live stream (`GET /api/messaging/v1/member/stream`, Server-Sent Events read with fetch so that it
// can carry the bearer token). It keeps the number of the last entry and, whenever the connection ends or fails,
// reconnects with backoff (500 ms doubling to 5 s, jittered) sending it as `Last-Event-ID`, so the server replays
// what was missed; at once when the browser comes back online. A `reset`, or a connection that could not resume,
// asks for a reload over REST.
import { ApiError, call, retryable, type Api } from './api';
import { backoff, SseParser, type Frame } from './sse';
import type { Conversation, Message } from './types';

export type LiveStatus = 'connecting' | 'connected' | 'reconnecting';

export interface LiveHandlers {
  status(s: LiveStatus): void;
  /** The stream is live; `reload`: what it follows from is not what was shown (first connection, or a reset). */
  ready(reload: boolean): void;
  message(conversation: Conversation, message: Message): void;
  conversation(conversation: Conversation): void;
  /** A refusal that retrying cannot fix (403 origin_not_allowed, a 401 on the identity itself). */
  fatal(e: ApiError): void;
}

/** With heartbeats every 15 s, this long without a byte means the connection is gone though no error said so. */
const SILENCE_MS = 45_000;

export class Live {
  #lastId: string | undefined;
  #reload = true;
  #ctrl: AbortController | undefined;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #quiet: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #connected = false;
  #everReady = false;

  readonly #api: Api;
  readonly #h: LiveHandlers;

  constructor(api: Api, h: LiveHandlers) {
    this.#api = api;
    this.#h = h;
    addEventListener('online', this.#online);
    addEventListener('offline', this.#offline);
  }

  start(): void {
    void this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#quiet);
    this.#ctrl?.abort();
    removeEventListener('online', this.#online);
    removeEventListener('offline', this.#offline);
  }

  #online = () => this.#restart(0);
  #offline = () => this.#restart();

  /** Drops the connection and connects again after `delay` ms (the next backoff when undefined). */
  #restart(delay?: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    clearTimeout(this.#quiet);
    this.#ctrl?.abort();
    this.#ctrl = undefined;
    this.#connected = false;
    this.#h.status('reconnecting');
    if (delay === undefined) delay = backoff(this.#attempt++);
    this.#timer = setTimeout(() => void this.#connect(), delay);
  }

  #hush(ctrl: AbortController): void {
    clearTimeout(this.#quiet);
    this.#quiet = setTimeout(() => this.#ctrl === ctrl && this.#restart(), SILENCE_MS);
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const ctrl = new AbortController();
    this.#ctrl = ctrl;
    if (!this.#connected) this.#h.status(this.#everReady ? 'reconnecting' : 'connecting');
    let token: string;
    try {
      token = await this.#api.accessToken();
    } catch (e) {
      if (this.#ctrl !== ctrl) return;
      if (!retryable(e)) return this.#h.fatal(e as ApiError);
      return this.#restart();
    }
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream', authorization: `Bearer ${token}` };
      if (this.#lastId !== undefined) headers['last-event-id'] = this.#lastId;
      const res = await call(`${this.#api.base}/api/messaging/v1/member/stream`, { headers, signal: ctrl.signal });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      const parser = new SseParser((f) => this.#frame(f));
      this.#hush(ctrl);
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.#ctrl !== ctrl) break;
        this.#hush(ctrl);
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch (e) {
      if (this.#ctrl !== ctrl) return;
      if (e instanceof ApiError) {
        if (e.status === 401) this.#api.forget(token);
        else if (e.status === 422) {
          // The number it kept is not one the server takes: start afresh.
          this.#lastId = undefined;
          this.#reload = true;
        } else if (e.status === 403) return this.#h.fatal(e);
      }
    }
    if (this.#ctrl === ctrl) this.#restart();
  }

  #frame(f: Frame): void {
    let data: { stream_id?: number; conversation?: Conversation; message?: Message } = {};
    try {
      data = f.data ? JSON.parse(f.data) : {};
    } catch {
      return;
    }
    switch (f.event) {
      case 'ready':
        this.#attempt = 0;
        this.#connected = true;
        this.#everReady = true;
        if (this.#lastId === undefined && data.stream_id !== undefined) this.#lastId = String(data.stream_id);
        this.#h.status('connected');
        this.#h.ready(this.#reload);
        this.#reload = false;
        break;
      case 'reset':
        // What was asked for is no longer kept: follow from the head, and reload what is shown.
        this.#reload = true;
        if (data.stream_id !== undefined) this.#lastId = String(data.stream_id);
        break;
      case 'message':
        if (data.conversation && data.message) this.#h.message(data.conversation, data.message);
        break;
      case 'conversation':
        if (data.conversation) this.#h.conversation(data.conversation);
        break;
    }
    if (f.id !== undefined && f.event !== 'reset') this.#lastId = f.id;
  }
}
