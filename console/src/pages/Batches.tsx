// Batch gift entry (as Salesforce NPSP's Gift Entry): a batch says how many gifts it holds and what they add up to;
// staff key each gift into it from the keyboard, and process it into gifts once count and total match.
import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { Badge, ErrorAlert, Field, Loading, Pager, SelectField, useAsync, useCursor, useTitle } from '../components/ui';
import { fieldErrors, FUNDRAISING, get, getAll, request, send, uuid } from '../lib/api';
import { count, date, donorName, humanize, money, parseAmount, today } from '../lib/format';
import { useScope } from '../lib/session';
import { CURRENCIES, type DonorView, type FundView, type GiftBatchEntryInput, type GiftBatchEntryView, type GiftBatchInput, type GiftBatchView, type Page } from '../lib/types';
import { DonorSearch, PAYMENT_METHODS } from './GiftEntry';

function blank(s: string): string | null {
  const t = s.trim();
  return t ? t : null;
}

/** "Entered 1 of 2 gifts, £10.00 of £30.00": where a batch stands. */
export function batchProgress(b: GiftBatchView): string {
  const gifts = `${count(b.entered_count)} of ${count(b.expected_count)} gift${b.expected_count === 1 ? '' : 's'}`;
  return `Entered ${gifts}, ${money(b.entered_total_minor, b.currency)} of ${money(b.expected_total_minor, b.currency)}`;
}

function matches(b: GiftBatchView): boolean {
  return b.count_matches && b.total_matches;
}

/** What is still to key, or what is over, for people. */
function mismatch(b: GiftBatchView): string {
  const parts: string[] = [];
  const gifts = b.expected_count - b.entered_count;
  if (gifts > 0) parts.push(`${count(gifts)} more gift${gifts === 1 ? '' : 's'} to enter`);
  if (gifts < 0) parts.push(`${count(-gifts)} gift${gifts === -1 ? '' : 's'} more than expected`);
  const diff = b.expected_total_minor - b.entered_total_minor;
  if (diff > 0) parts.push(`${money(diff, b.currency)} still to enter`);
  if (diff < 0) parts.push(`${money(-diff, b.currency)} more than the expected total`);
  return parts.join('; ');
}

function useFunds() {
  return useAsync(() => getAll<FundView>(`${FUNDRAISING}/funds`), []);
}

export function BatchList() {
  useTitle('Gift batches');
  const canWrite = useScope('fundraising:write');
  const { cursor, setCursor, atFirst } = useCursor([]);
  const list = useAsync((signal) => get<Page<GiftBatchView>>(`${FUNDRAISING}/gift-batches`, { limit: 50, cursor }, signal), [cursor]);

  return (
    <>
      <h1>Gift batches</h1>
      <p class="hint-line">Key a stack of cheques or a bank statement as one batch: say how many gifts and what they add up to, enter each, and process the batch once they match.</p>
      {canWrite && <CreateBatch />}
      <ErrorAlert error={list.error} />
      {list.loading && <Loading what="Loading batches" />}
      {list.data && (
        <>
          <div class="table-wrap">
            <table data-testid="batch-list">
              <caption>Batches, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">Gifts entered</th>
                  <th scope="col" class="num">Total entered</th>
                  <th scope="col">Created</th>
                  <th scope="col">Processed</th>
                </tr>
              </thead>
              <tbody>
                {list.data.data.map((b) => (
                  <tr key={b.id}>
                    <td>
                      <a href={`/batches/${b.id}`}>{b.name}</a>
                    </td>
                    <td>
                      <Badge tone={b.status === 'processed' ? 'good' : matches(b) ? 'neutral' : 'warn'}>{humanize(b.status)}</Badge>
                    </td>
                    <td class="num">
                      {count(b.entered_count)} of {count(b.expected_count)}
                    </td>
                    <td class="num">
                      {money(b.entered_total_minor, b.currency)} of {money(b.expected_total_minor, b.currency)}
                    </td>
                    <td>{date(b.created_at)}</td>
                    <td>{b.processed_at ? date(b.processed_at) : '—'}</td>
                  </tr>
                ))}
                {list.data.data.length === 0 && (
                  <tr>
                    <td colSpan={6}>No batches yet.</td>
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

function CreateBatch() {
  const loc = useLocation();
  const funds = useFunds();
  const [name, setName] = useState('');
  const [currency, setCurrency] = useState('GBP');
  const [expectedCount, setExpectedCount] = useState('');
  const [expectedTotal, setExpectedTotal] = useState('');
  const [giftDate, setGiftDate] = useState('');
  const [method, setMethod] = useState('');
  const [fundId, setFundId] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);

  async function create(e: Event) {
    e.preventDefault();
    if (busy) return;
    const errs: Record<string, string> = {};
    if (!name.trim()) errs.name = 'Name the batch, such as “Cheques 2 June”.';
    const n = Number(expectedCount);
    if (!/^\d+$/.test(expectedCount.trim()) || n < 1 || n > 10000) errs.expected_count = 'Enter how many gifts the batch holds (1 to 10,000).';
    const total = parseAmount(expectedTotal, currency);
    if (total === null || total <= 0) errs.expected_total_minor = `Enter what the gifts add up to in ${currency}, such as 250.00.`;
    if (giftDate && !/^\d{4}-\d{2}-\d{2}$/.test(giftDate)) errs.default_gift_date = 'Enter a date, or leave it empty.';
    setErrors(errs);
    setError(undefined);
    if (Object.keys(errs).length) {
      setTimeout(() => formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
      return;
    }
    setBusy(true);
    try {
      const body: GiftBatchInput = {
        name: name.trim(),
        currency,
        expected_count: n,
        expected_total_minor: total!,
        default_gift_date: blank(giftDate),
        default_payment_method: blank(method),
        default_fund_id: blank(fundId),
      };
      const batch = await request<GiftBatchView>('POST', `${FUNDRAISING}/gift-batches`, { body, idempotencyKey: uuid() });
      loc.route(`/batches/${batch.id}`);
    } catch (err) {
      setErrors(fieldErrors(err));
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const fundOptions = [{ value: '', label: 'None (unallocated)' }, ...(funds.data ?? []).filter((f) => !f.archived).map((f) => ({ value: f.id, label: `${f.name} (${f.code})` }))];
  return (
    <form ref={formRef} class="panel" onSubmit={create} aria-labelledby="create-batch-title" noValidate>
      <h2 id="create-batch-title">New batch</h2>
      <div class="grid-3">
        <Field label="Batch name" autoComplete="off" value={name} onValue={setName} error={errors.name} maxLength={200} required />
        <SelectField label="Currency" value={currency} onValue={setCurrency} options={CURRENCIES.map((c) => ({ value: c, label: c }))} error={errors.currency} />
        <Field label="Number of gifts" inputMode="numeric" autoComplete="off" value={expectedCount} onValue={setExpectedCount} error={errors.expected_count} required />
        <Field label="Expected total" inputMode="decimal" autoComplete="off" value={expectedTotal} onValue={setExpectedTotal} error={errors.expected_total_minor} required />
      </div>
      <fieldset>
        <legend>Defaults for each gift (optional)</legend>
        <div class="grid-3">
          <Field label="Default gift date" type="date" max={today()} value={giftDate} onValue={setGiftDate} error={errors.default_gift_date} />
          <SelectField label="Default payment method" value={method} onValue={setMethod} options={PAYMENT_METHODS} error={errors.default_payment_method} />
          <SelectField label="Default fund" value={fundId} onValue={setFundId} options={fundOptions} error={errors.default_fund_id} />
        </div>
      </fieldset>
      <ErrorAlert error={error} />
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create batch'}
        </button>
      </div>
    </form>
  );
}

interface BatchData {
  batch: GiftBatchView;
  entries: GiftBatchEntryView[];
}

async function loadBatch(id: string): Promise<BatchData> {
  const base = `${FUNDRAISING}/gift-batches/${id}`;
  const [batch, entries] = await Promise.all([get<GiftBatchView>(base), getAll<GiftBatchEntryView>(`${base}/entries`, {}, 10000)]);
  return { batch, entries };
}

export function BatchPage({ id }: { id: string }) {
  const canWrite = useScope('fundraising:write');
  const data = useAsync(() => loadBatch(id), [id]);
  const funds = useFunds();
  const [donors, setDonors] = useState<Map<string, DonorView>>(new Map());
  const [processError, setProcessError] = useState<unknown>(undefined);
  const [entryError, setEntryError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const processKey = useRef(uuid());
  useTitle(data.data ? `Batch ${data.data.batch.name}` : 'Gift batch');

  // The entries' donors, by id, for their names.
  const entries = data.data?.entries ?? [];
  useEffect(() => {
    const missing = [...new Set(entries.map((e) => e.donor_id))].filter((d) => !donors.has(d));
    if (!missing.length) return;
    let live = true;
    Promise.all(missing.map((d) => get<DonorView>(`${FUNDRAISING}/donors/${d}`).catch(() => null))).then((found) => {
      if (!live) return;
      setDonors((prev) => {
        const next = new Map(prev);
        for (const d of found) if (d) next.set(d.id, d);
        return next;
      });
    });
    return () => {
      live = false;
    };
  }, [entries]);

  if (data.loading && !data.data) return <Loading what="Loading the batch" />;
  if (!data.data) {
    return (
      <>
        <h1>Gift batch</h1>
        <ErrorAlert error={data.error} />
        <p>
          <a href="/batches">All batches</a>
        </p>
      </>
    );
  }
  const { batch } = data.data;
  const open = batch.status === 'open';
  const fundName = new Map((funds.data ?? []).map((f) => [f.id, f.name]));
  const ready = matches(batch);

  async function refreshBatch() {
    const next = await loadBatch(id);
    data.setData(next);
  }

  async function addEntry(entry: GiftBatchEntryInput, donor: DonorView) {
    setDonors((prev) => new Map(prev).set(donor.id, donor));
    setProcessError(undefined);
    await request<GiftBatchEntryView>('POST', `${FUNDRAISING}/gift-batches/${id}/entries`, { body: entry, idempotencyKey: uuid() });
    await refreshBatch();
  }

  async function removeEntry(e: GiftBatchEntryView) {
    setBusy(true);
    setEntryError(undefined);
    setProcessError(undefined);
    try {
      await send('DELETE', `${FUNDRAISING}/gift-batches/${id}/entries/${e.id}`);
      await refreshBatch();
    } catch (err) {
      setEntryError(err);
    } finally {
      setBusy(false);
    }
  }

  async function process() {
    setBusy(true);
    setProcessError(undefined);
    try {
      await request<GiftBatchView>('POST', `${FUNDRAISING}/gift-batches/${id}/process`, { idempotencyKey: processKey.current });
      await refreshBatch();
    } catch (err) {
      // A refusal leaves the batch as it was: the next attempt is a new request.
      processKey.current = uuid();
      setProcessError(err);
      await refreshBatch().catch(() => undefined);
    } finally {
      setBusy(false);
    }
  }

  const defaults = [
    batch.default_gift_date ? `date ${date(batch.default_gift_date)}` : '',
    batch.default_payment_method ? `payment by ${humanize(batch.default_payment_method).toLowerCase()}` : '',
    batch.default_fund_id ? `fund ${fundName.get(batch.default_fund_id) ?? '…'}` : '',
  ].filter(Boolean);

  return (
    <>
      <p class="breadcrumb">
        <a href="/batches">Gift batches</a>
      </p>
      <h1>{batch.name}</h1>
      <p>
        <Badge tone={batch.status === 'processed' ? 'good' : ready ? 'neutral' : 'warn'}>{humanize(batch.status)}</Badge>{' '}
        <span class="muted">
          {batch.currency} · created {date(batch.created_at)}
          {batch.processed_at ? ` · processed ${date(batch.processed_at, true)}` : ''}
          {defaults.length ? ` · defaults: ${defaults.join(', ')}` : ''}
        </span>
      </p>
      <div class={`batch-status ${ready ? 'matched' : 'unmatched'}`} role="status" data-testid="batch-status">
        <p>
          <strong>{batchProgress(batch)}</strong>
          {open ? (ready ? '. Count and total match: ready to process.' : `. ${mismatch(batch)}.`) : `. Processed: ${count(batch.entered_count)} gift${batch.entered_count === 1 ? '' : 's'} recorded.`}
        </p>
      </div>

      {open && canWrite && <EntryRow batch={batch} funds={funds.data ?? []} onAdd={addEntry} />}

      <section class="panel" aria-labelledby="entries-title">
        <h2 id="entries-title">Entries</h2>
        <ErrorAlert error={entryError} />
        <div class="table-wrap">
          <table data-testid="batch-entries" aria-labelledby="entries-title">
            <thead>
              <tr>
                <th scope="col" class="num">#</th>
                <th scope="col">Donor</th>
                <th scope="col" class="num">Amount</th>
                <th scope="col">Date</th>
                <th scope="col">Fund</th>
                <th scope="col">Method</th>
                <th scope="col">{open ? <span class="visually-hidden">Actions</span> : 'Gift'}</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => {
                const donor = donors.get(e.donor_id);
                const who = donor ? donorName(donor) : 'Donor';
                return (
                  <tr key={e.id}>
                    <td class="num">{e.position}</td>
                    <td>
                      <a href={`/donors/${e.donor_id}`}>{who}</a>
                    </td>
                    <td class="num">{money(e.amount_minor, e.currency)}</td>
                    <td>{date(e.gift_date)}</td>
                    <td>{e.allocations.length ? e.allocations.map((a) => fundName.get(a.fund_id) ?? 'Fund').join(', ') : '—'}</td>
                    <td>{e.payment_method ? humanize(e.payment_method) : '—'}</td>
                    <td>
                      {open ? (
                        canWrite && (
                          <button type="button" class="secondary small" disabled={busy} onClick={() => void removeEntry(e)}>
                            Remove<span class="visually-hidden"> the gift of {money(e.amount_minor, e.currency)} from {who}</span>
                          </button>
                        )
                      ) : e.gift_id ? (
                        <a href={`/donors/${e.donor_id}#gift-${e.gift_id}`} data-testid="batch-gift-link">
                          View gift<span class="visually-hidden"> of {money(e.amount_minor, e.currency)} from {who}</span>
                        </a>
                      ) : (
                        '—'
                      )}
                    </td>
                  </tr>
                );
              })}
              {entries.length === 0 && (
                <tr>
                  <td colSpan={7}>No gifts entered yet.</td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      </section>

      {open && canWrite && (
        <section class="panel" aria-labelledby="process-title">
          <h2 id="process-title">Process</h2>
          <p id="process-hint" class="hint">
            {ready
              ? `Every entry becomes a gift, all at once: ${count(batch.entered_count)} gift${batch.entered_count === 1 ? '' : 's'} totalling ${money(batch.entered_total_minor, batch.currency)}.`
              : `The batch can be processed once its entries match the expected count and total: ${mismatch(batch)}.`}
          </p>
          <ErrorAlert error={processError} />
          <button type="button" disabled={!ready || busy} aria-describedby="process-hint" onClick={() => void process()}>
            {busy ? 'Processing…' : 'Process batch'}
          </button>
        </section>
      )}
      {!open && (
        <p>
          <a href="/batches">Back to all batches</a>
        </p>
      )}
    </>
  );
}

interface EntryRowProps {
  batch: GiftBatchView;
  funds: FundView[];
  onAdd: (entry: GiftBatchEntryInput, donor: DonorView) => Promise<void>;
}

/** The keyboard-first entry row: find the donor (arrows, Enter), amount, date, fund; Enter adds the gift. */
function EntryRow({ batch, funds, onAdd }: EntryRowProps) {
  const [donor, setDonor] = useState<DonorView | null>(null);
  const [amount, setAmount] = useState('');
  const [giftDate, setGiftDate] = useState(batch.default_gift_date ?? today());
  const [fundId, setFundId] = useState(batch.default_fund_id ?? '');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const [added, setAdded] = useState('');
  const searchRef = useRef<HTMLInputElement>(null);
  const amountRef = useRef<HTMLInputElement>(null);
  const formRef = useRef<HTMLFormElement>(null);

  async function add(e: Event) {
    e.preventDefault();
    if (busy) return;
    const errs: Record<string, string> = {};
    if (!donor) errs.donor = 'Choose a donor.';
    const minor = parseAmount(amount, batch.currency);
    if (minor === null || minor <= 0) errs.amount = `Enter an amount in ${batch.currency}, such as 25.00.`;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(giftDate)) errs.gift_date = 'Enter the date of the gift.';
    else if (giftDate > today()) errs.gift_date = 'The gift date cannot be in the future.';
    setErrors(errs);
    setError(undefined);
    if (Object.keys(errs).length) {
      setTimeout(() => formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
      return;
    }
    setBusy(true);
    try {
      const entry: GiftBatchEntryInput = {
        donor_id: donor!.id,
        amount_minor: minor!,
        gift_date: giftDate,
        allocations: fundId ? [{ fund_id: fundId, amount_minor: minor! }] : [],
      };
      await onAdd(entry, donor!);
      setAdded(`Added ${money(minor!, batch.currency)} from ${donorName(donor!)}.`);
      // Date and fund usually repeat down a stack of cheques: they stay.
      setDonor(null);
      setAmount('');
      setTimeout(() => searchRef.current?.focus(), 0);
    } catch (err) {
      const fe = fieldErrors(err);
      const mapped: Record<string, string> = {};
      for (const [k, v] of Object.entries(fe)) {
        if (k.startsWith('amount')) mapped.amount = v;
        else if (k.startsWith('allocations')) mapped.fund = v;
        else if (k.startsWith('donor')) mapped.donor = v;
        else mapped[k] = v;
      }
      setErrors(mapped);
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const fundOptions = [{ value: '', label: 'Unallocated' }, ...funds.filter((f) => !f.archived).map((f) => ({ value: f.id, label: `${f.name} (${f.code})` }))];
  return (
    <form ref={formRef} class="panel entry-row" onSubmit={add} aria-labelledby="entry-title" noValidate>
      <h2 id="entry-title">Enter a gift</h2>
      <p class="hint-line">
        Type to find a donor, arrow keys and <kbd>Enter</kbd> to choose; <kbd>Enter</kbd> in the amount adds the gift.
      </p>
      <div class="inline-form">
        {donor ? (
          <div class="field selected-donor">
            <span class="label-like">Donor</span>
            <span>
              <strong data-testid="selected-donor">{donorName(donor)}</strong>{' '}
              <button
                type="button"
                class="secondary small"
                onClick={() => {
                  setDonor(null);
                  setTimeout(() => searchRef.current?.focus(), 0);
                }}
              >
                Change donor
              </button>
            </span>
          </div>
        ) : (
          <DonorSearch
            inputRef={searchRef}
            label="Donor (name or email)"
            error={errors.donor}
            onChoose={(d) => {
              setDonor(d);
              setErrors({});
              setTimeout(() => amountRef.current?.focus(), 0);
            }}
          />
        )}
        <Field label="Amount" inputMode="decimal" autoComplete="off" value={amount} onValue={setAmount} error={errors.amount} required inputRef={amountRef} />
        <Field label="Date" type="date" max={today()} value={giftDate} onValue={setGiftDate} error={errors.gift_date} required />
        <SelectField label="Fund" value={fundId} onValue={setFundId} options={fundOptions} error={errors.fund} />
        <button type="submit" disabled={busy}>
          {busy ? 'Adding…' : 'Add to batch'}
        </button>
      </div>
      <ErrorAlert error={error} />
      <p class="notice" role="status">
        {added}
      </p>
    </form>
  );
}
