// An incremental parser of the event-stream format (Server-Sent Events), for streams read with fetch: EventSource
// cannot send the member's bearer token. Lines end with CRLF, LF or CR; a blank line ends a frame; `data` lines
// are joined with line feeds; comment lines (`: heartbeat`) only show the connection is alive.

export interface Frame {
  event: string;
  data: string;
  id?: string;
}

export class SseParser {
  #buf = '';
  #cr = false;
  #event = '';
  #data: string[] = [];
  #id: string | undefined;

  readonly #onFrame: (f: Frame) => void;

  constructor(onFrame: (f: Frame) => void) {
    this.#onFrame = onFrame;
  }

  feed(chunk: string): void {
    // A CR ending the previous chunk may be the first half of a CRLF.
    if (this.#cr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.#cr = false;
    const text = this.#buf + chunk;
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.#line(text.slice(start, i));
      if (c === 13) {
        if (i + 1 === text.length) this.#cr = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.#buf = text.slice(start);
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#data.length || this.#event || this.#id !== undefined) {
        this.#onFrame({ event: this.#event || 'message', data: this.#data.join('\n'), id: this.#id });
      }
      this.#event = '';
      this.#data = [];
      this.#id = undefined;
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' */) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'event') this.#event = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.#id = value;
  }
}

/** The wait before reconnection number `attempt` (from 0): 500 ms doubling to 5 s, jittered to 50–100% of it. */
export function backoff(attempt: number): number {
  const base = Math.min(5000, 500 * 2 ** Math.min(attempt, 4));
  return Math.round(base * (0.5 + Math.random() * 0.5));
}
