// The do-not-contact list (messaging's /v1/do-not-contact): numbers never texted, why, and who put them there. Staff
// add a number with a note, and take off only what staff put on: a person who opted out opts back in by texting START.
import { useRef, useState } from 'preact/hooks';
import { ErrorAlert, Field, Loading, Pager, useAsync, useCursor, useTitle } from '../components/ui';
import { fieldErrors, get, MESSAGING, request, send } from '../lib/api';
import { date } from '../lib/format';
import { blank, reasonText, useActorNames } from '../lib/messaging';
import { KillSwitch } from '../components/KillSwitch';
import { useScope } from '../lib/session';
import type { DoNotContactView, Page } from '../lib/types';

export function DoNotContactPage() {
  useTitle('Do not contact');
  const canWrite = useScope('messaging:write');
  const actor = useActorNames();
  const { cursor, setCursor, atFirst } = useCursor([]);
  const list = useAsync((signal) => get<Page<DoNotContactView>>(`${MESSAGING}/do-not-contact`, { limit: 50, cursor }, signal), [cursor]);
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const headingRef = useRef<HTMLHeadingElement>(null);

  function refresh() {
    if (atFirst) list.reload();
    else setCursor(undefined);
  }

  async function remove(e: DoNotContactView) {
    if (!confirm(`Take ${e.phone} off the do-not-contact list? It may be texted again.`)) return;
    setBusy(true);
    setError(undefined);
    setNotice('');
    try {
      await request('DELETE', `${MESSAGING}/do-not-contact/${encodeURIComponent(e.phone)}`);
      setNotice(`${e.phone} is off the do-not-contact list.`);
      refresh();
      // Its row (and button) is gone: the list's heading takes focus.
      setTimeout(() => headingRef.current?.focus(), 0);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <h1>Do not contact</h1>
      <p class="hint-line">
        A number on this list is never texted, whether or not a contact has it, and whatever a campaign or import says. People put themselves on it by
        replying STOP (or STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT); Twilio’s opt-out reports add numbers too.
      </p>
      <KillSwitch />
      {canWrite && (
        <AddNumber
          onAdded={(e, created) => {
            setNotice(created ? `${e.phone} is on the do-not-contact list.` : `${e.phone} was already on the list (${reasonText(e.reason).toLowerCase()}, ${date(e.added_at)}).`);
            refresh();
          }}
        />
      )}
      <p role="status" class="notice" data-testid="dnc-notice">
        {notice}
      </p>
      <section class="panel" aria-labelledby="dnc-list-title">
        <h2 id="dnc-list-title" ref={headingRef} tabIndex={-1}>
          Numbers not to text
        </h2>
        <ErrorAlert error={error} />
        <ErrorAlert error={list.error} />
        {list.loading && <Loading what="Loading the do-not-contact list" />}
        {list.data && (
          <>
            <div class="table-wrap">
              <table data-testid="dnc-list">
                <caption>The do-not-contact list, most recent first</caption>
                <thead>
                  <tr>
                    <th scope="col">Number</th>
                    <th scope="col">Why</th>
                    <th scope="col">Note</th>
                    <th scope="col">Added by</th>
                    <th scope="col">When</th>
                    {canWrite && <th scope="col">Actions</th>}
                  </tr>
                </thead>
                <tbody>
                  {list.data.data.map((e) => (
                    <tr key={e.phone} data-phone={e.phone}>
                      <th scope="row" class="phone">
                        {e.phone}
                      </th>
                      <td>{reasonText(e.reason)}</td>
                      <td>{e.note ?? '—'}</td>
                      <td>{actor(e.added_by)}</td>
                      <td>{date(e.added_at)}</td>
                      {canWrite && (
                        <td>
                          {e.reason === 'staff' ? (
                            <button type="button" class="secondary" disabled={busy} onClick={() => void remove(e)}>
                              Remove<span class="visually-hidden"> {e.phone}</span>
                            </button>
                          ) : (
                            <span class="small">The person opted out: only they can opt back in, by texting START.</span>
                          )}
                        </td>
                      )}
                    </tr>
                  ))}
                  {list.data.data.length === 0 && (
                    <tr>
                      <td colSpan={canWrite ? 6 : 5}>No numbers on the list.</td>
                    </tr>
                  )}
                </tbody>
              </table>
            </div>
            <Pager next={list.data.next_cursor} atFirst={atFirst} onNext={() => setCursor(list.data!.next_cursor ?? undefined)} onFirst={() => setCursor(undefined)} />
          </>
        )}
      </section>
    </>
  );
}

function AddNumber({ onAdded }: { onAdded: (e: DoNotContactView, created: boolean) => void }) {
  const [phone, setPhone] = useState('');
  const [note, setNote] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const phoneRef = useRef<HTMLInputElement>(null);

  async function add(e: Event) {
    e.preventDefault();
    if (busy) return;
    setError(undefined);
    if (!phone.trim()) {
      setErrors({ phone: 'Enter the number not to text.' });
      setTimeout(() => phoneRef.current?.focus(), 0);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const res = await send('POST', `${MESSAGING}/do-not-contact`, { body: { phone: phone.trim(), note: blank(note) } });
      const entry = (await res.json()) as DoNotContactView;
      setPhone('');
      setNote('');
      onAdded(entry, res.status === 201);
      setTimeout(() => phoneRef.current?.focus(), 0);
    } catch (err) {
      const fe = fieldErrors(err);
      setErrors(fe);
      setError(err);
      if (Object.keys(fe).length) setTimeout(() => formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form ref={formRef} class="panel" onSubmit={add} noValidate aria-labelledby="dnc-add-title">
      <h2 id="dnc-add-title">Add a number</h2>
      <div class="grid-2">
        <Field
          label="Number (required)"
          type="tel"
          autoComplete="off"
          inputRef={phoneRef}
          hint="Any number, a contact’s or not: 07700 900123, or with its country code."
          value={phone}
          onValue={setPhone}
          error={errors.phone}
          maxLength={40}
          required
        />
        <Field label="Note" hint="Why, for the record (optional)." autoComplete="off" value={note} onValue={setNote} error={errors.note} maxLength={500} />
      </div>
      <ErrorAlert error={error} />
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Adding…' : 'Add to the do-not-contact list'}
        </button>
      </div>
    </form>
  );
}
