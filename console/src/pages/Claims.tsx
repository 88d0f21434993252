import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { Badge, ErrorAlert, Field, Loading, Pager, SelectField, useAsync, useCursor, useTitle } from '../components/ui';
import { ApiError, fieldErrors, FUNDRAISING, get, getAll, request, send, STORAGE, uuid } from '../lib/api';
import { saveBlob } from '../lib/csv';
import { bytes, count, counted, date, humanize, money, today } from '../lib/format';
import { useScope } from '../lib/session';
import type { ClaimGiftView, ClaimView, ExclusionView, FileView, LinkView, Page } from '../lib/types';

const STATUS_TONE: Record<string, 'neutral' | 'good' | 'warn' | 'bad'> = {
  draft: 'neutral',
  submitted: 'warn',
  paid: 'good',
  partly_rejected: 'bad',
};

export function ClaimList() {
  useTitle('Gift Aid claims');
  const canWrite = useScope('fundraising:write');
  const loc = useLocation();
  const { cursor, setCursor, atFirst } = useCursor([]);
  const list = useAsync((signal) => get<Page<ClaimView>>(`${FUNDRAISING}/gift-aid/claims`, { limit: 50, cursor }, signal), [cursor]);
  const [upTo, setUpTo] = useState(today());
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);

  async function gather(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const claim = await request<ClaimView>('POST', `${FUNDRAISING}/gift-aid/claims`, { body: { up_to: upTo }, idempotencyKey: uuid() });
      loc.route(`/claims/${claim.id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <h1>Gift Aid claims</h1>
      {canWrite && (
        <form class="panel" onSubmit={gather} aria-labelledby="gather-title" noValidate>
          <h2 id="gather-title">Gather a new claim</h2>
          <p>Every eligible gift not yet claimed, dated up to the day you choose, goes into a draft claim you can review before exporting.</p>
          <div class="inline-form">
            <Field label="Gifts dated up to" type="date" max={today()} value={upTo} onValue={setUpTo} error={fieldErrors(error).up_to} />
            <button type="submit" disabled={busy}>
              {busy ? 'Gathering…' : 'Gather claim'}
            </button>
          </div>
          <ErrorAlert error={error} />
        </form>
      )}
      <ErrorAlert error={list.error} />
      {list.loading && <Loading what="Loading claims" />}
      {list.data && (
        <>
          <div class="table-wrap">
            <table>
              <caption>Claims, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Up to</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">Gifts</th>
                  <th scope="col" class="num">Claimed on</th>
                  <th scope="col" class="num">Gift Aid</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {list.data.data.map((c) => (
                  <tr key={c.id}>
                    <td>
                      <a href={`/claims/${c.id}`}>Claim to {date(c.up_to)}</a>
                    </td>
                    <td>
                      <Badge tone={STATUS_TONE[c.status]}>{humanize(c.status)}</Badge>
                    </td>
                    <td class="num">{count(c.gifts)}</td>
                    <td class="num">{money(c.amount_minor, 'GBP')}</td>
                    <td class="num">{money(c.gift_aid_minor, 'GBP')}</td>
                    <td>{date(c.created_at)}</td>
                  </tr>
                ))}
                {list.data.data.length === 0 && (
                  <tr>
                    <td colSpan={6}>No claims yet.</td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
          <Pager next={list.data.next_cursor} atFirst={atFirst} onNext={() => setCursor(list.data!.next_cursor ?? undefined)} onFirst={() => setCursor(undefined)} />
        </>
      )}
    </>
  );
}

interface ClaimData {
  claim: ClaimView;
  gifts: ClaimGiftView[];
  exclusions: ExclusionView[];
  files: FileView[];
}

async function loadClaim(id: string): Promise<ClaimData> {
  const base = `${FUNDRAISING}/gift-aid/claims/${id}`;
  const [claim, gifts, exclusions, files] = await Promise.all([
    get<ClaimView>(base),
    getAll<ClaimGiftView>(`${base}/gifts`),
    getAll<ExclusionView>(`${base}/exclusions`),
    get<{ data: FileView[] }>(`${base}/files`).then((r) => r.data),
  ]);
  return { claim, gifts, exclusions, files };
}

/** The service names files relative to itself (`/v1/...`); through the gateway that is /api/fundraising/v1/... */
function serviceHref(href: string): string {
  return href.startsWith('/v1/') ? `/api/fundraising${href}` : href;
}

export function ClaimPage({ id }: { id: string }) {
  const canWrite = useScope('fundraising:write');
  const canExport = useScope('storage:write');
  const canReadFiles = useScope('storage:read');
  const loc = useLocation();
  const data = useAsync(() => loadClaim(id), [id]);
  const [format, setFormat] = useState<'ods' | 'csv'>('ods');
  const [reference, setReference] = useState('');
  const [answeredOn, setAnsweredOn] = useState(today());
  const [rejected, setRejected] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);
  useTitle(data.data ? `Claim to ${date(data.data.claim.up_to)}` : 'Gift Aid claim');

  const base = `${FUNDRAISING}/gift-aid/claims/${id}`;

  async function run(what: string, call: () => Promise<unknown>, after?: () => void) {
    if (busy) return;
    setBusy(true);
    setError(undefined);
    setNotice('');
    try {
      await call();
      setNotice(what);
      if (after) after();
      else data.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  async function download(f: FileView, claim: ClaimView) {
    setError(undefined);
    const name = `gift-aid-claim-${claim.up_to}${f.parts > 1 ? `-part-${f.part}-of-${f.parts}` : ''}.${f.format}`;
    try {
      const res = await send('GET', serviceHref(f.href));
      saveBlob(await res.blob(), name);
      setNotice(`Downloaded ${name}.`);
    } catch (e) {
      // A redirect to another origin cannot be read by the page: open storage's own link instead.
      if (!(e instanceof ApiError) && f.object_id && canReadFiles) {
        try {
          const link = await get<LinkView>(`${STORAGE}/objects/${f.object_id}/link`);
          window.location.assign(link.url);
          return;
        } catch (e2) {
          setError(e2);
          return;
        }
      }
      setError(e);
    }
  }

  if (data.error) {
    return (
      <>
        <h1>Gift Aid claim</h1>
        <ErrorAlert error={data.error} />
        <p>
          <a href="/claims">Back to claims</a>
        </p>
      </>
    );
  }
  if (!data.data) return <Loading what="Loading the claim" />;
  const { claim, gifts, exclusions, files } = data.data;
  const draft = claim.status === 'draft';
  const included = gifts.filter((g) => g.state === 'included');

  return (
    <>
      <div class="page-head">
        <h1>Claim to {date(claim.up_to)}</h1>
        <a class="button secondary" href="/claims">
          All claims
        </a>
      </div>
      <p role="status" class="notice">
        {notice}
      </p>
      <ErrorAlert error={error} />
      <section class="cards" aria-label="The claim's totals">
        <div class="card">
          <h2>Status</h2>
          <p class="figure">
            <Badge tone={STATUS_TONE[claim.status]}>{humanize(claim.status)}</Badge>
          </p>
          <p class="sub">
            {claim.submitted_at ? `Submitted ${date(claim.submitted_at)}` : 'Not submitted'}
            {claim.hmrc_reference ? ` · HMRC ref ${claim.hmrc_reference}` : ''}
            {claim.answered_on ? ` · answered ${date(claim.answered_on)}` : ''}
          </p>
        </div>
        <div class="card">
          <h2>Gift Aid</h2>
          <p class="figure">{money(claim.gift_aid_minor, 'GBP')}</p>
          <p class="sub">
            on {money(claim.amount_minor, 'GBP')} from {counted(claim.gifts, 'gift')}
          </p>
        </div>
        <div class="card">
          <h2>Left out</h2>
          <p class="figure">{count(claim.exclusions)}</p>
          <p class="sub">
            {claim.exclusions === 1 ? 'gift' : 'gifts'} could not be claimed{claim.rejected ? `; HMRC rejected ${claim.rejected} (${money(claim.rejected_amount_minor, 'GBP')})` : ''}
          </p>
        </div>
      </section>

      <section class="panel" aria-labelledby="files-title">
        <h2 id="files-title">Schedule files</h2>
        {canWrite && canExport && (
          <form
            class="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              void run('Schedule exported.', () => request('POST', `${base}/exports`, { body: { format } }));
            }}
          >
            <SelectField
              label="Format"
              value={format}
              onValue={(v) => setFormat(v as 'ods' | 'csv')}
              options={[
                { value: 'ods', label: 'HMRC schedule spreadsheet (ODS)' },
                { value: 'csv', label: 'CSV (for people)' },
              ]}
            />
            <button type="submit" disabled={busy}>
              Export schedule
            </button>
          </form>
        )}
        {files.length === 0 ? (
          <p>No files exported yet.</p>
        ) : (
          <div class="table-wrap">
            <table aria-labelledby="files-title">
              <thead>
                <tr>
                  <th scope="col">Exported</th>
                  <th scope="col">Format</th>
                  <th scope="col">Part</th>
                  <th scope="col" class="num">Rows</th>
                  <th scope="col" class="num">Size</th>
                  <th scope="col">File</th>
                </tr>
              </thead>
              <tbody>
                {files.map((f) => (
                  <tr key={f.id}>
                    <td>{date(f.created_at)}</td>
                    <td>{f.format.toUpperCase()}</td>
                    <td>
                      {f.part} of {f.parts}
                    </td>
                    <td class="num">{count(f.rows)}</td>
                    <td class="num">{bytes(f.size_bytes)}</td>
                    <td>
                      <button type="button" class="secondary" onClick={() => void download(f, claim)}>
                        Download<span class="visually-hidden"> {f.format.toUpperCase()} part {f.part} exported {date(f.created_at)}</span>
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      {canWrite && draft && (
        <section class="panel" aria-labelledby="submit-title">
          <h2 id="submit-title">Submit</h2>
          <p>Once you have sent the schedule to HMRC through Charities Online, mark the claim submitted: its gifts can then never be claimed again, unless HMRC rejects them.</p>
          <form
            class="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              void run('Claim marked submitted.', () => request('POST', `${base}/submit`, { body: { hmrc_reference: reference.trim() || null } }));
            }}
          >
            <Field label="HMRC reference (if known)" value={reference} onValue={setReference} maxLength={100} error={fieldErrors(error).hmrc_reference} />
            <button type="submit" disabled={busy}>
              Mark submitted
            </button>
          </form>
          <p>
            <button
              type="button"
              class="danger"
              disabled={busy}
              onClick={() => {
                if (confirm('Discard this draft claim? Its gifts go back to the pool.')) {
                  void run('Claim discarded.', () => request('DELETE', base), () => loc.route('/claims'));
                }
              }}
            >
              Discard this draft
            </button>
          </p>
        </section>
      )}

      {canWrite && claim.status === 'submitted' && (
        <section class="panel" aria-labelledby="outcome-title">
          <h2 id="outcome-title">Record HMRC’s answer</h2>
          <form
            onSubmit={(e) => {
              e.preventDefault();
              const list = Object.entries(rejected).map(([gift_id, reason]) => ({ gift_id, reason: reason.trim() }));
              void run(list.length ? 'Partial rejection recorded.' : 'Claim recorded as paid.', () =>
                request('POST', `${base}/outcome`, { body: { answered_on: answeredOn, rejected: list } }),
              );
            }}
          >
            <Field label="HMRC answered on" type="date" max={today()} value={answeredOn} onValue={setAnsweredOn} error={fieldErrors(error).answered_on} />
            <fieldset>
              <legend>Gifts HMRC rejected (leave all unticked if it paid in full)</legend>
              {included.map((g, i) => (
                <div class="reject-row" key={g.gift_id}>
                  <div class="check">
                    <input
                      type="checkbox"
                      id={`rej-${g.gift_id}`}
                      checked={g.gift_id in rejected}
                      onChange={(e) => {
                        const next = { ...rejected };
                        if ((e.currentTarget as HTMLInputElement).checked) next[g.gift_id] = '';
                        else delete next[g.gift_id];
                        setRejected(next);
                      }}
                    />
                    <label for={`rej-${g.gift_id}`}>
                      {date(g.gift_date)}, {money(g.amount_minor, 'GBP')}
                    </label>
                  </div>
                  {g.gift_id in rejected && (
                    <Field label="HMRC’s reason" value={rejected[g.gift_id]} onValue={(v) => setRejected({ ...rejected, [g.gift_id]: v })} error={fieldErrors(error)[`rejected[${i}].reason`]} />
                  )}
                </div>
              ))}
            </fieldset>
            <button type="submit" disabled={busy}>
              Record answer
            </button>
          </form>
        </section>
      )}

      <section class="panel" aria-labelledby="gifts-title">
        <h2 id="gifts-title">Gifts in the claim</h2>
        <div class="table-wrap">
          <table aria-labelledby="gifts-title">
            <thead>
              <tr>
                <th scope="col">Date</th>
                <th scope="col">Donor</th>
                <th scope="col" class="num">Amount</th>
                <th scope="col" class="num">Gift Aid</th>
                <th scope="col">State</th>
                {canWrite && draft && <th scope="col">Action</th>}
              </tr>
            </thead>
            <tbody>
              {gifts.map((g) => (
                <tr key={g.gift_id}>
                  <td>{date(g.gift_date)}</td>
                  <td>
                    <a href={`/donors/${g.donor_id}`}>Donor</a>
                  </td>
                  <td class="num">{money(g.amount_minor, 'GBP')}</td>
                  <td class="num">{money(g.gift_aid_minor, 'GBP')}</td>
                  <td>
                    {humanize(g.state)}
                    {g.rejection ? `: ${g.rejection}` : ''}
                  </td>
                  {canWrite && draft && (
                    <td>
                      <button
                        type="button"
                        class="secondary"
                        disabled={busy}
                        onClick={() => void run('Gift taken out of the claim.', () => request('DELETE', `${base}/gifts/${g.gift_id}`))}
                      >
                        Take out<span class="visually-hidden"> the gift of {date(g.gift_date)}</span>
                      </button>
                    </td>
                  )}
                </tr>
              ))}
              {gifts.length === 0 && (
                <tr>
                  <td colSpan={canWrite && draft ? 6 : 5}>No gifts in this claim.</td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      </section>

      <section class="panel" aria-labelledby="excl-title">
        <h2 id="excl-title">Gifts left out, and why</h2>
        <div class="table-wrap">
          <table aria-labelledby="excl-title">
            <thead>
              <tr>
                <th scope="col">Date</th>
                <th scope="col">Donor</th>
                <th scope="col" class="num">Amount</th>
                <th scope="col">Reasons</th>
              </tr>
            </thead>
            <tbody>
              {exclusions.map((x) => (
                <tr key={x.gift_id}>
                  <td>{date(x.gift_date)}</td>
                  <td>
                    <a href={`/donors/${x.donor_id}`}>Donor</a>
                  </td>
                  <td class="num">{money(x.amount_minor, 'GBP')}</td>
                  <td>
                    <ul class="plain">
                      {x.reasons.map((r) => (
                        <li key={r.code}>{r.detail}</li>
                      ))}
                    </ul>
                  </td>
                </tr>
              ))}
              {exclusions.length === 0 && (
                <tr>
                  <td colSpan={4}>None.</td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      </section>
    </>
  );
}
