// SMS segments (messaging's /v1/segments): saved filters over contacts, counted live. The list and a form for a new
// one; one segment, counted now, edited (a merge patch that replaces the filter) or deleted. The form counts the
// filter as it is written (POST /v1/segments/count, debounced).
import { useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { KillSwitch } from '../components/KillSwitch';
import { ErrorAlert, Field, Loading, Pager, SelectField, useAsync, useCursor, useDebouncedRequest, useTitle } from '../components/ui';
import { fieldErrors, get, MESSAGING, request, uuid } from '../lib/api';
import { count, date } from '../lib/format';
import { blank, parseTags } from '../lib/messaging';
import { useScope } from '../lib/session';
import type { AttributeCondition, AttributeOp, Page, SegmentCounts, SegmentFilter, SegmentInput, SegmentView } from '../lib/types';

const OPS: { value: AttributeOp; label: string }[] = [
  { value: 'eq', label: 'is' },
  { value: 'ne', label: 'is not' },
  { value: 'gt', label: 'is more than' },
  { value: 'gte', label: 'is at least' },
  { value: 'lt', label: 'is less than' },
  { value: 'lte', label: 'is at most' },
  { value: 'exists', label: 'is set' },
  { value: 'missing', label: 'is not set' },
];

interface ConditionRow {
  key: string;
  op: AttributeOp;
  value: string;
}

interface FormState {
  name: string;
  description: string;
  tags_any: string;
  tags_all: string;
  tags_none: string;
  attributes: ConditionRow[];
  sms_consent: '' | 'true' | 'false';
  linked: '' | 'true' | 'false';
  gave_within_months: string;
  lapsed_months: string;
  lifetime: string;
}

const EMPTY: FormState = {
  name: '',
  description: '',
  tags_any: '',
  tags_all: '',
  tags_none: '',
  attributes: [],
  sms_consent: '',
  linked: '',
  gave_within_months: '',
  lapsed_months: '',
  lifetime: '',
};

/** A value as typed: a number or true/false when it reads as one (for `is` and `is not`), else the text. */
function typedValue(op: AttributeOp, raw: string): string | number | boolean | undefined {
  if (op === 'exists' || op === 'missing') return undefined;
  const t = raw.trim();
  if (op === 'eq' || op === 'ne') {
    if (t === 'true' || t === 'false') return t === 'true';
    if (t !== '' && !Number.isNaN(Number(t))) return Number(t);
    return t;
  }
  return t === '' || Number.isNaN(Number(t)) ? t : Number(t);
}

function whole(raw: string): number | string | undefined {
  const t = raw.trim();
  if (!t) return undefined;
  return /^\d+$/.test(t) ? Number(t) : t;
}

/** The filter the form describes, as the API takes it. */
export function toFilter(v: FormState): SegmentFilter {
  const f: SegmentFilter = {};
  const any = parseTags(v.tags_any);
  const all = parseTags(v.tags_all);
  const none = parseTags(v.tags_none);
  if (any.length) f.tags_any = any;
  if (all.length) f.tags_all = all;
  if (none.length) f.tags_none = none;
  const conditions: AttributeCondition[] = v.attributes
    .filter((c) => c.key.trim())
    .map((c) => {
      const value = typedValue(c.op, c.value);
      return value === undefined ? { key: c.key.trim(), op: c.op } : { key: c.key.trim(), op: c.op, value };
    });
  if (conditions.length) f.attributes = conditions;
  if (v.sms_consent) f.sms_consent = v.sms_consent === 'true';
  const donor: NonNullable<SegmentFilter['donor']> = {};
  if (v.linked) donor.linked = v.linked === 'true';
  const gave = whole(v.gave_within_months);
  const lapsed = whole(v.lapsed_months);
  if (gave !== undefined) donor.gave_within_months = gave as number;
  if (lapsed !== undefined) donor.lapsed_months = lapsed as number;
  const lifetime = v.lifetime.trim();
  if (lifetime) {
    const n = Number(lifetime);
    donor.lifetime_minor_at_least = Number.isFinite(n) ? Math.round(n * 100) : (lifetime as unknown as number);
  }
  if (Object.keys(donor).length) f.donor = donor;
  return f;
}

/**
 * A merge patch's filter that replaces the saved one whole: every condition the form does not give is `null`, so the
 * merge removes it.
 */
function replacing(filter: SegmentFilter): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['tags_any', 'tags_all', 'tags_none', 'attributes', 'sms_consent', 'donor'] as const) out[k] = filter[k] ?? null;
  if (filter.donor) out.donor = { linked: null, gave_within_months: null, lapsed_months: null, lifetime_minor_at_least: null, ...filter.donor };
  return out;
}

function fromSegment(s: SegmentView): FormState {
  const f = s.filter ?? {};
  return {
    name: s.name,
    description: s.description ?? '',
    tags_any: (f.tags_any ?? []).join(', '),
    tags_all: (f.tags_all ?? []).join(', '),
    tags_none: (f.tags_none ?? []).join(', '),
    attributes: (f.attributes ?? []).map((c) => ({ key: c.key, op: c.op, value: c.value === undefined || c.value === null ? '' : String(c.value) })),
    sms_consent: f.sms_consent === true ? 'true' : f.sms_consent === false ? 'false' : '',
    linked: f.donor?.linked === true ? 'true' : f.donor?.linked === false ? 'false' : '',
    gave_within_months: f.donor?.gave_within_months ? String(f.donor.gave_within_months) : '',
    lapsed_months: f.donor?.lapsed_months ? String(f.donor.lapsed_months) : '',
    lifetime: typeof f.donor?.lifetime_minor_at_least === 'number' ? String(f.donor.lifetime_minor_at_least / 100) : '',
  };
}

/** A filter in words, for lists and the segment's page. */
export function describeFilter(f: SegmentFilter): string {
  const parts: string[] = [];
  if (f.tags_any?.length) parts.push(`tagged ${f.tags_any.join(' or ')}`);
  if (f.tags_all?.length) parts.push(`tagged ${f.tags_all.join(' and ')}`);
  if (f.tags_none?.length) parts.push(`not tagged ${f.tags_none.join(' or ')}`);
  for (const c of f.attributes ?? []) {
    const op = OPS.find((o) => o.value === c.op)?.label ?? c.op;
    parts.push(c.value === undefined || c.value === null ? `${c.key} ${op}` : `${c.key} ${op} ${String(c.value)}`);
  }
  if (f.sms_consent === true) parts.push('consented to texts');
  if (f.sms_consent === false) parts.push('not consented to texts');
  const d = f.donor;
  if (d?.linked === true) parts.push('linked to a donor');
  if (d?.linked === false) parts.push('not linked to a donor');
  if (d?.gave_within_months) parts.push(`gave in the last ${d.gave_within_months} months`);
  if (d?.lapsed_months) parts.push(`gave before, not in the last ${d.lapsed_months} months`);
  if (typeof d?.lifetime_minor_at_least === 'number') parts.push(`gave at least ${(d.lifetime_minor_at_least / 100).toFixed(2)} in all`);
  return parts.length ? parts.join('; ') : 'Every contact';
}

/** The filter's counts (debounced 300 ms), and the count's own error (a 422 naming `filter`). */
function useLiveCount(filter: SegmentFilter) {
  const { data, error } = useDebouncedRequest(
    JSON.stringify(filter),
    (signal) => request<SegmentCounts>('POST', `${MESSAGING}/segments/count`, { body: { filter }, signal }),
    300,
  );
  return { counts: data, error };
}

function Counts({ counts, live }: { counts: SegmentCounts | undefined; live?: boolean }) {
  if (!counts) return <p class="small">Counting…</p>;
  return (
    <dl class="facts" data-testid="segment-counts" data-contacts={counts.contacts} data-reachable={counts.reachable} aria-live={live ? 'polite' : undefined}>
      <dt>Contacts</dt>
      <dd data-testid="segment-contacts">{count(counts.contacts)}</dd>
      <dt>Reachable (not on the do-not-contact list)</dt>
      <dd data-testid="segment-reachable">{count(counts.reachable)}</dd>
      <dt>Reachable, with consent</dt>
      <dd data-testid="segment-consented">{count(counts.reachable_with_consent)}</dd>
    </dl>
  );
}

function focusFirstInvalid(form: HTMLElement | null) {
  setTimeout(() => form?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
}

/** The fields of a segment, with its live count. `initial` edits a saved one. */
function SegmentForm({ initial, submitLabel, onSaved }: { initial?: SegmentView; submitLabel: string; onSaved: (s: SegmentView) => void }) {
  const [v, setV] = useState<FormState>(initial ? fromSegment(initial) : EMPTY);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const set = (k: keyof FormState) => (value: string) => setV((cur) => ({ ...cur, [k]: value }));
  const filter = toFilter(v);
  const live = useLiveCount(filter);
  const filterError = fieldErrors(live.error).filter;

  function setCondition(i: number, change: Partial<ConditionRow>) {
    setV((cur) => ({ ...cur, attributes: cur.attributes.map((c, j) => (j === i ? { ...c, ...change } : c)) }));
  }

  async function submit(e: Event) {
    e.preventDefault();
    if (busy) return;
    setError(undefined);
    if (!v.name.trim()) {
      setErrors({ name: 'Enter a name for the segment.' });
      focusFirstInvalid(formRef.current);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const body: SegmentInput = { name: v.name.trim(), description: blank(v.description), filter };
      const saved = initial
        ? await request<SegmentView>('PATCH', `${MESSAGING}/segments/${initial.id}`, {
            body: { ...body, filter: replacing(filter) },
            contentType: 'application/merge-patch+json',
          })
        : await request<SegmentView>('POST', `${MESSAGING}/segments`, { body, idempotencyKey: uuid() });
      if (!initial) setV(EMPTY);
      onSaved(saved);
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
    <form ref={formRef} onSubmit={submit} noValidate aria-label={initial ? `Edit segment ${initial.name}` : 'New segment'}>
      <div class="grid-2">
        <Field label="Name (required)" autoComplete="off" value={v.name} onValue={set('name')} error={errors.name} maxLength={100} required />
        <Field label="Description" autoComplete="off" value={v.description} onValue={set('description')} error={errors.description} maxLength={500} />
        <Field label="Tagged with any of" hint="Tags separated by commas." autoComplete="off" value={v.tags_any} onValue={set('tags_any')} />
        <Field label="Tagged with all of" hint="Tags separated by commas." autoComplete="off" value={v.tags_all} onValue={set('tags_all')} />
        <Field label="Not tagged with" hint="Tags separated by commas." autoComplete="off" value={v.tags_none} onValue={set('tags_none')} />
        <SelectField
          label="Consent to texts"
          value={v.sms_consent}
          onValue={set('sms_consent')}
          options={[
            { value: '', label: 'Any' },
            { value: 'true', label: 'Consented' },
            { value: 'false', label: 'Not consented' },
          ]}
        />
      </div>
      <fieldset class="conditions">
        <legend>Attributes</legend>
        {v.attributes.length === 0 && <p class="small">No conditions on attributes.</p>}
        {v.attributes.map((c, i) => (
          <div class="grid-3 condition" key={i} data-testid="attribute-condition">
            <Field label={`Attribute ${i + 1}: key`} autoComplete="off" value={c.key} onValue={(key) => setCondition(i, { key })} maxLength={50} />
            <SelectField label={`Attribute ${i + 1}: comparison`} value={c.op} onValue={(op) => setCondition(i, { op: op as AttributeOp })} options={OPS} />
            {c.op !== 'exists' && c.op !== 'missing' && (
              <Field label={`Attribute ${i + 1}: value`} autoComplete="off" value={c.value} onValue={(value) => setCondition(i, { value })} maxLength={500} />
            )}
            <div class="actions">
              <button type="button" class="secondary" onClick={() => setV((cur) => ({ ...cur, attributes: cur.attributes.filter((_, j) => j !== i) }))}>
                Remove<span class="visually-hidden"> attribute condition {i + 1}</span>
              </button>
            </div>
          </div>
        ))}
        <button type="button" class="secondary" onClick={() => setV((cur) => ({ ...cur, attributes: [...cur.attributes, { key: '', op: 'eq', value: '' }] }))}>
          Add a condition on an attribute
        </button>
      </fieldset>
      <fieldset class="conditions">
        <legend>Linked donor</legend>
        <div class="grid-2">
          <SelectField
            label="Linked to a donor"
            value={v.linked}
            onValue={set('linked')}
            options={[
              { value: '', label: 'Any' },
              { value: 'true', label: 'Linked' },
              { value: 'false', label: 'Not linked' },
            ]}
          />
          <Field label="Gave in the last … months" inputMode="numeric" autoComplete="off" value={v.gave_within_months} onValue={set('gave_within_months')} />
          <Field label="Lapsed: gave before, but not in the last … months" inputMode="numeric" autoComplete="off" value={v.lapsed_months} onValue={set('lapsed_months')} />
          <Field label="Gave at least this much in all" hint="In the charity’s currency, net of refunds, e.g. 500." inputMode="decimal" autoComplete="off" value={v.lifetime} onValue={set('lifetime')} />
        </div>
      </fieldset>
      <section class="counter" aria-label="Who the segment matches now">
        {filterError ? <p class="field-error" role="alert" data-testid="segment-filter-error">{filterError}</p> : <Counts counts={live.counts} live />}
      </section>
      <ErrorAlert error={error} />
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : submitLabel}
        </button>
      </div>
    </form>
  );
}

export function SegmentList() {
  useTitle('Segments');
  const canWrite = useScope('messaging:write');
  const { cursor, setCursor, atFirst } = useCursor([]);
  const list = useAsync((signal) => get<Page<SegmentView>>(`${MESSAGING}/segments`, { limit: 50, cursor }, signal), [cursor]);
  const [created, setCreated] = useState<SegmentView | null>(null);
  return (
    <>
      <div class="page-head">
        <h1>Segments</h1>
        <div class="actions">
          <a class="button secondary" href="/campaigns">
            Campaigns
          </a>
        </div>
      </div>
      <p class="hint-line">A segment is a saved filter over your contacts, counted when you look. A campaign to a segment texts whom it matches when the campaign is queued.</p>
      <KillSwitch />
      {canWrite && (
        <section class="panel" aria-labelledby="new-segment-title">
          <h2 id="new-segment-title">New segment</h2>
          <SegmentForm
            submitLabel="Save segment"
            onSaved={(s) => {
              setCreated(s);
              if (atFirst) list.reload();
              else setCursor(undefined);
            }}
          />
          <p role="status" class="notice" data-testid="segment-created">
            {created && (
              <>
                Segment saved: <a href={`/segments/${created.id}`}>{created.name}</a>, {count(created.counts?.contacts ?? 0)} contacts.
              </>
            )}
          </p>
        </section>
      )}
      <section class="panel" aria-labelledby="segments-title">
        <h2 id="segments-title">All segments</h2>
        <ErrorAlert error={list.error} />
        {list.loading && <Loading what="Loading segments" />}
        {list.data && (
          <>
            <div class="table-wrap">
              <table data-testid="segment-list">
                <caption>Segments, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Who</th>
                    <th scope="col">Changed</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.data.map((s) => (
                    <tr key={s.id} data-id={s.id}>
                      <td>
                        <a href={`/segments/${s.id}`}>{s.name}</a>
                      </td>
                      <td>{describeFilter(s.filter)}</td>
                      <td>{date(s.updated_at)}</td>
                    </tr>
                  ))}
                  {list.data.data.length === 0 && (
                    <tr>
                      <td colSpan={3}>No segments yet.</td>
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

export function SegmentPage({ id }: { id: string }) {
  const canWrite = useScope('messaging:write');
  const loc = useLocation();
  const segment = useAsync((signal) => get<SegmentView>(`${MESSAGING}/segments/${id}`, undefined, signal), [id]);
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const s = segment.data;
  useTitle(s ? s.name : 'Segment');
  if (segment.error) {
    return (
      <>
        <h1>Segment</h1>
        <ErrorAlert error={segment.error} />
        <p>
          <a href="/segments">Back to segments</a>
        </p>
      </>
    );
  }
  if (!s) return <Loading what="Loading the segment" />;

  async function remove() {
    if (!s || !confirm(`Delete the segment “${s.name}”? Campaigns already queued keep their messages.`)) return;
    setError(undefined);
    try {
      await request('DELETE', `${MESSAGING}/segments/${s.id}`);
      loc.route('/segments');
    } catch (err) {
      setError(err);
    }
  }

  return (
    <>
      <div class="page-head">
        <div>
          <h1 data-testid="segment-name">{s.name}</h1>
          {s.description && <p class="contact-sub">{s.description}</p>}
        </div>
        <a class="button secondary" href="/segments">
          All segments
        </a>
      </div>
      <section class="panel" aria-labelledby="segment-now-title">
        <h2 id="segment-now-title">Who it matches now</h2>
        <p data-testid="segment-description">{describeFilter(s.filter)}</p>
        {s.counts && <Counts counts={s.counts} />}
        <p class="small">Counted {s.counts ? date(s.counts.counted_at, true) : ''}.</p>
      </section>
      {canWrite && (
        <section class="panel" aria-labelledby="edit-segment-title">
          <h2 id="edit-segment-title">Edit</h2>
          <SegmentForm
            key={s.revision}
            initial={s}
            submitLabel="Save changes"
            onSaved={(saved) => {
              segment.setData(saved);
              setNotice('Segment saved.');
            }}
          />
          <p role="status" class="notice" data-testid="segment-notice">
            {notice}
          </p>
          <div class="actions">
            <button type="button" class="danger" onClick={() => void remove()}>
              Delete segment
            </button>
          </div>
          <ErrorAlert error={error} />
        </section>
      )}
    </>
  );
}
