// SMS contacts (messaging's /v1/contacts): the list with its filters and a form for a new contact; one contact,
// editable (a JSON merge patch), its attributes, its number's place on the do-not-contact list, and deleting it.
import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { Badge, ErrorAlert, Field, Loading, Pager, SelectField, useAsync, useCursor, useTitle } from '../components/ui';
import { ApiError, fieldErrors, get, MESSAGING, request, send, uuid } from '../lib/api';
import { date } from '../lib/format';
import { attributeText, blank, contactName, parseTags, reasonText, useActorNames } from '../lib/messaging';
import { KillSwitch } from '../components/KillSwitch';
import { useScope } from '../lib/session';
import type { AttributeValue, ContactInput, ContactPatch, ContactView, DoNotContactView, Page } from '../lib/types';

const PHONE_HINT = 'Such as 07700 900123 or +44 7700 900123.';

/** The first message among `errors` for a field or its members (`tags`, `tags.0`...). */
function errorFor(errors: Record<string, string>, field: string): string | undefined {
  return errors[field] ?? Object.entries(errors).find(([k]) => k.startsWith(`${field}.`) || k.startsWith(`${field}[`))?.[1];
}

/** Moves focus to the first field marked invalid inside `form`, once it has rendered. */
function focusFirstInvalid(form: HTMLElement | null) {
  setTimeout(() => form?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
}

export function ContactList() {
  useTitle('Contacts');
  const canWrite = useScope('messaging:write');
  const [text, setText] = useState('');
  const [q, setQ] = useState('');
  const [tagText, setTagText] = useState('');
  const [tag, setTag] = useState('');
  const [dnc, setDnc] = useState('');
  const { cursor, setCursor, atFirst } = useCursor([q, tag, dnc]);
  const list = useAsync(
    (signal) => get<Page<ContactView>>(`${MESSAGING}/contacts`, { q, tag, do_not_contact: dnc, limit: 50, cursor }, signal),
    [q, tag, dnc, cursor],
  );
  const filtered = q || tag || dnc;
  const caption = [
    q ? `matching “${q}”` : '',
    tag ? `tagged “${tag}”` : '',
    dnc === 'true' ? 'on the do-not-contact list' : dnc === 'false' ? 'not on the do-not-contact list' : '',
  ]
    .filter(Boolean)
    .join(', ');
  return (
    <>
      <div class="page-head">
        <h1>Contacts</h1>
        <div class="actions">
          <a class="button secondary" href="/contacts/imports">
            Contact imports
          </a>
          <a class="button secondary" href="/do-not-contact">
            Do-not-contact list
          </a>
        </div>
      </div>
      <p class="hint-line">The people the charity may text. A number on the do-not-contact list is never texted, whatever else a contact says.</p>
      <KillSwitch />
      {canWrite && <NewContact onCreated={() => (atFirst ? list.reload() : setCursor(undefined))} />}
      <section class="panel" aria-labelledby="contacts-title">
        <h2 id="contacts-title">All contacts</h2>
        <form
          role="search"
          aria-label="Contacts"
          class="search-form"
          onSubmit={(e) => {
            e.preventDefault();
            setQ(text.trim());
            setTag(tagText.trim());
          }}
        >
          <Field label="Search by name, email, or 3 or more digits of the number" type="search" value={text} onValue={setText} name="q" />
          <Field label="Tag" type="search" value={tagText} onValue={setTagText} name="tag" />
          <SelectField
            label="Do not contact"
            value={dnc}
            onValue={setDnc}
            options={[
              { value: '', label: 'Everyone' },
              { value: 'true', label: 'Only numbers on the do-not-contact list' },
              { value: 'false', label: 'Only numbers not on the list' },
            ]}
          />
          <button type="submit">Search</button>
        </form>
        <ErrorAlert error={list.error} />
        {list.loading && <Loading what="Loading contacts" />}
        {list.data && (
          <>
            <div class="table-wrap">
              <table data-testid="contact-list">
                <caption>{filtered ? `Contacts ${caption}, newest first` : 'Contacts, newest first'}</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Number</th>
                    <th scope="col">Tags</th>
                    <th scope="col">Texting</th>
                    <th scope="col">Added</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.data.map((c) => (
                    <tr key={c.id} data-phone={c.phone}>
                      <td>
                        <a href={`/contacts/${c.id}`}>{contactName(c)}</a>
                      </td>
                      <td class="phone">{c.phone}</td>
                      <td>{c.tags.length ? c.tags.join(', ') : '—'}</td>
                      <td>{c.do_not_contact ? <Badge tone="bad">Do not contact</Badge> : <span class="muted">—</span>}</td>
                      <td>{date(c.created_at)}</td>
                    </tr>
                  ))}
                  {list.data.data.length === 0 && (
                    <tr>
                      <td colSpan={5}>{filtered ? 'No contacts match.' : 'No contacts yet.'}</td>
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

const EMPTY = { phone: '', first_name: '', last_name: '', email: '', tags: '', consent_source: '', consented_at: '' };

function NewContact({ onCreated }: { onCreated: (c: ContactView) => void }) {
  const [v, setV] = useState(EMPTY);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [created, setCreated] = useState<ContactView | null>(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const phoneRef = useRef<HTMLInputElement>(null);
  const set = (k: keyof typeof EMPTY) => (value: string) => setV((cur) => ({ ...cur, [k]: value }));

  async function submit(e: Event) {
    e.preventDefault();
    if (busy) return;
    setError(undefined);
    setCreated(null);
    if (!v.phone.trim()) {
      setErrors({ phone: 'Enter a mobile number.' });
      focusFirstInvalid(formRef.current);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const body: ContactInput = {
        phone: v.phone.trim(),
        first_name: blank(v.first_name),
        last_name: blank(v.last_name),
        email: blank(v.email),
        tags: parseTags(v.tags),
        consent_source: blank(v.consent_source),
        consented_at: blank(v.consented_at),
      };
      const c = await request<ContactView>('POST', `${MESSAGING}/contacts`, { body, idempotencyKey: uuid() });
      setCreated(c);
      setV(EMPTY);
      onCreated(c);
      // Ready for the next one.
      setTimeout(() => phoneRef.current?.focus(), 0);
    } catch (err) {
      const fe = fieldErrors(err);
      setErrors(fe);
      setError(err);
      if (Object.keys(fe).length) focusFirstInvalid(formRef.current);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form ref={formRef} class="panel" onSubmit={submit} noValidate aria-labelledby="new-contact-title">
      <h2 id="new-contact-title">New contact</h2>
      <div class="grid-3">
        <Field label="Mobile number (required)" type="tel" autoComplete="off" inputRef={phoneRef} hint={PHONE_HINT} value={v.phone} onValue={set('phone')} error={errors.phone} maxLength={40} required />
        <Field label="First name" autoComplete="off" value={v.first_name} onValue={set('first_name')} error={errors.first_name} maxLength={100} />
        <Field label="Last name" autoComplete="off" value={v.last_name} onValue={set('last_name')} error={errors.last_name} maxLength={100} />
        <Field label="Email" type="email" autoComplete="off" value={v.email} onValue={set('email')} error={errors.email} maxLength={254} />
        <Field label="Tags" hint="Separated by commas, such as “gala 2025, volunteers”." autoComplete="off" value={v.tags} onValue={set('tags')} error={errorFor(errors, 'tags')} />
      </div>
      <fieldset>
        <legend>Consent to be texted</legend>
        <div class="grid-3">
          <Field label="Where they agreed" hint="Such as “website sign-up” or “paper form at the gala”." autoComplete="off" value={v.consent_source} onValue={set('consent_source')} error={errors.consent_source} maxLength={200} />
          <Field label="When they agreed" type="date" value={v.consented_at} onValue={set('consented_at')} error={errors.consented_at} />
        </div>
      </fieldset>
      <ErrorAlert error={error} />
      <p role="status" class="notice" data-testid="contact-created">
        {created && (
          <>
            Contact added: <a href={`/contacts/${created.id}`}>{contactName(created) === created.phone ? created.phone : `${contactName(created)}, ${created.phone}`}</a>
            {created.do_not_contact ? ' (the number is on the do-not-contact list)' : ''}.
          </>
        )}
      </p>
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Adding…' : 'Add contact'}
        </button>
      </div>
    </form>
  );
}

/** The date part of a timestamp, for a date input (consent is recorded at midnight UTC of the day given). */
function dateInput(iso: string | null | undefined): string {
  return iso ? iso.slice(0, 10) : '';
}

function formOf(c: ContactView) {
  return {
    phone: c.phone,
    first_name: c.first_name ?? '',
    last_name: c.last_name ?? '',
    email: c.email ?? '',
    tags: c.tags.join(', '),
    consent_source: c.consent_source ?? '',
    consented_at: dateInput(c.consented_at),
  };
}

/** The merge patch that turns `c` into what the form says: only what changed. */
function patchOf(c: ContactView, v: ReturnType<typeof formOf>): ContactPatch {
  const patch: ContactPatch = {};
  if (v.phone.trim() !== c.phone) patch.phone = v.phone.trim();
  for (const k of ['first_name', 'last_name', 'email', 'consent_source'] as const) {
    const next = blank(v[k]);
    if (next !== (c[k] ?? null)) patch[k] = next;
  }
  const tags = parseTags(v.tags);
  if (tags.map((t) => t.toLowerCase()).join('\n') !== c.tags.join('\n')) patch.tags = tags;
  if (v.consented_at !== dateInput(c.consented_at)) patch.consented_at = blank(v.consented_at);
  return patch;
}

export function ContactPage({ id }: { id: string }) {
  const canWrite = useScope('messaging:write');
  const loc = useLocation();
  const contact = useAsync(() => get<ContactView>(`${MESSAGING}/contacts/${id}`), [id]);
  const c = contact.data;
  const entry = useAsync(async () => {
    if (!c?.do_not_contact) return null;
    return get<DoNotContactView>(`${MESSAGING}/do-not-contact/${encodeURIComponent(c.phone)}`).catch((e) => {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    });
  }, [c?.phone, c?.do_not_contact]);
  const [notice, setNotice] = useState('');
  const [deleteError, setDeleteError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  useTitle(c ? contactName(c) : 'Contact');

  if (contact.error) {
    return (
      <>
        <h1>Contact</h1>
        <ErrorAlert error={contact.error} />
        <p>
          <a href="/contacts">Back to contacts</a>
        </p>
      </>
    );
  }
  if (!c) return <Loading what="Loading the contact" />;

  async function remove() {
    if (!c) return;
    if (!confirm(`Delete ${contactName(c)} (${c.phone})? Their number stays on the do-not-contact list if it is there.`)) return;
    setBusy(true);
    setDeleteError(undefined);
    try {
      await request('DELETE', `${MESSAGING}/contacts/${c.id}`);
      loc.route('/contacts');
    } catch (err) {
      setDeleteError(err);
      setBusy(false);
    }
  }

  return (
    <>
      <div class="page-head">
        <div>
          <h1 data-testid="contact-name">{contactName(c)}</h1>
          <p class="contact-sub">
            <span data-testid="contact-phone">{c.phone}</span>{' '}
            {c.do_not_contact && (
              <span data-testid="contact-dnc-badge">
                <Badge tone="bad">Do not contact</Badge>
              </span>
            )}
          </p>
        </div>
        <a class="button secondary" href="/contacts">
          All contacts
        </a>
      </div>
      <p role="status" class="notice" data-testid="contact-notice">
        {notice}
      </p>

      <div class="columns">
        {canWrite ? (
          <EditContact contact={c} onSaved={(next) => contact.setData(next)} onNotice={setNotice} />
        ) : (
          <section class="panel" aria-labelledby="details-title">
            <h2 id="details-title">Details</h2>
            <dl class="facts">
              <dt>Mobile number</dt>
              <dd>{c.phone}</dd>
              <dt>First name</dt>
              <dd>{c.first_name ?? '—'}</dd>
              <dt>Last name</dt>
              <dd>{c.last_name ?? '—'}</dd>
              <dt>Email</dt>
              <dd>{c.email ?? '—'}</dd>
              <dt>Tags</dt>
              <dd>{c.tags.length ? c.tags.join(', ') : '—'}</dd>
              <dt>Consent given</dt>
              <dd>{c.consent_source ?? '—'}</dd>
              <dt>Consent date</dt>
              <dd>{c.consented_at ? date(dateInput(c.consented_at)) : '—'}</dd>
            </dl>
          </section>
        )}
        <DoNotContactPanel
          contact={c}
          entry={entry.data ?? null}
          entryError={entry.error}
          canWrite={canWrite}
          onListed={(e) => {
            contact.setData({ ...c, do_not_contact: true });
            entry.setData(e);
            setNotice(`${c.phone} is on the do-not-contact list: it will not be texted.`);
          }}
        />
      </div>

      <Attributes contact={c} canWrite={canWrite} onSaved={(next) => contact.setData(next)} onNotice={setNotice} />

      <section class="panel" aria-labelledby="record-title">
        <h2 id="record-title">Record</h2>
        <dl class="facts">
          <dt>Added</dt>
          <dd>{date(c.created_at)}</dd>
          <dt>Last changed</dt>
          <dd>{date(c.updated_at)}</dd>
          <dt>Revision</dt>
          <dd>{c.revision}</dd>
          {c.donor_id && (
            <>
              <dt>Donor</dt>
              <dd>
                <a href={`/donors/${c.donor_id}`}>The donor this contact is</a>
              </dd>
            </>
          )}
        </dl>
        {canWrite && (
          <>
            <ErrorAlert error={deleteError} />
            <div class="actions">
              <button type="button" class="danger" disabled={busy} onClick={() => void remove()}>
                Delete contact
              </button>
            </div>
            <p class="hint">Deleting a contact leaves its number on the do-not-contact list if it is there.</p>
          </>
        )}
      </section>
    </>
  );
}

function EditContact({ contact: c, onSaved, onNotice }: { contact: ContactView; onSaved: (c: ContactView) => void; onNotice: (s: string) => void }) {
  const [v, setV] = useState(() => formOf(c));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const set = (k: keyof ReturnType<typeof formOf>) => (value: string) => setV((cur) => ({ ...cur, [k]: value }));

  // The contact as the service has it now (after a save, or a change made elsewhere on the page).
  useEffect(() => setV(formOf(c)), [c.id, c.revision]);

  async function save(e: Event) {
    e.preventDefault();
    if (busy) return;
    setError(undefined);
    onNotice('');
    if (!v.phone.trim()) {
      setErrors({ phone: 'A contact needs a mobile number.' });
      focusFirstInvalid(formRef.current);
      return;
    }
    setErrors({});
    const patch = patchOf(c, v);
    if (Object.keys(patch).length === 0) {
      onNotice('Nothing to save: no field has changed.');
      return;
    }
    setBusy(true);
    try {
      const next = await request<ContactView>('PATCH', `${MESSAGING}/contacts/${c.id}`, { body: patch, contentType: 'application/merge-patch+json' });
      onSaved(next);
      onNotice('Contact saved.');
    } catch (err) {
      const fe = fieldErrors(err);
      setErrors(fe);
      setError(err);
      if (Object.keys(fe).length) focusFirstInvalid(formRef.current);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form ref={formRef} class="panel" onSubmit={save} noValidate aria-labelledby="details-title">
      <h2 id="details-title">Details</h2>
      <Field label="Mobile number (required)" type="tel" autoComplete="off" hint={PHONE_HINT} value={v.phone} onValue={set('phone')} error={errors.phone} maxLength={40} required />
      <div class="grid-2">
        <Field label="First name" autoComplete="off" value={v.first_name} onValue={set('first_name')} error={errors.first_name} maxLength={100} />
        <Field label="Last name" autoComplete="off" value={v.last_name} onValue={set('last_name')} error={errors.last_name} maxLength={100} />
      </div>
      <Field label="Email" type="email" autoComplete="off" value={v.email} onValue={set('email')} error={errors.email} maxLength={254} />
      <Field label="Tags" hint="Separated by commas." autoComplete="off" value={v.tags} onValue={set('tags')} error={errorFor(errors, 'tags')} />
      <fieldset>
        <legend>Consent to be texted</legend>
        <div class="grid-2">
          <Field label="Where they agreed" autoComplete="off" value={v.consent_source} onValue={set('consent_source')} error={errors.consent_source} maxLength={200} />
          <Field label="When they agreed" type="date" value={v.consented_at} onValue={set('consented_at')} error={errors.consented_at} />
        </div>
      </fieldset>
      <ErrorAlert error={error} />
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : 'Save contact'}
        </button>
      </div>
    </form>
  );
}

function DoNotContactPanel({
  contact: c,
  entry,
  entryError,
  canWrite,
  onListed,
}: {
  contact: ContactView;
  entry: DoNotContactView | null;
  entryError: unknown;
  canWrite: boolean;
  onListed: (e: DoNotContactView) => void;
}) {
  const actor = useActorNames();
  const [note, setNote] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const headingRef = useRef<HTMLHeadingElement>(null);

  async function add(e: Event) {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(undefined);
    setErrors({});
    try {
      const res = await send('POST', `${MESSAGING}/do-not-contact`, { body: { phone: c.phone, note: blank(note) } });
      const listed = (await res.json()) as DoNotContactView;
      setNote('');
      onListed(listed);
      // The form is gone: the panel's heading takes focus, and the notice says what happened.
      setTimeout(() => headingRef.current?.focus(), 0);
    } catch (err) {
      setErrors(fieldErrors(err));
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="panel" aria-labelledby="dnc-title">
      <h2 id="dnc-title" ref={headingRef} tabIndex={-1}>
        Do-not-contact list
      </h2>
      {c.do_not_contact ? (
        <>
          <p>
            <Badge tone="bad">Do not contact</Badge> This number is on the do-not-contact list: it is never texted, whatever a campaign or import says.
          </p>
          <ErrorAlert error={entryError} />
          {entry && (
            <dl class="facts" data-testid="contact-dnc-entry">
              <dt>Why</dt>
              <dd>{reasonText(entry.reason)}</dd>
              <dt>Note</dt>
              <dd>{entry.note ?? '—'}</dd>
              <dt>Added by</dt>
              <dd>{actor(entry.added_by)}</dd>
              <dt>When</dt>
              <dd>{date(entry.added_at)}</dd>
            </dl>
          )}
          {entry &&
            (entry.reason === 'staff' ? (
              <p class="hint">
                Staff put it there, so staff can take it off: see the <a href="/do-not-contact">do-not-contact list</a>.
              </p>
            ) : (
              <p class="hint">The person opted out themselves: only they can opt back in, by texting START to the charity’s number.</p>
            ))}
        </>
      ) : (
        <>
          <p>This number is not on the do-not-contact list.</p>
          {canWrite && (
            <form onSubmit={add} noValidate>
              <Field label="Note (optional)" hint="Why, for the record: such as “asked by phone not to be texted”." autoComplete="off" value={note} onValue={setNote} error={errors.note} maxLength={500} />
              <ErrorAlert error={error} />
              <div class="actions">
                <button type="submit" class="danger" disabled={busy}>
                  {busy ? 'Adding…' : 'Put this number on the do-not-contact list'}
                </button>
              </div>
            </form>
          )}
        </>
      )}
    </section>
  );
}

type AttributeType = 'text' | 'number' | 'yes' | 'no';

function Attributes({
  contact: c,
  canWrite,
  onSaved,
  onNotice,
}: {
  contact: ContactView;
  canWrite: boolean;
  onSaved: (c: ContactView) => void;
  onNotice: (s: string) => void;
}) {
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const [type, setType] = useState<AttributeType>('text');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const entries = Object.entries(c.attributes).sort(([a], [b]) => a.localeCompare(b));

  async function patch(attributes: Record<string, AttributeValue | null>): Promise<boolean> {
    setBusy(true);
    setError(undefined);
    onNotice('');
    try {
      const next = await request<ContactView>('PATCH', `${MESSAGING}/contacts/${c.id}`, { body: { attributes }, contentType: 'application/merge-patch+json' });
      onSaved(next);
      return true;
    } catch (err) {
      const fe = fieldErrors(err);
      setErrors({ key: errorFor(fe, 'attributes') ?? '' });
      setError(err);
      return false;
    } finally {
      setBusy(false);
    }
  }

  async function setAttribute(e: Event) {
    e.preventDefault();
    if (busy) return;
    const k = key.trim();
    const errs: Record<string, string> = {};
    if (!/^[a-z][a-z0-9_]*$/.test(k)) errs.key = 'Lower-case letters, digits and _, starting with a letter (such as branch).';
    let v: AttributeValue = value;
    if (type === 'number') {
      v = Number(value.trim());
      if (value.trim() === '' || !Number.isFinite(v)) errs.value = 'Enter a number, such as 12 or 3.5.';
    } else if (type === 'yes' || type === 'no') v = type === 'yes';
    setErrors(errs);
    setError(undefined);
    if (Object.keys(errs).length) {
      focusFirstInvalid(formRef.current);
      return;
    }
    if (await patch({ [k]: v })) {
      setKey('');
      setValue('');
      onNotice(`Attribute ${k} saved.`);
    } else focusFirstInvalid(formRef.current);
  }

  async function removeAttribute(k: string) {
    if (busy) return;
    if (await patch({ [k]: null })) {
      onNotice(`Attribute ${k} removed.`);
      setTimeout(() => headingRef.current?.focus(), 0);
    }
  }

  return (
    <section class="panel" aria-labelledby="attributes-title">
      <h2 id="attributes-title" ref={headingRef} tabIndex={-1}>
        Attributes
      </h2>
      <p class="hint">What templates and segments use: a text, a number or yes/no for each key.</p>
      {entries.length === 0 ? (
        <p>None.</p>
      ) : (
        <div class="table-wrap">
          <table aria-labelledby="attributes-title" data-testid="contact-attributes">
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Value</th>
                {canWrite && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {entries.map(([k, val]) => (
                <tr key={k}>
                  <th scope="row">
                    <code>{k}</code>
                  </th>
                  <td>{attributeText(val)}</td>
                  {canWrite && (
                    <td class="row-actions">
                      <button type="button" class="secondary" disabled={busy} onClick={() => void removeAttribute(k)}>
                        Remove<span class="visually-hidden"> attribute {k}</span>
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {canWrite && (
        <form ref={formRef} onSubmit={setAttribute} noValidate aria-labelledby="set-attribute-title">
          <h3 id="set-attribute-title" class="h3">
            Set an attribute
          </h3>
          <div class="inline-form">
            <Field label="Key" autoComplete="off" value={key} onValue={setKey} error={errors.key || undefined} maxLength={50} />
            <SelectField
              label="Type"
              value={type}
              onValue={(t) => setType(t as AttributeType)}
              options={[
                { value: 'text', label: 'Text' },
                { value: 'number', label: 'Number' },
                { value: 'yes', label: 'Yes' },
                { value: 'no', label: 'No' },
              ]}
            />
            {(type === 'text' || type === 'number') && (
              <Field label="Value" autoComplete="off" inputMode={type === 'number' ? 'decimal' : undefined} value={value} onValue={setValue} error={errors.value} maxLength={500} />
            )}
            <button type="submit" disabled={busy}>
              Set attribute
            </button>
          </div>
          <ErrorAlert error={error} />
        </form>
      )}
    </section>
  );
}
