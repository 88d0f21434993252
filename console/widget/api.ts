// Requests to the gateway: identity's widget endpoints without a token, messaging's member API with the member
// token, exchanged again before it runs out and after any 401. Errors are problem+json (`code`, `detail`);
// a request that never got an answer (offline, refused by CORS) is an ApiError with status 0.
import type { MemberToken, WidgetConfig } from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A request that failed without an answer (or with one worth retrying: 5xx, 429). */
export const retryable = (e: unknown): boolean =>
  !(e instanceof ApiError) || e.status === 0 || e.status === 429 || e.status >= 500;

export async function call(url: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { cache: 'no-store', ...init });
  } catch (e) {
    if ((e as Error)?.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The chat cannot reach the server. Check your connection.');
  }
  if (!res.ok) throw await problem(res);
  return res;
}

export async function problem(res: Response): Promise<ApiError> {
  let code = 'http_' + res.status;
  let detail = `The server answered ${res.status}.`;
  try {
    const p = await res.json();
    if (typeof p.code === 'string') code = p.code;
    if (typeof p.detail === 'string' && p.detail) detail = p.detail;
    else if (typeof p.title === 'string') detail = p.title;
  } catch {
    // Not JSON: keep the status.
  }
  return new ApiError(res.status, code, detail);
}

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

export async function getConfig(base: string, tenant: string): Promise<WidgetConfig> {
  const res = await call(`${base}/api/identity/v1/widget/config?tenant_id=${encodeURIComponent(tenant)}`, {
    headers: { accept: 'application/json' },
  });
  return res.json();
}

export class Api {
  #token: string | undefined;
  #expiresAt = 0;
  #exchanging: Promise<string> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  readonly #tenant: string;
  readonly #identifier: string;
  readonly #hash: string | undefined;

  constructor(
    readonly base: string,
    tenant: string,
    identifier: string,
    hash: string | undefined,
  ) {
    this.#tenant = tenant;
    this.#identifier = identifier;
    this.#hash = hash;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  /** A token valid for a while yet: the current one, or a new exchange (one at a time). */
  async accessToken(): Promise<string> {
    if (this.#token && Date.now() < this.#expiresAt - 5000) return this.#token;
    return this.exchange();
  }

  /** Drops a token the server refused (401), unless a newer one replaced it already. */
  forget(token: string): void {
    if (this.#token === token) this.#token = undefined;
  }

  /** Exchanges the member's identity for a new token (identity's `POST /widget/token`). */
  exchange(): Promise<string> {
    this.#exchanging ??= (async () => {
      try {
        const body: Record<string, string> = { tenant_id: this.#tenant, identifier: this.#identifier };
        if (this.#hash) body.identifier_hash = this.#hash;
        const res = await call(`${this.base}/api/identity/v1/widget/token`, {
          method: 'POST',
          headers: JSON_HEADERS,
          body: JSON.stringify(body),
        });
        const t: MemberToken = await res.json();
        this.#token = t.access_token;
        const life = Math.max(10, t.expires_in) * 1000;
        this.#expiresAt = Date.now() + life;
        clearTimeout(this.#timer);
        // Renewed ahead of its end (a minute, or a tenth of a short lifetime), so a request never carries a
        // token about to expire; a failure here is retried by the next request that needs one.
        if (!this.#closed) {
          this.#timer = setTimeout(() => void this.exchange().catch(() => undefined), life - Math.min(60_000, life / 10));
        }
        return t.access_token;
      } finally {
        this.#exchanging = undefined;
      }
    })();
    return this.#exchanging;
  }

  /** An authorised request to messaging's member API (`/api/messaging/v1/member` + path); 401 exchanges again once. */
  async member(method: string, path: string, body?: unknown, signal?: AbortSignal, extra?: Record<string, string>): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.accessToken();
      try {
        return await call(`${this.base}/api/messaging/v1/member${path}`, {
          method,
          signal,
          headers: {
            ...(body === undefined ? { accept: 'application/json' } : JSON_HEADERS),
            ...extra,
            authorization: `Bearer ${token}`,
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (e) {
        if (attempt === 0 && e instanceof ApiError && e.status === 401) {
          this.forget(token);
          continue;
        }
        throw e;
      }
    }
  }

  async json<T>(method: string, path: string, body?: unknown, extra?: Record<string, string>): Promise<T> {
    return (await this.member(method, path, body, undefined, extra)).json();
  }
}
