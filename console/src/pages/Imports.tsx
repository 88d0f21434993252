import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { Badge, ErrorAlert, Field, Loading, Pager, SelectField, useAsync, useCursor, useTitle } from '../components/ui';
import { fieldErrors, FUNDRAISING, get, request, send, uuid } from '../lib/api';
import { uploadFile } from '../lib/upload';
import { parseCsv, saveBlob } from '../lib/csv';
import { count, counted, date, humanize } from '../lib/format';
import { useScope } from '../lib/session';
import { DONOR_MATCH_RULES, IMPORT_FIELDS, type ImportRequest, type ImportView, type ObjectView, type Page } from '../lib/types';

const DEFAULT_RULES = ['external_id', 'name_email', 'name_postcode'];
const RULE_LABELS: Record<string, string> = {
  external_id: 'The donor’s id in the source',
  email: 'Email alone',
  name_email: 'Name and email',
  name_postcode: 'Name and postcode',
  name_phone: 'Name and phone',
};

/** Uploads a file through storage's presigned PUT and completes it. */
function uploadCsv(file: File, onStep: (s: string) => void): Promise<ObjectView> {
  return uploadFile(file, { contentType: 'text/csv', purpose: 'import' }, onStep);
}

const IMPORT_STATUS_TONE: Record<string, 'neutral' | 'good' | 'warn' | 'bad'> = {
  dry_run: 'neutral',
  committing: 'warn',
  committed: 'good',
  failed: 'bad',
};

const IMPORT_STATUS_LABELS: Record<string, string> = {
  dry_run: 'Dry run, not committed',
  committing: 'Committing',
  committed: 'Committed',
  failed: 'Failed',
};

/** "3 new donors, 2 known donors, 1 error": an import's summary in words, zero counts left out. */
function summaryText(summary: Record<string, number>): string {
  const parts: [string, string, string][] = [
    ['create_donor', 'new donor', 'new donors'],
    ['match_donor', 'known donor', 'known donors'],
    ['duplicate_gift', 'duplicate', 'duplicates'],
    ['refund', 'refund', 'refunds'],
    ['error', 'error', 'errors'],
  ];
  return (
    parts
      .filter(([k]) => (summary[k] ?? 0) > 0)
      .map(([k, one, many]) => counted(summary[k], one, many))
      .join(', ') || 'no rows'
  );
}

export function ImportList() {
  useTitle('Imports');
  const writeGifts = useScope('fundraising:write');
  const writeFiles = useScope('storage:write');
  const readFiles = useScope('storage:read');
  const canWrite = writeGifts && writeFiles && readFiles;
  const [status, setStatus] = useState('');
  const { cursor, setCursor, atFirst } = useCursor([status]);
  const list = useAsync(
    (signal) => get<Page<ImportView>>(`${FUNDRAISING}/imports`, { limit: 25, cursor, status: status || undefined }, signal),
    [cursor, status],
  );
  return (
    <>
      <h1>Imports</h1>
      <p>
        Import donors and gifts from a CSV file. A dry run first shows what each row would do; nothing is written until you commit it. See the
        recognised columns in the import guide (docs/import.md).
      </p>
      {canWrite ? <NewImport /> : <p class="alert info">Your role can look at imports but not start them.</p>}
      <section class="panel" aria-labelledby="imports-title">
        <h2 id="imports-title">Imports</h2>
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
            { value: 'failed', label: 'Failed' },
          ]}
        />
        <ErrorAlert error={list.error} />
        {list.loading && <Loading what="Loading imports" />}
        {list.data && (
          <>
            <div class="table-wrap">
              <table aria-labelledby="imports-title" data-testid="import-list">
                <thead>
                  <tr>
                    <th scope="col">Started</th>
                    <th scope="col">Source</th>
                    <th scope="col">Status</th>
                    <th scope="col" class="num">Rows</th>
                    <th scope="col">What the rows do</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.data.map((i) => (
                    <tr key={i.id}>
                      <td>
                        <a href={`/imports/${i.id}`}>{date(i.created_at)}</a>
                      </td>
                      <td>{String(i.options.source ?? '')}</td>
                      <td>
                        <Badge tone={IMPORT_STATUS_TONE[i.status]}>{IMPORT_STATUS_LABELS[i.status] ?? humanize(i.status)}</Badge>
                      </td>
                      <td class="num">
                        {i.status === 'committing' ? `${count(i.rows_done)} of ${count(i.rows_total)}` : count(i.rows_total)}
                      </td>
                      <td>{summaryText(i.summary)}</td>
                    </tr>
                  ))}
                  {list.data.data.length === 0 && (
                    <tr>
                      <td colSpan={5}>{status ? 'No imports with this status.' : 'No imports yet.'}</td>
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

function NewImport() {
  const loc = useLocation();
  const [file, setFile] = useState<File | null>(null);
  const [headers, setHeaders] = useState<string[]>([]);
  const [mapping, setMapping] = useState<Record<string, string>>({});
  const [source, setSource] = useState('legacy_crm');
  const [rules, setRules] = useState<string[]>(DEFAULT_RULES);
  const [giftMatch, setGiftMatch] = useState<'reference' | 'donor_amount_date'>('reference');
  const [days, setDays] = useState('0');
  const [createFunds, setCreateFunds] = useState(false);
  const [step, setStep] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [errors, setErrors] = useState<Record<string, string>>({});

  async function pick(f: File | null) {
    setFile(f);
    setHeaders([]);
    setMapping({});
    if (!f) return;
    const head = await f.slice(0, 64 * 1024).text();
    const firstLine = parseCsv(head.split(/\r?\n/)[0] ?? '')[0] ?? [];
    setHeaders(firstLine.filter((h) => h.trim() !== ''));
  }

  async function submit(e: Event) {
    e.preventDefault();
    setError(undefined);
    setErrors({});
    if (!file) {
      setErrors({ file: 'Choose a CSV file.' });
      return;
    }
    setBusy(true);
    try {
      const obj = await uploadCsv(file, setStep);
      setStep('Running the dry run…');
      const body: ImportRequest = {
        object_id: obj.id,
        source: source.trim(),
        donor_match: DONOR_MATCH_RULES.filter((r) => rules.includes(r)),
        gift_match: giftMatch,
        create_missing_funds: createFunds,
      };
      if (giftMatch === 'donor_amount_date') body.gift_match_days = Number(days) || 0;
      const m = Object.fromEntries(Object.entries(mapping).filter(([, v]) => v));
      if (Object.keys(m).length) body.mapping = m;
      const imp = await request<ImportView>('POST', `${FUNDRAISING}/imports`, { body, idempotencyKey: uuid() });
      loc.route(`/imports/${imp.id}`);
    } catch (err) {
      setErrors(fieldErrors(err));
      setError(err);
      setStep('');
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="panel" onSubmit={submit} noValidate aria-labelledby="new-import-title">
      <h2 id="new-import-title">New import</h2>
      <div class="field">
        <label for="import-file">CSV file</label>
        <input
          id="import-file"
          type="file"
          accept=".csv,text/csv"
          aria-invalid={errors.file || errors.object_id ? 'true' : undefined}
          aria-describedby={errors.file || errors.object_id ? 'import-file-error' : undefined}
          onChange={(e) => void pick((e.currentTarget as HTMLInputElement).files?.[0] ?? null)}
        />
        {(errors.file || errors.object_id) && (
          <span class="field-error" id="import-file-error">
            {errors.file ?? errors.object_id}
          </span>
        )}
      </div>
      <Field label="Source system" hint="Lower-case letters, digits, _ . - (e.g. legacy_crm): donors’ ids and gifts’ references are this source’s." value={source} onValue={setSource} error={errors.source} />
      {headers.length > 0 && (
        <fieldset>
          <legend>Column mapping</legend>
          <p class="hint">Recognised headers are read automatically; choose a field for any other column to read.</p>
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">How each column of the file is read</caption>
              <thead>
                <tr>
                  <th scope="col">Column in the file</th>
                  <th scope="col">Read as</th>
                </tr>
              </thead>
              <tbody>
                {headers.map((h, i) => (
                  <tr key={h + i}>
                    <th scope="row">
                      <label for={`map-${i}`}>{h}</label>
                    </th>
                    <td>
                      <select id={`map-${i}`} value={mapping[h] ?? ''} onChange={(e) => setMapping({ ...mapping, [h]: (e.currentTarget as HTMLSelectElement).value })}>
                        <option value="">As recognised (or ignored)</option>
                        {IMPORT_FIELDS.map((f) => (
                          <option key={f} value={f}>
                            {humanize(f)}
                          </option>
                        ))}
                      </select>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {errors.mapping && <p class="field-error">{errors.mapping}</p>}
        </fieldset>
      )}
      <fieldset>
        <legend>Find existing donors by (in this order)</legend>
        {DONOR_MATCH_RULES.map((r) => (
          <div class="check" key={r}>
            <input
              type="checkbox"
              id={`rule-${r}`}
              checked={rules.includes(r)}
              onChange={(e) => setRules((e.currentTarget as HTMLInputElement).checked ? [...rules, r] : rules.filter((x) => x !== r))}
            />
            <label for={`rule-${r}`}>{RULE_LABELS[r]}</label>
          </div>
        ))}
        {errors.donor_match && <p class="field-error">{errors.donor_match}</p>}
      </fieldset>
      <div class="grid-3">
        <SelectField
          label="A gift already recorded is one with"
          value={giftMatch}
          onValue={(v) => setGiftMatch(v as 'reference' | 'donor_amount_date')}
          options={[
            { value: 'reference', label: 'The same reference from the same source' },
            { value: 'donor_amount_date', label: 'The same donor and amount, on a near date' },
          ]}
          error={errors.gift_match}
        />
        {giftMatch === 'donor_amount_date' && <Field label="Days apart (0 to 31)" type="number" min={0} max={31} value={days} onValue={setDays} error={errors.gift_match_days} />}
      </div>
      <div class="check">
        <input type="checkbox" id="create-funds" checked={createFunds} onChange={(e) => setCreateFunds((e.currentTarget as HTMLInputElement).checked)} />
        <label for="create-funds">Create funds the file names that do not exist yet</label>
      </div>
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

function outcomeKind(outcome: string): string {
  if (outcome.startsWith('create donor')) return 'create_donor';
  if (outcome.startsWith('match donor')) return 'match_donor';
  if (outcome.startsWith('duplicate gift')) return 'duplicate_gift';
  if (outcome.startsWith('refund gift')) return 'refund';
  if (outcome.startsWith('error')) return 'error';
  return 'other';
}

const KIND_LABELS: Record<string, string> = {
  create_donor: 'New donor and gift',
  match_donor: 'Known donor, new gift',
  duplicate_gift: 'Duplicate gift',
  refund: 'Refund',
  error: 'Error',
  other: 'Other',
};

const SHOWN = 500;

export function ImportPage({ id }: { id: string }) {
  useTitle('Import');
  const canWrite = useScope('fundraising:write');
  const imp = useAsync(() => get<ImportView>(`${FUNDRAISING}/imports/${id}`), [id]);
  const [outcomesVersion, setOutcomesVersion] = useState(0);
  const outcomes = useAsync(async () => {
    const res = await send('GET', `${FUNDRAISING}/imports/${id}/outcomes`);
    return res.text();
  }, [id, outcomesVersion]);
  const [filter, setFilter] = useState('all');
  const [error, setError] = useState<unknown>(undefined);
  const [committing, setCommitting] = useState(false);
  const pollRef = useRef<ReturnType<typeof setTimeout>>();

  const rows = useMemo(() => {
    if (!outcomes.data) return [];
    const parsed = parseCsv(outcomes.data);
    const body = parsed[0]?.[0] === 'line' ? parsed.slice(1) : parsed;
    return body.filter((r) => r.length >= 2).map(([line, outcome]) => ({ line, outcome, kind: outcomeKind(outcome) }));
  }, [outcomes.data]);
  const kinds = useMemo(() => {
    const m = new Map<string, number>();
    for (const r of rows) m.set(r.kind, (m.get(r.kind) ?? 0) + 1);
    return m;
  }, [rows]);
  const filtered = filter === 'all' ? rows : rows.filter((r) => r.kind === filter);

  // While committing, poll the import for rows_done.
  const status = imp.data?.status;
  useEffect(() => {
    if (status !== 'committing') return;
    const tick = async () => {
      try {
        const next = await get<ImportView>(`${FUNDRAISING}/imports/${id}`);
        imp.setData(next);
        if (next.status === 'committing') pollRef.current = setTimeout(tick, 1000);
        else setOutcomesVersion((v) => v + 1);
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
      const next = await request<ImportView>('POST', `${FUNDRAISING}/imports/${id}/commit`);
      imp.setData(next);
    } catch (e) {
      setError(e);
    } finally {
      setCommitting(false);
    }
  }

  if (imp.error) {
    return (
      <>
        <h1>Import</h1>
        <ErrorAlert error={imp.error} />
        <p>
          <a href="/imports">Back to imports</a>
        </p>
      </>
    );
  }
  if (!imp.data) return <Loading what="Loading the import" />;
  const v = imp.data;
  const pct = v.status === 'committed' ? 100 : v.rows_total > 0 ? Math.floor((v.rows_done / v.rows_total) * 100) : 0;
  const ignored = (v.options.ignored_columns as string[] | undefined) ?? [];
  return (
    <>
      <div class="page-head">
        <h1>Import {date(v.created_at)}</h1>
        <a class="button secondary" href="/imports">
          All imports
        </a>
      </div>
      <section class="panel" aria-labelledby="import-status-title">
        <h2 id="import-status-title">Where it stands</h2>
        <p>
          <Badge tone={IMPORT_STATUS_TONE[v.status] ?? 'neutral'}>
            <span data-testid="import-status">{humanize(v.status)}</span>
          </Badge>{' '}
          {count(v.rows_total)} rows{v.options.source ? ` from ${String(v.options.source)}` : ''}.
        </p>
        {v.error && (
          <div class="alert error" role="alert">
            <p>{v.error}</p>
          </div>
        )}
        {ignored.length > 0 && <p>Columns ignored: {ignored.join(', ')}.</p>}
        {(v.status === 'committing' || v.status === 'committed') && (
          <div class="progress-row">
            <label for="import-progress">Written</label>
            <progress id="import-progress" data-testid="import-progress" max={100} value={pct}>
              {pct}%
            </progress>
            <span aria-hidden="true" data-testid="import-progress-text">
              {pct}%
            </span>
            <span class="muted">
              ({count(v.rows_done)} of {count(v.rows_total)} rows)
            </span>
          </div>
        )}
        <div class="table-wrap">
          <table>
            <caption>Rows by outcome{v.status === 'dry_run' ? ' (dry run: nothing written yet)' : ''}</caption>
            <thead>
              <tr>
                <th scope="col">Outcome</th>
                <th scope="col" class="num">Rows</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(v.summary).map(([k, n]) => (
                <tr key={k}>
                  <th scope="row">{KIND_LABELS[k] ?? humanize(k)}</th>
                  <td class="num">{count(n)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <ErrorAlert error={error} />
        {canWrite && v.status === 'dry_run' && (
          <div class="actions">
            <button type="button" disabled={committing} onClick={() => void commit()}>
              {committing ? 'Queuing…' : 'Commit this import'}
            </button>
          </div>
        )}
      </section>

      <section class="panel" aria-labelledby="outcomes-title">
        <div class="panel-head">
          <h2 id="outcomes-title">Every row’s outcome</h2>
          {outcomes.data && (
            <button type="button" class="secondary" onClick={() => saveBlob(new Blob([outcomes.data!], { type: 'text/csv' }), `import-${id}-outcomes.csv`)}>
              Download the outcome file
            </button>
          )}
        </div>
        <ErrorAlert error={outcomes.error} />
        {outcomes.loading && <Loading what="Loading outcomes" />}
        {outcomes.data && (
          <>
            <SelectField
              label="Show rows"
              class="inline"
              value={filter}
              onValue={setFilter}
              options={[
                { value: 'all', label: `All (${count(rows.length)})` },
                ...[...kinds.entries()].map(([k, n]) => ({ value: k, label: `${KIND_LABELS[k] ?? k} (${count(n)})` })),
              ]}
            />
            <div class="table-wrap">
              <table data-testid="import-outcomes">
                <caption>
                  {filter === 'all' ? 'All rows' : KIND_LABELS[filter]}
                  {filtered.length > SHOWN ? `: the first ${SHOWN} of ${count(filtered.length)} (the outcome file has them all)` : ''}
                </caption>
                <thead>
                  <tr>
                    <th scope="col" class="num">
                      Line
                    </th>
                    <th scope="col">Outcome</th>
                  </tr>
                </thead>
                <tbody>
                  {filtered.slice(0, SHOWN).map((r) => (
                    <tr key={r.line} class={r.kind === 'error' ? 'error-row' : undefined}>
                      <td class="num">{r.line}</td>
                      <td>{r.outcome}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )}
      </section>
    </>
  );
}
