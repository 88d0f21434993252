// Contact imports (messaging's /v1/contact-imports): a CSV read in the browser and sent in the request's JSON with
// its consent and options and a column mapping; the dry run's outcomes by row, filtered; the commit with its progress.
import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { Badge, ErrorAlert, Field, Loading, Pager, SelectField, useAsync, useCursor, useTitle } from '../components/ui';
import { fieldErrors, get, MESSAGING, request, uuid } from '../lib/api';
import { parseCsv } from '../lib/csv';
import { bytes, count, counted, date, humanize } from '../lib/format';
import { blank, OUTCOME_LABELS, OUTCOME_TONE, outcomeLabel, parseTags, useActorNames } from '../lib/messaging';
import { KillSwitch } from '../components/KillSwitch';
import { useScope } from '../lib/session';
import {
  CONTACT_IMPORT_FIELDS,
  CONTACT_IMPORT_OUTCOMES,
  type ContactImportRequest,
  type ContactImportRowView,
  type ContactImportView,
  type Page,
} from '../lib/types';

/** The largest file messaging reads (10 MiB). */
const MAX_FILE_BYTES = 10 * 1024 * 1024;

const STATUS_TONE: Record<string, 'neutral' | 'good' | 'warn' | 'bad'> = {
  dry_run: 'neutral',
  committing: 'warn',
  committed: 'good',
};

const STATUS_LABELS: Record<string, string> = {
  dry_run: 'Dry run, not committed',
  committing: 'Committing',
  committed: 'Committed',
};

const FIELD_LABELS: Record<string, string> = {
  phone: 'Mobile number',
  first_name: 'First name',
  last_name: 'Last name',
  email: 'Email',
  tags: 'Tags (separated by ; or |)',
  consent_source: 'Where they agreed (consent source)',
  consented_at: 'When they agreed (consent date)',
  ignore: 'Ignore this column',
};

/** "17 new, 1 update, 1 duplicate...": an import's summary in words, zero counts left out. */
function summaryText(summary: Record<string, number>): string {
  const parts: [string, string, string][] = [
    ['create', 'new contact', 'new contacts'],
    ['update', 'update', 'updates'],
    ['unchanged', 'unchanged', 'unchanged'],
    ['duplicate_in_file', 'duplicate', 'duplicates'],
    ['invalid_number', 'invalid number', 'invalid numbers'],
    ['invalid', 'invalid row', 'invalid rows'],
    ['do_not_contact', 'on the do-not-contact list', 'on the do-not-contact list'],
  ];
  return (
    parts
      .filter(([k]) => (summary[k] ?? 0) > 0)
      .map(([k, one, many]) => counted(summary[k], one, many))
      .join(', ') || 'no rows'
  );
}

/** A mapping's field as the import stored it (`"phone"`, `{"attribute": "branch"}`), in words. */
function mappedText(v: unknown): string {
  if (typeof v === 'string') return FIELD_LABELS[v] ?? humanize(v);
  if (v && typeof v === 'object' && 'attribute' in v) return `Attribute ${String((v as { attribute: unknown }).attribute)}`;
  return JSON.stringify(v);
}

export function ContactImportList() {
  useTitle('Contact imports');
  const canWrite = useScope('messaging:write');
  const actor = useActorNames();
  const [status, setStatus] = useState('');
  const { cursor, setCursor, atFirst } = useCursor([status]);
  const list = useAsync(
    (signal) => get<Page<ContactImportView>>(`${MESSAGING}/contact-imports`, { limit: 25, cursor, status: status || undefined }, signal),
    [cursor, status],
  );
  return (
    <>
      <div class="page-head">
        <h1>Contact imports</h1>
        <a class="button secondary" href="/contacts">
          All contacts
        </a>
      </div>
      <p class="hint-line">
        Import contacts from a CSV file with a column of mobile numbers. A dry run first shows what each row would do; nothing is written until you commit
        it. Numbers on the do-not-contact list are never imported.
      </p>
      <KillSwitch />
      {canWrite ? <NewContactImport /> : <p class="alert info">Your role can look at contact imports but not start them.</p>}
      <section class="panel" aria-labelledby="contact-imports-title">
        <h2 id="contact-imports-title">Past contact imports</h2>
        <SelectField
          label="Show"
          class="inline"
          value={status}
          onValue={setStatus}
          options={[
            { value: '', label: 'All imports' },
            { value: 'dry_run', label: 'Dry runs not committed' },
            { value: 'committing', label: 'Committing' },
            { value: 'committed', label: 'Committed' },
          ]}
        />
        <ErrorAlert error={list.error} />
        {list.loading && <Loading what="Loading contact imports" />}
        {list.data && (
          <>
            <div class="table-wrap">
              <table aria-labelledby="contact-imports-title" data-testid="contact-import-list">
                <thead>
                  <tr>
                    <th scope="col">Started</th>
                    <th scope="col">Consent source</th>
                    <th scope="col">By</th>
                    <th scope="col">Status</th>
                    <th scope="col" class="num">Rows</th>
                    <th scope="col">What the rows do</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.data.map((i) => (
                    <tr key={i.id}>
                      <td>
                        <a href={`/contacts/imports/${i.id}`}>{date(i.created_at)}</a>
                      </td>
                      <td>{String(i.options.consent_source ?? '')}</td>
                      <td>{actor(i.created_by)}</td>
                      <td>
                        <Badge tone={STATUS_TONE[i.status] ?? 'neutral'}>{STATUS_LABELS[i.status] ?? humanize(i.status)}</Badge>
                      </td>
                      <td class="num">{i.status === 'committing' ? `${count(i.rows_done)} of ${count(i.rows_total)}` : count(i.rows_total)}</td>
                      <td>{summaryText(i.summary)}</td>
                    </tr>
                  ))}
                  {list.data.data.length === 0 && (
                    <tr>
                      <td colSpan={6}>{status ? 'No contact imports with this status.' : 'No contact imports yet.'}</td>
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

function NewContactImport() {
  const loc = useLocation();
  const [file, setFile] = useState<File | null>(null);
  const [headers, setHeaders] = useState<string[]>([]);
  const [mapping, setMapping] = useState<Record<string, string>>({});
  const [attributeKeys, setAttributeKeys] = useState<Record<string, string>>({});
  const [consentSource, setConsentSource] = useState('');
  const [consentedAt, setConsentedAt] = useState('');
  const [country, setCountry] = useState('');
  const [tags, setTags] = useState('');
  const [updateExisting, setUpdateExisting] = useState(true);
  const [step, setStep] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const formRef = useRef<HTMLFormElement>(null);

  async function pick(f: File | null) {
    setFile(f);
    setHeaders([]);
    setMapping({});
    setAttributeKeys({});
    if (!f) return;
    const head = await f.slice(0, 64 * 1024).text();
    const firstLine = parseCsv(head.split(/\r?\n/)[0] ?? '')[0] ?? [];
    setHeaders(firstLine.filter((h) => h.trim() !== ''));
  }

  function focusFirstInvalid() {
    setTimeout(() => formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
  }

  async function submit(e: Event) {
    e.preventDefault();
    if (busy) return;
    setError(undefined);
    const errs: Record<string, string> = {};
    if (!file) errs.csv = 'Choose a CSV file.';
    else if (file.size > MAX_FILE_BYTES) errs.csv = `The file is ${bytes(file.size)}: at most 10 MiB can be imported at once. Split it into smaller files.`;
    if (!consentSource.trim()) errs.consent_source = 'Say where these people agreed to be texted, such as “gala sign-up sheet 2025”.';
    const m: Record<string, string> = {};
    for (const h of headers) {
      const field = mapping[h];
      if (!field) continue;
      if (field === 'attribute') {
        const key = (attributeKeys[h] ?? '').trim();
        if (!key) errs[`mapping.${h}`] = 'Name the attribute, such as branch.';
        else m[h] = `attribute:${key}`;
      } else m[h] = field;
    }
    setErrors(errs);
    if (Object.keys(errs).length) {
      focusFirstInvalid();
      return;
    }
    setBusy(true);
    try {
      setStep(`Reading ${bytes(file!.size)}…`);
      const csv = await file!.text();
      setStep('Running the dry run…');
      const body: ContactImportRequest = {
        csv,
        consent_source: consentSource.trim(),
        consented_at: blank(consentedAt),
        default_country: country === 'GB' || country === 'AU' ? country : null,
        tags: parseTags(tags),
        update_existing: updateExisting,
      };
      if (Object.keys(m).length) body.mapping = m;
      const imp = await request<ContactImportView>('POST', `${MESSAGING}/contact-imports`, { body, idempotencyKey: uuid() });
      loc.route(`/contacts/imports/${imp.id}`);
    } catch (err) {
      const fe = fieldErrors(err);
      setErrors(fe);
      setError(err);
      setStep('');
      if (Object.keys(fe).length) focusFirstInvalid();
    } finally {
      setBusy(false);
    }
  }

  const fileError = errors.csv;
  const tagsError = errors.tags ?? Object.entries(errors).find(([k]) => k.startsWith('tags.'))?.[1];
  return (
    <form ref={formRef} class="panel" onSubmit={submit} noValidate aria-labelledby="new-contact-import-title">
      <h2 id="new-contact-import-title">New contact import</h2>
      <div class="field">
        <label for="contact-import-file">CSV file</label>
        <span class="hint" id="contact-import-file-hint">
          UTF-8, comma-separated, a header line first; at most 10 MiB. A column of mobile numbers is required (Phone, Mobile, Telephone…).
        </span>
        <input
          id="contact-import-file"
          type="file"
          accept=".csv,text/csv"
          aria-invalid={fileError ? 'true' : undefined}
          aria-describedby={fileError ? 'contact-import-file-hint contact-import-file-error' : 'contact-import-file-hint'}
          onChange={(e) => void pick((e.currentTarget as HTMLInputElement).files?.[0] ?? null)}
        />
        {fileError && (
          <span class="field-error" id="contact-import-file-error">
            {fileError}
          </span>
        )}
      </div>
      <fieldset>
        <legend>Consent to be texted</legend>
        <p class="hint">For rows without their own: under PECR the charity must be able to show where and when each person agreed.</p>
        <div class="grid-2">
          <Field label="Where they agreed (required)" autoComplete="off" value={consentSource} onValue={setConsentSource} error={errors.consent_source} maxLength={200} required />
          <Field label="When they agreed" type="date" value={consentedAt} onValue={setConsentedAt} error={errors.consented_at} />
        </div>
      </fieldset>
      <div class="grid-2">
        <SelectField
          label="Numbers without a country code are"
          value={country}
          onValue={setCountry}
          options={[
            { value: '', label: 'As the SMS settings say' },
            { value: 'GB', label: 'United Kingdom (07…)' },
            { value: 'AU', label: 'Australia (04…)' },
          ]}
          error={errors.default_country}
        />
        <Field label="Tags for everyone in the file" hint="Separated by commas." autoComplete="off" value={tags} onValue={setTags} error={tagsError} />
      </div>
      <div class="check">
        <input type="checkbox" id="contact-import-update" checked={updateExisting} onChange={(e) => setUpdateExisting((e.currentTarget as HTMLInputElement).checked)} />
        <label for="contact-import-update">Update existing contacts (their empty fields filled, tags added, attributes merged; consent already recorded is kept)</label>
      </div>
      {headers.length > 0 && (
        <fieldset>
          <legend>Column mapping</legend>
          <p class="hint">Recognised headers (Phone, First name, Surname, Email, Tags, Consent, Consent date…) are read automatically; choose a field for any other column to read it.</p>
          <div class="table-wrap">
            <table data-testid="contact-import-mapping">
              <caption class="visually-hidden">How each column of the file is read</caption>
              <thead>
                <tr>
                  <th scope="col">Column in the file</th>
                  <th scope="col">Read as</th>
                </tr>
              </thead>
              <tbody>
                {headers.map((h, i) => {
                  const err = errors[`mapping.${h}`];
                  const isAttr = mapping[h] === 'attribute';
                  return (
                    <tr key={h + i}>
                      <th scope="row">
                        <label for={`cmap-${i}`}>{h}</label>
                      </th>
                      <td>
                        <div class="inline-form">
                          <select
                            id={`cmap-${i}`}
                            value={mapping[h] ?? ''}
                            aria-invalid={err && !isAttr ? 'true' : undefined}
                            aria-describedby={err && !isAttr ? `cmap-${i}-error` : undefined}
                            onChange={(e) => setMapping({ ...mapping, [h]: (e.currentTarget as HTMLSelectElement).value })}
                          >
                            <option value="">As recognised (or ignored)</option>
                            {CONTACT_IMPORT_FIELDS.map((f) => (
                              <option key={f} value={f}>
                                {FIELD_LABELS[f] ?? humanize(f)}
                              </option>
                            ))}
                            <option value="attribute">An attribute…</option>
                          </select>
                          {isAttr && (
                            <div class="field compact">
                              <label for={`cmap-${i}-key`}>
                                Attribute key<span class="visually-hidden"> for the column {h}</span>
                              </label>
                              <input
                                id={`cmap-${i}-key`}
                                autoComplete="off"
                                value={attributeKeys[h] ?? ''}
                                maxLength={50}
                                aria-invalid={err ? 'true' : undefined}
                                aria-describedby={err ? `cmap-${i}-error` : undefined}
                                onInput={(e) => setAttributeKeys({ ...attributeKeys, [h]: (e.currentTarget as HTMLInputElement).value })}
                              />
                            </div>
                          )}
                        </div>
                        {err && (
                          <span class="field-error" id={`cmap-${i}-error`}>
                            {err}
                          </span>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          {errors.mapping && <p class="field-error">{errors.mapping}</p>}
        </fieldset>
      )}
      <ErrorAlert error={error} />
      <p role="status" class="notice">
        {step}
      </p>
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Working…' : 'Upload and check (dry run)'}
        </button>
      </div>
    </form>
  );
}

export function ContactImportPage({ id }: { id: string }) {
  useTitle('Contact import');
  const canWrite = useScope('messaging:write');
  const actor = useActorNames();
  const imp = useAsync(() => get<ContactImportView>(`${MESSAGING}/contact-imports/${id}`), [id]);
  const [outcome, setOutcome] = useState('');
  const [rowsVersion, setRowsVersion] = useState(0);
  const { cursor, setCursor, atFirst } = useCursor([outcome, rowsVersion]);
  const rows = useAsync(
    (signal) => get<Page<ContactImportRowView>>(`${MESSAGING}/contact-imports/${id}/rows`, { outcome: outcome || undefined, limit: 100, cursor }, signal),
    [id, outcome, cursor, rowsVersion],
  );
  const [error, setError] = useState<unknown>(undefined);
  const [committing, setCommitting] = useState(false);
  const pollRef = useRef<ReturnType<typeof setTimeout>>();

  // While committing, poll the import for rows_done; once written, the rows link to their contacts.
  const status = imp.data?.status;
  useEffect(() => {
    if (status !== 'committing') return;
    const tick = async () => {
      try {
        const next = await get<ContactImportView>(`${MESSAGING}/contact-imports/${id}`);
        imp.setData(next);
        if (next.status === 'committing') pollRef.current = setTimeout(tick, 700);
        else setRowsVersion((v) => v + 1);
      } catch (e) {
        setError(e);
        pollRef.current = setTimeout(tick, 3000);
      }
    };
    pollRef.current = setTimeout(tick, 700);
    return () => clearTimeout(pollRef.current);
  }, [status, id]);

  async function commit() {
    setCommitting(true);
    setError(undefined);
    try {
      const next = await request<ContactImportView>('POST', `${MESSAGING}/contact-imports/${id}/commit`);
      imp.setData(next);
      if (next.status === 'committed') setRowsVersion((v) => v + 1);
    } catch (e) {
      setError(e);
    } finally {
      setCommitting(false);
    }
  }

  if (imp.error) {
    return (
      <>
        <h1>Contact import</h1>
        <ErrorAlert error={imp.error} />
        <p>
          <a href="/contacts/imports">Back to contact imports</a>
        </p>
      </>
    );
  }
  if (!imp.data) return <Loading what="Loading the contact import" />;
  const v = imp.data;
  const pct = v.status === 'committed' ? 100 : v.rows_total > 0 ? Math.min(100, Math.floor((v.rows_done / v.rows_total) * 100)) : 0;
  const o = v.options;
  const ignored = (o.ignored_columns as string[] | undefined) ?? [];
  const optionTags = (o.tags as string[] | undefined) ?? [];
  const mapping = Object.entries((o.mapping as Record<string, unknown> | undefined) ?? {});
  const outcomes = CONTACT_IMPORT_OUTCOMES.filter((k) => (v.summary[k] ?? 0) > 0 || k === outcome);
  return (
    <>
      <div class="page-head">
        <h1>Contact import {date(v.created_at)}</h1>
        <a class="button secondary" href="/contacts/imports">
          All contact imports
        </a>
      </div>
      <section class="panel" aria-labelledby="contact-import-status-title">
        <h2 id="contact-import-status-title">Where it stands</h2>
        <p>
          <Badge tone={STATUS_TONE[v.status] ?? 'neutral'}>
            <span data-testid="contact-import-status">{STATUS_LABELS[v.status] ?? humanize(v.status)}</span>
          </Badge>{' '}
          {counted(v.rows_total, 'row')}, started by {actor(v.created_by)}.
        </p>
        {(v.status === 'committing' || v.status === 'committed') && (
          <div class="progress-row">
            <label for="contact-import-progress">Written</label>
            <progress id="contact-import-progress" data-testid="contact-import-progress" max={100} value={pct}>
              {pct}%
            </progress>
            <span aria-hidden="true" data-testid="contact-import-progress-text">
              {pct}%
            </span>
            <span class="muted">
              ({count(v.rows_done)} of {count(v.rows_total)} rows)
            </span>
          </div>
        )}
        <div class="table-wrap">
          <table data-testid="contact-import-summary">
            <caption>
              Rows by outcome
              {v.status === 'committed' ? ' (what the commit did)' : v.status === 'committing' ? ' (the dry run’s, while the commit is written)' : ' (dry run: nothing written yet)'}
            </caption>
            <thead>
              <tr>
                <th scope="col">Outcome</th>
                <th scope="col" class="num">
                  Rows
                </th>
              </tr>
            </thead>
            <tbody>
              {CONTACT_IMPORT_OUTCOMES.map((k) => (
                <tr key={k} data-outcome={k}>
                  <th scope="row">{OUTCOME_LABELS[k]}</th>
                  <td class="num">{count(v.summary[k] ?? 0)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <dl class="facts">
          <dt>Consent source</dt>
          <dd>{String(o.consent_source ?? '—')}</dd>
          <dt>Consent date</dt>
          <dd>{o.consented_at ? date(String(o.consented_at).slice(0, 10)) : 'Only the rows’ own'}</dd>
          <dt>Local numbers read as</dt>
          <dd>{o.default_country === 'AU' ? 'Australian' : o.default_country === 'GB' ? 'British' : String(o.default_country ?? '—')}</dd>
          <dt>Tags for everyone</dt>
          <dd>{optionTags.length ? optionTags.join(', ') : 'None'}</dd>
          <dt>Existing contacts</dt>
          <dd>{o.update_existing === false ? 'Left as they are' : 'Updated'}</dd>
          <dt>Columns mapped</dt>
          <dd>{mapping.length ? mapping.map(([h, f]) => `${h}: ${mappedText(f)}`).join('; ') : 'None (recognised headers only)'}</dd>
          <dt>Columns ignored</dt>
          <dd data-testid="contact-import-ignored">{ignored.length ? ignored.join(', ') : 'None'}</dd>
        </dl>
        <ErrorAlert error={error} />
        {canWrite && v.status === 'dry_run' && (
          <div class="actions">
            <button type="button" disabled={committing} onClick={() => void commit()}>
              {committing ? 'Queuing…' : 'Commit this import'}
            </button>
          </div>
        )}
      </section>

      <section class="panel" aria-labelledby="contact-import-rows-title">
        <h2 id="contact-import-rows-title">Every row’s outcome</h2>
        <SelectField
          label="Show rows"
          class="inline"
          value={outcome}
          onValue={setOutcome}
          options={[
            { value: '', label: `All (${count(v.rows_total)})` },
            ...outcomes.map((k) => ({ value: k, label: `${OUTCOME_LABELS[k]} (${count(v.summary[k] ?? 0)})` })),
          ]}
        />
        <ErrorAlert error={rows.error} />
        {rows.loading && <Loading what="Loading rows" />}
        {rows.data && (
          <>
            <div class="table-wrap">
              <table data-testid="contact-import-rows">
                <caption>
                  {outcome ? `Rows: ${outcomeLabel(outcome)}` : 'All rows'}, in line order{v.status === 'committed' ? '; a written row’s number links to its contact' : ''}
                </caption>
                <thead>
                  <tr>
                    <th scope="col" class="num">
                      Line
                    </th>
                    <th scope="col">Number</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">Detail</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.data.data.map((r) => (
                    <tr key={r.line} data-outcome={r.outcome}>
                      <td class="num">{r.line}</td>
                      <td class="phone">{r.contact_id ? <a href={`/contacts/${r.contact_id}`}>{r.phone}</a> : (r.phone ?? '—')}</td>
                      <td>
                        <Badge tone={OUTCOME_TONE[r.outcome] ?? 'neutral'}>{outcomeLabel(r.outcome)}</Badge>
                      </td>
                      <td>{r.detail ?? ''}</td>
                    </tr>
                  ))}
                  {rows.data.data.length === 0 && (
                    <tr>
                      <td colSpan={4}>No rows with this outcome.</td>
                    </tr>
                  )}
                </tbody>
              </table>
            </div>
            <Pager next={rows.data.next_cursor} atFirst={atFirst} onNext={() => setCursor(rows.data!.next_cursor ?? undefined)} onFirst={() => setCursor(undefined)} />
          </>
        )}
      </section>
    </>
  );
}
