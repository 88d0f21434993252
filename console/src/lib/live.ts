// The console's one live connection: messaging's staff stream of the tenant's conversations
// (`GET /api/messaging/v1/conversations/stream`, Server-Sent Events). EventSource cannot send the bearer token,
// so this reads the stream with fetch and parses the event-stream format itself.
//
// Shared by whoever subscribes (the nav's unread badge, the inbox pages): it runs while anyone listens and a
// session is signed in. It reconnects after a failure with backoff (500 ms doubling to 5 s, jittered), at once
// when the browser comes back online, and with the new token when the session refreshes it, each time sending
// `Last-Event-ID` so that nothing is missed. A `reset` frame (the number asked for is no longer kept) and the first
// `ready` of a connection that could not resume tell subscribers to reload over REST.
import { useEffect, useRef, useState } from 'preact/hooks';
import { MESSAGING } from './api';
import { accessToken, refresh, session, subscribeSession } from './session';
import type { ConversationView, MessageView } from './types';

export type LiveEvent =
  | { type: 'message'; conversation: ConversationView; message: MessageView }
  | { type: 'conversation'; conversation: ConversationView }
  /** Reload what is shown: the stream could not say what changed (a reset, or a connection that started afresh). */
  | { type: 'reset' };

export type LiveStatus = 'idle' | 'connecting' | 'live' | 'reconnecting';

/** One frame as the event-stream format defines it. */
export interface SseFrame {
  event: string;
  data: string;
  id?: string;
  retry?: number;
}

/**
 * An incremental parser of the event-stream format (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * feed it text as it arrives; it calls `onFrame` for each frame and `onComment` for each comment line (heartbeats).
 * Lines end with CRLF, LF or CR; a frame ends with a blank line; `data` lines are joined with line feeds.
 */
export class SseParser {
  private buffer = '';
  private pendingCr = false;
  private event = '';
  private data: string[] = [];
  private id: string | undefined;
  private retry: number | undefined;

  constructor(
    private readonly onFrame: (f: SseFrame) => void,
    private readonly onComment: (text: string) => void = () => undefined,
  ) {}

  feed(chunk: string) {
    let text = chunk;
    // A CR at the end of the last chunk may be the first half of a CRLF.
    if (this.pendingCr) {
      this.pendingCr = false;
      if (text.startsWith('\n')) text = text.slice(1);
    }
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(this.buffer.slice(start, i));
      if (c === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCr = true;
        }
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  private line(line: string) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) {
      this.onComment(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
  }

  private dispatch() {
    const frame: SseFrame | undefined =
      this.data.length || this.event || this.id !== undefined || this.retry !== undefined
        ? { event: this.event || 'message', data: this.data.join('\n'), id: this.id, retry: this.retry }
        : undefined;
    this.event = '';
    this.data = [];
    this.id = undefined;
    this.retry = undefined;
    if (frame) this.onFrame(frame);
  }
}

/** Waits before the `attempt`-th reconnection (from 0): 500 ms doubling to 5 s, each between 50% and 100% of that. */
export function backoffDelay(attempt: number): number {
  const base = Math.min(5_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/** How long a connection may stay silent before it counts as dead: the service sends a heartbeat every 15 s. */
const SILENCE_MS = 40_000;

type Listener = (e: LiveEvent) => void;

const listeners = new Set<Listener>();
const statusListeners = new Set<() => void>();
let status: LiveStatus = 'idle';
/** The number of the last frame received: sent back as `Last-Event-ID`. */
let lastEventId: string | undefined;
/** Whose stream that number is in (`<tenant>:<staff id>`): another session starts afresh. */
let streamOwner: string | undefined;
let controller: AbortController | undefined;
let connectedToken: string | undefined;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let silenceTimer: ReturnType<typeof setTimeout> | undefined;
let attempt = 0;
/** When the current connection said `ready` (0: it has not). */
let readyAt = 0;
/** A connection that stayed up this long starts the backoff afresh when it drops. */
const STABLE_MS = 10_000;
let windowHooked = false;
let unsubscribeSession: (() => void) | undefined;

function setStatus(next: LiveStatus) {
  if (status === next) return;
  status = next;
  for (const l of statusListeners) l();
}

function emit(e: LiveEvent) {
  for (const l of [...listeners]) {
    try {
      l(e);
    } catch (err) {
      console.error('a live update listener failed', err);
    }
  }
}

function wanted(): boolean {
  return listeners.size > 0 && session().status === 'signed-in';
}

function stop() {
  clearTimeout(retryTimer);
  clearTimeout(silenceTimer);
  retryTimer = undefined;
  controller?.abort();
  controller = undefined;
  connectedToken = undefined;
  attempt = 0;
  readyAt = 0;
  setStatus('idle');
}

/** Connects now (dropping any connection or pending retry), or stops when no one listens or no one is signed in. */
function connectNow() {
  clearTimeout(retryTimer);
  retryTimer = undefined;
  controller?.abort();
  controller = undefined;
  if (!wanted()) {
    stop();
    return;
  }
  const ctl = new AbortController();
  controller = ctl;
  void run(ctl);
}

function scheduleReconnect() {
  if (!wanted()) {
    stop();
    return;
  }
  setStatus('reconnecting');
  // A connection that lasted starts over at 500 ms; one dropped straight after `ready` keeps backing off.
  if (readyAt && Date.now() - readyAt > STABLE_MS) attempt = 0;
  readyAt = 0;
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connectNow, backoffDelay(attempt++));
}

function armSilence(ctl: AbortController) {
  clearTimeout(silenceTimer);
  silenceTimer = setTimeout(() => ctl.abort(), SILENCE_MS);
}

function handleFrame(f: SseFrame, fresh: boolean) {
  if (f.id !== undefined && f.id !== '') lastEventId = f.id;
  let body: Record<string, unknown> = {};
  if (f.data) {
    try {
      body = JSON.parse(f.data) as Record<string, unknown>;
    } catch {
      return;
    }
  }
  switch (f.event) {
    case 'ready': {
      // Following from here: a connection that reconnects later resumes after this number.
      if (typeof body.stream_id === 'number' && lastEventId === undefined) lastEventId = String(body.stream_id);
      readyAt = Date.now();
      setStatus('live');
      // Without a number to resume from, what changed before this connection is unknown: reload.
      if (fresh) emit({ type: 'reset' });
      break;
    }
    case 'reset':
      if (typeof body.stream_id === 'number') lastEventId = String(body.stream_id);
      emit({ type: 'reset' });
      break;
    case 'message':
      if (body.conversation && body.message) {
        emit({ type: 'message', conversation: body.conversation as ConversationView, message: body.message as MessageView });
      }
      break;
    case 'conversation':
      if (body.conversation) emit({ type: 'conversation', conversation: body.conversation as ConversationView });
      break;
    default:
      break;
  }
}

async function run(ctl: AbortController) {
  if (status !== 'live') setStatus(attempt === 0 && status === 'idle' ? 'connecting' : 'reconnecting');
  const token = accessToken();
  connectedToken = token;
  const s = session();
  const owner = s.status === 'signed-in' ? `${s.staff.tenant_id}:${s.staff.id}` : undefined;
  if (owner !== streamOwner) {
    streamOwner = owner;
    lastEventId = undefined;
  }
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (token) headers.authorization = `Bearer ${token}`;
  const resumeFrom = lastEventId;
  if (resumeFrom !== undefined) headers['last-event-id'] = resumeFrom;
  try {
    const res = await fetch(`${MESSAGING}/conversations/stream`, {
      headers,
      cache: 'no-store',
      credentials: 'same-origin',
      signal: ctl.signal,
    });
    if (res.status === 401) {
      // The token ran out: a refreshed one reconnects (through the session listener, or here); a session that
      // ended stops the connection, also through the session listener.
      await res.body?.cancel().catch(() => undefined);
      if (controller !== ctl) return;
      const renewed = await refresh();
      if (controller !== ctl) return;
      if (renewed && accessToken() !== token) connectNow();
      else scheduleReconnect();
      return;
    }
    if (res.status === 403) {
      // The role cannot read conversations: nothing to follow (until the session changes).
      await res.body?.cancel().catch(() => undefined);
      if (controller === ctl) {
        controller = undefined;
        setStatus('idle');
      }
      return;
    }
    if (res.status === 422 && resumeFrom !== undefined) {
      // The number was refused: start afresh (and reload).
      await res.body?.cancel().catch(() => undefined);
      lastEventId = undefined;
      throw new Error('stream number refused');
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      throw new Error(`stream answered ${res.status}`);
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser(
      (f) => {
        if (controller === ctl) handleFrame(f, resumeFrom === undefined);
      },
      () => undefined,
    );
    armSilence(ctl);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      armSilence(ctl);
      if (value) parser.feed(decoder.decode(value, { stream: true }));
    }
    clearTimeout(silenceTimer);
    // The service ended the stream (a restart, say): come back.
    if (controller === ctl) scheduleReconnect();
  } catch {
    clearTimeout(silenceTimer);
    if (controller !== ctl) return; // Replaced or stopped on purpose.
    scheduleReconnect();
  }
}

function hookWindow() {
  if (windowHooked || typeof window === 'undefined') return;
  windowHooked = true;
  window.addEventListener('online', () => {
    if (!wanted()) return;
    attempt = 0;
    if (status !== 'live') connectNow();
  });
  window.addEventListener('offline', () => {
    // The connection is gone, even if the socket has not noticed yet: retry (with backoff) until back online.
    if (!wanted() || !controller) return;
    controller.abort();
    controller = undefined;
    clearTimeout(silenceTimer);
    scheduleReconnect();
  });
}

/** Follows session changes: a refreshed token reconnects with it, a signed-out session stops the connection. */
function onSession() {
  if (!wanted()) {
    stop();
    return;
  }
  const token = accessToken();
  if (!controller && !retryTimer) {
    connectNow();
  } else if (controller && token !== connectedToken) {
    // The session refreshed its token: carry on with the new one (resuming after the last number).
    connectNow();
  }
}

/** Receives every live event while subscribed; the connection runs while anyone is. Returns the unsubscribe. */
export function subscribeLive(l: Listener): () => void {
  hookWindow();
  listeners.add(l);
  unsubscribeSession ??= subscribeSession(onSession);
  if (listeners.size === 1 || (!controller && !retryTimer)) onSession();
  return () => {
    listeners.delete(l);
    if (listeners.size === 0) {
      unsubscribeSession?.();
      unsubscribeSession = undefined;
      // A page change unsubscribes and subscribes again at once: keep the connection through it.
      setTimeout(() => {
        if (listeners.size === 0) stop();
      }, 1_000);
    }
  };
}

/** Calls `l` with each live event while the component is mounted (and `enabled`). */
export function useLive(l: Listener, enabled = true) {
  const latest = useRef(l);
  latest.current = l;
  useEffect(() => (enabled ? subscribeLive((e) => latest.current(e)) : undefined), [enabled]);
}

export function liveStatus(): LiveStatus {
  return status;
}

/** The connection's state, re-rendering when it changes. */
export function useLiveStatus(): LiveStatus {
  const [s, setS] = useState(status);
  useEffect(() => {
    const l = () => setS(status);
    statusListeners.add(l);
    l();
    return () => {
      statusListeners.delete(l);
    };
  }, []);
  return s;
}
