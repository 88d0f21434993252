// Calls to the services through the gateway's /api/<service>/v1/..., with the session's bearer token.
// A 401 refreshes the session once and retries once; problem+json answers become ApiError.
import { accessToken, refresh } from './session';
import type { FieldError, Page, Problem } from './types';

export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;

  constructor(status: number, problem: Problem) {
    super(problem.detail || problem.title || `Request failed (${status})`);
    this.status = status;
    this.problem = problem;
  }

  get code(): string | undefined {
    return this.problem.code;
  }

  get fieldErrors(): FieldError[] {
    return this.problem.errors ?? [];
  }
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Sends `Idempotency-Key` with this value (a fresh UUID per form submission). */
  idempotencyKey?: string;
  /** Content type of a JSON body; `application/merge-patch+json` for PATCHes that say so. */
  contentType?: string;
  signal?: AbortSignal;
}

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const s = params.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

async function problemOf(res: Response): Promise<Problem> {
  const text = await res.text().catch(() => '');
  try {
    const p = JSON.parse(text) as Problem;
    if (p && typeof p === 'object') return p;
  } catch {
    // Not JSON: a proxy's page. Say what we know.
  }
  return { status: res.status, title: res.statusText, detail: `The server answered ${res.status} ${res.statusText}.` };
}

/** Fetches with the bearer token, refreshing and retrying once on a 401. Returns the raw response when ok. */
export async function send(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  const url = withQuery(path, opts.query);
  const attempt = () => {
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
    const token = accessToken();
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    let body: BodyInit | undefined;
    if (opts.body !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      body = JSON.stringify(opts.body);
    }
    return fetch(url, { method, headers, body, credentials: 'same-origin', signal: opts.signal });
  };
  let res: Response;
  try {
    res = await attempt();
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(0, { code: 'network_error', detail: 'The server could not be reached. Check the connection and try again.' });
  }
  if (res.status === 401 && (await refresh())) {
    res = await attempt();
  }
  if (!res.ok) throw new ApiError(res.status, await problemOf(res));
  return res;
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await send(method, path, opts);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>('GET', path, { query, signal });

export async function getAll<T>(path: string, query: Query = {}, max = 2000): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null | undefined;
  do {
    const page = await get<Page<T>>(path, { ...query, limit: 500, cursor: cursor ?? undefined });
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}

export const FUNDRAISING = '/api/fundraising/v1';
export const ROLLUP = '/api/rollup/v1';
export const IDENTITY = '/api/identity/v1';
export const STORAGE = '/api/storage/v1';
export const MESSAGING = '/api/messaging/v1';

/** A random UUID (v4) for an Idempotency-Key; works outside secure contexts too. */
export function uuid(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The error's message for people, whatever was thrown. */
export function messageOf(e: unknown): string {
  if (e instanceof ApiError) {
    const p = e.problem;
    return p.detail || p.title || `Request failed (${e.status})`;
  }
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Per-field messages of a validation problem, keyed by the field path the service names. */
export function fieldErrors(e: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (e instanceof ApiError) {
    for (const fe of e.fieldErrors) out[fe.field] = out[fe.field] ? `${out[fe.field]}; ${fe.message}` : fe.message;
  }
  return out;
}
