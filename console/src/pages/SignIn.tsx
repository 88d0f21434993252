import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { Field, useTitle } from '../components/ui';
import { adopt, identityPaths } from '../lib/session';
import type { Problem, SessionGrant } from '../lib/types';

const NEXT_KEY = 'almoner.next';

/** Remembers where a signed-out visitor was going, to return there after signing in. */
export function rememberNext(url: string) {
  try {
    sessionStorage.setItem(NEXT_KEY, url);
  } catch {
    // Storage unavailable: the dashboard it is.
  }
}

function takeNext(): string {
  try {
    const next = sessionStorage.getItem(NEXT_KEY);
    sessionStorage.removeItem(NEXT_KEY);
    if (next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/sign-in')) return next;
  } catch {
    // ignore
  }
  return '/';
}

async function problem(res: Response): Promise<Problem> {
  try {
    return (await res.json()) as Problem;
  } catch {
    return { status: res.status };
  }
}

export function SignIn() {
  useTitle('Sign in');
  const [email, setEmail] = useState('');
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [fieldError, setFieldError] = useState<string | undefined>();

  async function submit(e: Event) {
    e.preventDefault();
    setError(undefined);
    setFieldError(undefined);
    if (!email.trim()) {
      setFieldError('Enter your email address.');
      return;
    }
    setBusy(true);
    try {
      const res = await fetch(identityPaths.signInLinks, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ email: email.trim() }),
      });
      if (res.status === 202 || res.ok) {
        setSent(true);
      } else {
        const p = await problem(res);
        if (res.status === 429 || p.code === 'rate_limited') {
          setError('Too many sign-in links were asked for. Wait a few minutes, then try again.');
        } else if (p.errors?.length) {
          setFieldError(p.errors.map((x) => x.message).join('; '));
        } else {
          setError(p.detail || `Something went wrong (${res.status}). Try again.`);
        }
      }
    } catch {
      setError('The server could not be reached. Check the connection and try again.');
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <h1>Sign in</h1>
      {sent ? (
        <div class="alert success" role="status" data-testid="sign-in-sent">
          <p>If that address belongs to a staff member, a link is on its way. It works once, for 15 minutes.</p>
          <p>
            <button type="button" class="link" onClick={() => setSent(false)}>
              Use another address
            </button>
          </p>
        </div>
      ) : (
        <form onSubmit={submit} noValidate>
          <p>We will email you a link to sign in. No password needed.</p>
          <Field
            label="Email address"
            type="email"
            name="email"
            autoComplete="email"
            required
            value={email}
            onValue={setEmail}
            error={fieldError}
            autoFocus
          />
          {error && (
            <div class="alert error" role="alert">
              <p>{error}</p>
            </div>
          )}
          <button type="submit" disabled={busy}>
            {busy ? 'Sending…' : 'Email me a sign-in link'}
          </button>
        </form>
      )}
    </>
  );
}

// A link is exchanged once; guard against a second exchange if the component mounts again.
let exchanged: string | undefined;

export function SignInCallback() {
  useTitle('Signing in');
  const loc = useLocation();
  const [state, setState] = useState<'working' | 'invalid' | 'error'>('working');
  const [message, setMessage] = useState<string>('');
  const headingRef = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    const params = new URLSearchParams(location.hash.replace(/^#/, ''));
    const token = params.get('token');
    // The token must not stay in the address bar or the history.
    if (location.hash) history.replaceState(history.state, '', location.pathname + location.search);
    if (!token) {
      setState('invalid');
      return;
    }
    if (exchanged === token) return;
    exchanged = token;
    (async () => {
      try {
        const res = await fetch(identityPaths.signInTokens, {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ token }),
        });
        if (res.ok) {
          adopt((await res.json()) as SessionGrant);
          loc.route(takeNext(), true);
          return;
        }
        const p = await problem(res);
        if (res.status === 401 || p.code === 'sign_in_link_invalid') {
          setState('invalid');
        } else if (res.status === 429) {
          setMessage('Too many attempts. Wait a few minutes, then open the link again.');
          setState('error');
        } else {
          setMessage(p.detail || `Signing in failed (${res.status}).`);
          setState('error');
        }
      } catch {
        setMessage('The server could not be reached. Check the connection, then open the link again.');
        setState('error');
      }
    })();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    if (state !== 'working') headingRef.current?.focus();
  }, [state]);

  if (state === 'working') {
    return (
      <>
        <h1>Signing in</h1>
        <p role="status">Checking your sign-in link…</p>
      </>
    );
  }
  return (
    <>
      <h1 ref={headingRef} tabIndex={-1}>
        Sign-in link not accepted
      </h1>
      <div class="alert error" role="alert" data-testid="sign-in-invalid">
        <p>{state === 'invalid' ? 'This sign-in link has expired or was already used.' : message}</p>
      </div>
      <p>
        <a href="/sign-in">Ask for a new sign-in link</a>
      </p>
    </>
  );
}
