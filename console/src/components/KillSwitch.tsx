// The tenant's kill switch (messaging's GET /v1/settings `paused`, POST /v1/pause and /v1/resume), one click away on
// every SMS page: while it is on, nothing is queued and no message goes to the provider.
import { useState } from 'preact/hooks';
import { ErrorAlert, useAsync } from './ui';
import { get, MESSAGING, request } from '../lib/api';
import { date } from '../lib/format';
import { useActorNames } from '../lib/messaging';
import { useScope } from '../lib/session';
import type { MessagingSettingsView } from '../lib/types';

export function KillSwitch() {
  const canWrite = useScope('messaging:write');
  const actor = useActorNames();
  const settings = useAsync((signal) => get<MessagingSettingsView>(`${MESSAGING}/settings`, undefined, signal), []);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [notice, setNotice] = useState('');
  const s = settings.data;

  async function toggle(pause: boolean) {
    if (busy) return;
    setBusy(true);
    setError(undefined);
    setNotice('');
    try {
      const next = await request<MessagingSettingsView>('POST', `${MESSAGING}/${pause ? 'pause' : 'resume'}`);
      settings.setData(next);
      setNotice(pause ? 'All sending is paused.' : 'Sending resumed.');
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="panel kill-switch" aria-labelledby="kill-switch-title" data-testid="kill-switch" data-paused={s ? String(!!s.paused) : undefined}>
      <h2 id="kill-switch-title">Sending</h2>
      {settings.error ? (
        <ErrorAlert error={settings.error} />
      ) : !s ? (
        <p class="loading">Loading the sending switch…</p>
      ) : s.paused ? (
        <div class="alert error" role="status" data-testid="kill-switch-banner">
          <p>
            <strong>Sending is paused</strong>
            {s.paused_by || s.paused_at ? ` (${[s.paused_by ? `by ${actor(s.paused_by)}` : '', s.paused_at ? `at ${date(s.paused_at)}` : ''].filter(Boolean).join(' ')})` : ''}: nothing is
            queued or sent until it is resumed.
          </p>
        </div>
      ) : (
        <p class="small" data-testid="kill-switch-state">
          Sending is on. Pausing stops every message and campaign at once.
        </p>
      )}
      {canWrite && s && (
        <div class="actions">
          {s.paused ? (
            <button type="button" disabled={busy} onClick={() => void toggle(false)}>
              Resume sending
            </button>
          ) : (
            <button type="button" class="danger" disabled={busy} onClick={() => void toggle(true)}>
              Pause all sending
            </button>
          )}
        </div>
      )}
      <ErrorAlert error={error} />
      <p role="status" class="notice" data-testid="kill-switch-notice">
        {notice}
      </p>
    </section>
  );
}
