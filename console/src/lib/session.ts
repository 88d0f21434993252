// The signed-in session. The access token lives in this module's memory only (never in storage);
// the refresh token is an HttpOnly cookie scoped to /api/identity/v1/session, sent by the browser.
import { useEffect, useState } from 'preact/hooks';
import type { SessionGrant, SessionStaff } from './types';

const IDENTITY = '/api/identity/v1';

export type SessionState =
  | { status: 'unknown' }
  | { status: 'signed-out'; byUser?: boolean }
  | { status: 'unavailable'; message: string }
  | { status: 'signed-in'; token: string; expiresAt: number; scopes: string[]; staff: SessionStaff };

let state: SessionState = { status: 'unknown' };
const listeners = new Set<() => void>();
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<boolean> | undefined;

function set(next: SessionState) {
  state = next;
  for (const l of listeners) l();
}

export function session(): SessionState {
  return state;
}

export function accessToken(): string | undefined {
  return state.status === 'signed-in' ? state.token : undefined;
}

export function hasScope(scope: string): boolean {
  return state.status === 'signed-in' && state.scopes.includes(scope);
}

/** Calls `l` after every change of the session (a new token, signing out); returns the unsubscribe. */
export function subscribeSession(l: () => void): () => void {
  listeners.add(l);
  return () => {
    listeners.delete(l);
  };
}

export function useSession(): SessionState {
  const [, force] = useState(0);
  useEffect(() => {
    const l = () => force((n) => n + 1);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return state;
}

/** Whether the signed-in member holds `scope`; re-renders when the session changes. */
export function useScope(scope: string): boolean {
  const s = useSession();
  return s.status === 'signed-in' && s.scopes.includes(scope);
}

/** Takes a grant from `/sign-in/tokens` or `/session/refresh` and schedules the next refresh. */
export function adopt(grant: SessionGrant) {
  const lifetime = Math.max(30, grant.expires_in) * 1000;
  set({
    status: 'signed-in',
    token: grant.access_token,
    expiresAt: Date.now() + lifetime,
    scopes: grant.scopes,
    staff: grant.staff,
  });
  clearTimeout(refreshTimer);
  // A minute before it expires (or at 80% of a short lifetime).
  const ahead = Math.min(60_000, lifetime * 0.2);
  refreshTimer = setTimeout(() => void refresh(), lifetime - ahead);
}

export function signedOut(byUser = false) {
  clearTimeout(refreshTimer);
  set({ status: 'signed-out', byUser });
}

async function post(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(IDENTITY + path, {
    method: 'POST',
    credentials: 'same-origin',
    ...init,
    headers: { accept: 'application/json', ...(init.headers ?? {}) },
  });
}

/**
 * Exchanges the refresh cookie for a new access token. Concurrent callers share one request.
 * Resolves true when signed in afterwards; a 401 signs out; other failures leave a signed-in
 * session as it is (its token may still work) or mark an unknown one unavailable.
 */
export function refresh(): Promise<boolean> {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      // A refresh token works once, and presenting a replaced one ends the session: tabs take turns, so the
      // second sends the cookie the first was given.
      const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
      const res = locks ? await locks.request('almoner-session-refresh', () => post('/session/refresh')) : await post('/session/refresh');
      if (res.ok) {
        adopt((await res.json()) as SessionGrant);
        return true;
      }
      if (res.status === 401 || res.status === 403) {
        signedOut();
        return false;
      }
      if (state.status !== 'signed-in') {
        set({ status: 'unavailable', message: `The sign-in service answered ${res.status}. Try again shortly.` });
      }
      return false;
    } catch {
      if (state.status !== 'signed-in') {
        set({ status: 'unavailable', message: 'The sign-in service could not be reached. Try again shortly.' });
      }
      return false;
    } finally {
      refreshing = undefined;
    }
  })();
  return refreshing;
}

export async function signOut(): Promise<void> {
  const token = accessToken();
  try {
    await post('/session/sign-out', token ? { headers: { authorization: `Bearer ${token}` } } : {});
  } catch {
    // Signed out here whatever the network says; the cookie expires on its own.
  }
  signedOut(true);
}

export const identityPaths = {
  signInLinks: `${IDENTITY}/sign-in/links`,
  signInTokens: `${IDENTITY}/sign-in/tokens`,
};
