import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorAlert, Field, Loading, SelectField, useAsync, useTitle } from '../components/ui';
import { FUNDRAISING, get, request } from '../lib/api';
import { date, donorName, humanize, money } from '../lib/format';
import { useScope } from '../lib/session';
import type { ApproveInput, Page, StagingEntryView } from '../lib/types';

const REASONS: Record<string, string> = {
  several_donors_match: 'Several donors share the payer’s email',
  no_email: 'The payment has no email address',
  no_last_name: 'The payment has no last name',
};

/** "new" stands for creating a donor from the payer's details. */
type Choice = string | 'new';

export function Staging() {
  useTitle('Staging review');
  const canWrite = useScope('fundraising:write');
  const [status, setStatus] = useState('pending');
  const list = useAsync((signal) => get<Page<StagingEntryView>>(`${FUNDRAISING}/staging`, { status, limit: 100 }, signal), [status]);
  const [selected, setSelected] = useState(0);
  const [choices, setChoices] = useState<Record<string, Choice>>({});
  const [rejecting, setRejecting] = useState<string | null>(null);
  const [reason, setReason] = useState('');
  const [newDonor, setNewDonor] = useState<Record<string, { first_name: string; last_name: string; email: string }>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);
  const itemsRef = useRef<HTMLOListElement>(null);
  const reasonRef = useRef<HTMLInputElement>(null);

  const entries = list.data?.data ?? [];
  const current = entries[selected];

  useEffect(() => setSelected(0), [status]);
  useEffect(() => {
    if (rejecting) reasonRef.current?.focus();
  }, [rejecting]);

  function choiceOf(e: StagingEntryView): Choice {
    return choices[e.id] ?? (e.candidate_donors[0]?.id ?? 'new');
  }

  function draftOf(e: StagingEntryView) {
    return newDonor[e.id] ?? { first_name: e.payer.first_name ?? '', last_name: e.payer.last_name ?? '', email: e.payer.email ?? '' };
  }

  function focusItem(i: number) {
    setSelected(i);
    setTimeout(() => itemsRef.current?.querySelectorAll<HTMLElement>('li.staged')[i]?.focus(), 0);
  }

  async function approve(e: StagingEntryView) {
    const choice = choiceOf(e);
    let body: ApproveInput;
    if (choice === 'new') {
      const d = draftOf(e);
      if (!d.last_name.trim()) {
        setError(new Error('Enter a last name for the new donor before approving.'));
        return;
      }
      body = { create_donor: { first_name: d.first_name.trim() || null, last_name: d.last_name.trim(), email: d.email.trim() || null } };
    } else body = { donor_id: choice };
    await act(e, () => request<StagingEntryView>('POST', `${FUNDRAISING}/staging/${e.id}/approve`, { body }), 'approved');
  }

  async function reject(e: StagingEntryView) {
    if (!reason.trim()) {
      setError(new Error('Give a reason for rejecting it.'));
      reasonRef.current?.focus();
      return;
    }
    await act(e, () => request<StagingEntryView>('POST', `${FUNDRAISING}/staging/${e.id}/reject`, { body: { reason: reason.trim() } }), 'rejected');
    setRejecting(null);
    setReason('');
  }

  async function act(e: StagingEntryView, call: () => Promise<StagingEntryView>, what: string) {
    if (busy) return;
    setBusy(true);
    setError(undefined);
    try {
      await call();
      setNotice(`Payment of ${money(e.proposed_gift.amount_minor, e.proposed_gift.currency)} ${what}.`);
      const rest = entries.filter((x) => x.id !== e.id);
      list.setData({ data: rest, next_cursor: list.data?.next_cursor });
      focusItem(Math.min(selected, Math.max(0, rest.length - 1)));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  function onKeyDown(ev: KeyboardEvent) {
    const target = ev.target as HTMLElement;
    if (ev.ctrlKey || ev.metaKey || ev.altKey || !entries.length) return;
    // In the donor choice, arrows move between donors as radios do, and a or r still act on the entry; in a text
    // field every key is the field's, but Escape goes back to the entry.
    const inRadio = target instanceof HTMLInputElement && target.type === 'radio';
    if (!inRadio && target.closest('input, select, textarea')) {
      if (ev.key === 'Escape' && !rejecting) {
        ev.preventDefault();
        focusItem(selected);
      }
      return;
    }
    if (inRadio && ev.key !== 'a' && ev.key !== 'r') return;
    if (ev.key === 'ArrowDown' || ev.key === 'j') {
      ev.preventDefault();
      focusItem(Math.min(entries.length - 1, selected + 1));
    } else if (ev.key === 'ArrowUp' || ev.key === 'k') {
      ev.preventDefault();
      focusItem(Math.max(0, selected - 1));
    } else if (canWrite && status === 'pending' && current && ev.key === 'a') {
      ev.preventDefault();
      void approve(current);
    } else if (canWrite && status === 'pending' && current && ev.key === 'r') {
      ev.preventDefault();
      setRejecting(current.id);
    }
  }

  return (
    <>
      <h1>Staging review</h1>
      <p class="hint-line">
        Payments that could not be matched to one donor wait here. Move with <kbd>↑</kbd>/<kbd>↓</kbd> or <kbd>j</kbd>/<kbd>k</kbd>
        {canWrite && (
          <>
            ; <kbd>Tab</kbd> into the donors and choose with the arrows; <kbd>a</kbd> approves with the chosen donor, <kbd>r</kbd> rejects;{' '}
            <kbd>Esc</kbd> goes back to the payment
          </>
        )}
        .
      </p>
      <SelectField
        label="Show"
        class="inline"
        value={status}
        onValue={setStatus}
        options={[
          { value: 'pending', label: 'Waiting for review' },
          { value: 'approved', label: 'Approved' },
          { value: 'rejected', label: 'Rejected' },
        ]}
      />
      <p role="status" class="notice">
        {notice}
      </p>
      <ErrorAlert error={error} />
      <ErrorAlert error={list.error} />
      {list.loading && <Loading what="Loading staged payments" />}
      {list.data && entries.length === 0 && <p>Nothing here.</p>}
      <ol class="staging-list" ref={itemsRef} onKeyDown={onKeyDown} aria-label="Staged payments">
        {entries.map((e, i) => {
          const g = e.proposed_gift;
          const choice = choiceOf(e);
          const draft = draftOf(e);
          return (
            <li
              key={e.id}
              class={`staged ${i === selected ? 'selected' : ''}`}
              tabIndex={i === selected ? 0 : -1}
              aria-current={i === selected ? 'true' : undefined}
              aria-labelledby={`staged-${e.id}-title`}
              onFocus={(ev) => {
                if (ev.target === ev.currentTarget) setSelected(i);
              }}
              onClick={() => setSelected(i)}
              data-testid="staged-entry"
            >
              <h2 id={`staged-${e.id}-title`} class="h3">
                {money(g.amount_minor, g.currency)} via {humanize(g.source)} on {date(g.gift_date)}
              </h2>
              <p>
                Payer: {[e.payer.first_name, e.payer.last_name].filter(Boolean).join(' ') || e.payer.display_name || 'unnamed'}
                {e.payer.email ? ` · ${e.payer.email}` : ''}
                {e.payer.message ? ` · “${e.payer.message}”` : ''}
              </p>
              <p class="muted">
                {REASONS[e.reason] ?? humanize(e.reason)}
                {g.fund ? ` · fund ${g.fund}` : ''}
                {g.campaign ? ` · campaign ${g.campaign}` : ''}
                {g.gift_aid_claimable ? '' : ' · Gift Aid claimed by the platform'}
              </p>
              {e.status !== 'pending' ? (
                <p>
                  {humanize(e.status)} {date(e.decided_at)}
                  {e.donor_id && (
                    <>
                      {' '}
                      · <a href={`/donors/${e.donor_id}`}>the donor</a>
                    </>
                  )}
                  {e.rejection_reason ? ` · ${e.rejection_reason}` : ''}
                </p>
              ) : (
                canWrite && (
                  <>
                    <fieldset class="candidates">
                      <legend>Give the gift to</legend>
                      {e.candidate_donors.map((c) => (
                        <div class="check" key={c.id}>
                          <input
                            type="radio"
                            id={`c-${e.id}-${c.id}`}
                            name={`choice-${e.id}`}
                            checked={choice === c.id}
                            onChange={() => setChoices({ ...choices, [e.id]: c.id })}
                          />
                          <label for={`c-${e.id}-${c.id}`}>
                            {donorName(c)}
                            {c.email ? ` · ${c.email}` : ''}
                          </label>{' '}
                          <a href={`/donors/${c.id}`} class="small">
                            view<span class="visually-hidden"> {donorName(c)}</span>
                          </a>
                        </div>
                      ))}
                      <div class="check">
                        <input type="radio" id={`c-${e.id}-new`} name={`choice-${e.id}`} checked={choice === 'new'} onChange={() => setChoices({ ...choices, [e.id]: 'new' })} />
                        <label for={`c-${e.id}-new`}>A new donor</label>
                      </div>
                      {choice === 'new' && (
                        <div class="grid-3">
                          <Field label="First name" value={draft.first_name} onValue={(v) => setNewDonor({ ...newDonor, [e.id]: { ...draft, first_name: v } })} />
                          <Field label="Last name (required)" value={draft.last_name} onValue={(v) => setNewDonor({ ...newDonor, [e.id]: { ...draft, last_name: v } })} />
                          <Field label="Email" type="email" value={draft.email} onValue={(v) => setNewDonor({ ...newDonor, [e.id]: { ...draft, email: v } })} />
                        </div>
                      )}
                    </fieldset>
                    {rejecting === e.id ? (
                      <form
                        class="inline-form"
                        onSubmit={(ev) => {
                          ev.preventDefault();
                          void reject(e);
                        }}
                        onKeyDown={(ev) => {
                          if (ev.key === 'Escape') {
                            setRejecting(null);
                            focusItem(i);
                          }
                        }}
                      >
                        <Field label="Why reject it?" value={reason} onValue={setReason} inputRef={reasonRef} maxLength={500} />
                        <button type="submit" disabled={busy}>
                          Reject
                        </button>
                        <button type="button" class="secondary" onClick={() => setRejecting(null)}>
                          Cancel
                        </button>
                      </form>
                    ) : (
                      <div class="actions">
                        <button type="button" disabled={busy} onClick={() => void approve(e)}>
                          Approve
                        </button>
                        <button type="button" class="secondary" disabled={busy} onClick={() => setRejecting(e.id)}>
                          Reject…
                        </button>
                      </div>
                    )}
                  </>
                )
              )}
            </li>
          );
        })}
      </ol>
    </>
  );
}
