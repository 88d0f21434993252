import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorAlert, Field, SelectField, useAsync, useId, useTitle } from '../components/ui';
import { ApiError, fieldErrors, FUNDRAISING, get, getAll, request, uuid } from '../lib/api';
import { addYears, date, donorName, money, parseAmount, today } from '../lib/format';
import { session, useScope } from '../lib/session';
import {
  CURRENCIES,
  type DeclarationBody,
  type DeclarationMethod,
  type DeclarationView,
  type DonorInput,
  type DonorMatch,
  type DonorView,
  type FundView,
  type GiftInput,
  type GiftView,
  type Page,
} from '../lib/types';

export const PAYMENT_METHODS = [
  { value: '', label: 'Not recorded' },
  { value: 'card', label: 'Card' },
  { value: 'cash', label: 'Cash' },
  { value: 'cheque', label: 'Cheque' },
  { value: 'bank_transfer', label: 'Bank transfer' },
  { value: 'direct_debit', label: 'Direct Debit' },
  { value: 'standing_order', label: 'Standing order' },
  { value: 'other', label: 'Other' },
];

const MATCH_REASONS: Record<string, string> = {
  email: 'same email',
  name_postcode: 'same name and postcode',
  name_phone: 'same name and phone',
  name_email: 'same name and email',
  external_id: 'same external id',
};

/** HMRC's model wording for a declaration covering this and future gifts and those of the past four years. */
export function declarationText(charity: string): string {
  return (
    `I want to Gift Aid my donation and any donations I make in the future or have made in the past 4 years to ${charity}. ` +
    'I am a UK taxpayer and understand that if I pay less Income Tax and/or Capital Gains Tax than the amount of Gift Aid ' +
    'claimed on all my donations in that tax year it is my responsibility to pay any difference.'
  );
}

interface NewDonor {
  first_name: string;
  last_name: string;
  email: string;
  postcode: string;
  phone: string;
  line1: string;
  line2: string;
  town: string;
}

const EMPTY_DONOR: NewDonor = { first_name: '', last_name: '', email: '', postcode: '', phone: '', line1: '', line2: '', town: '' };

function blank(s: string): string | null {
  const t = s.trim();
  return t ? t : null;
}

function donorInput(d: NewDonor): DonorInput {
  const address = { line1: blank(d.line1), line2: blank(d.line2), town: blank(d.town), postcode: blank(d.postcode) };
  const hasAddress = Object.values(address).some((v) => v !== null);
  return {
    first_name: blank(d.first_name),
    last_name: d.last_name.trim(),
    email: blank(d.email),
    phone: blank(d.phone),
    address: hasAddress ? address : null,
  };
}

interface Confirmation {
  gift: GiftView;
  donor: DonorView;
  declarationError?: string;
}

export function GiftEntry() {
  useTitle('Gift entry');
  const canWrite = useScope('fundraising:write');
  if (!canWrite) {
    return (
      <>
        <h1>Gift entry</h1>
        <p class="alert info">Your role can look at gifts but not record them. Ask an admin if you need to enter gifts.</p>
      </>
    );
  }
  return <GiftForm />;
}

function GiftForm() {
  const s = session();
  const charity = s.status === 'signed-in' ? s.staff.tenant_name : 'the charity';
  const funds = useAsync(() => getAll<FundView>(`${FUNDRAISING}/funds`, { archived: 'false' }), []);

  const [mode, setMode] = useState<'search' | 'new'>('search');
  const [donor, setDonor] = useState<DonorView | null>(null);
  const [newDonor, setNewDonor] = useState<NewDonor>(EMPTY_DONOR);
  const [amount, setAmount] = useState('');
  const [currency, setCurrency] = useState('GBP');
  const [giftDate, setGiftDate] = useState(today());
  const [method, setMethod] = useState('');
  const [fundId, setFundId] = useState('');
  const [notes, setNotes] = useState('');
  const [giftAid, setGiftAid] = useState(false);
  const [declMethod, setDeclMethod] = useState<DeclarationMethod>('written');
  const [existingDecl, setExistingDecl] = useState<DeclarationView | null>(null);

  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<unknown>(undefined);
  const [duplicates, setDuplicates] = useState<DonorMatch[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmation, setConfirmation] = useState<Confirmation | null>(null);

  const searchRef = useRef<HTMLInputElement>(null);
  const firstNameRef = useRef<HTMLInputElement>(null);
  const amountRef = useRef<HTMLInputElement>(null);
  const formRef = useRef<HTMLFormElement>(null);
  const dupHeadingRef = useRef<HTMLHeadingElement>(null);

  // A selected donor's current declaration, so staff do not record a second one.
  useEffect(() => {
    setExistingDecl(null);
    if (!donor) return;
    let live = true;
    get<{ data: DeclarationView[] }>(`${FUNDRAISING}/donors/${donor.id}/gift-aid-declarations`)
      .then((r) => {
        if (!live) return;
        const active = r.data.find((d) => ['active', 'awaiting_confirmation', 'in_cancellation_window'].includes(d.state)) ?? null;
        setExistingDecl(active);
        if (active) setGiftAid(false);
      })
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [donor?.id]);

  useEffect(() => {
    if (duplicates?.length) dupHeadingRef.current?.focus();
  }, [duplicates]);

  function resetForNextGift() {
    setMode('search');
    setDonor(null);
    setNewDonor(EMPTY_DONOR);
    setAmount('');
    setNotes('');
    setGiftAid(false);
    setErrors({});
    setFormError(undefined);
    setDuplicates(null);
    // Currency, date, payment method and fund usually repeat across a batch of gifts: they stay.
    setTimeout(() => searchRef.current?.focus(), 0);
  }

  function validate(): { amountMinor: number } | null {
    const errs: Record<string, string> = {};
    if (mode === 'search' && !donor) errs.donor = 'Choose a donor, or enter a new donor.';
    if (mode === 'new' && !newDonor.last_name.trim()) errs.last_name = 'Enter the donor’s last name.';
    const amountMinor = parseAmount(amount, currency);
    if (amountMinor === null || amountMinor <= 0) errs.amount = `Enter an amount in ${currency}, such as 25.00.`;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(giftDate)) errs.gift_date = 'Enter the date of the gift.';
    else if (giftDate > today()) errs.gift_date = 'The gift date cannot be in the future.';
    setErrors(errs);
    if (Object.keys(errs).length) {
      const first = formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"]');
      first?.focus();
      return null;
    }
    return { amountMinor: amountMinor! };
  }

  async function save(opts: { useDonor?: DonorView; skipMatch?: boolean } = {}) {
    if (busy) return;
    const ok = validate();
    if (!ok) return;
    setBusy(true);
    setFormError(undefined);
    const key = uuid();
    let payer: DonorView | null = opts.useDonor ?? (mode === 'search' ? donor : null);
    try {
      if (!payer) {
        const input = donorInput(newDonor);
        if (!opts.skipMatch) {
          const matches = await request<{ data: DonorMatch[] }>('POST', `${FUNDRAISING}/donors/matches`, {
            body: { first_name: input.first_name, last_name: input.last_name, email: input.email, postcode: input.address?.postcode ?? null, phone: input.phone },
          });
          if (matches.data.length) {
            setDuplicates(matches.data);
            return;
          }
        }
        try {
          payer = await request<DonorView>('POST', `${FUNDRAISING}/donors`, { body: input, idempotencyKey: `${key}-donor` });
        } catch (e) {
          const fe = fieldErrors(e);
          setErrors(Object.fromEntries(Object.entries(fe).map(([k, v]) => [k.replace(/^address\./, ''), v])));
          throw e;
        }
        // Keep the new donor: a retry after a gift error must not create them twice.
        setDonor(payer);
        setMode('search');
        setNewDonor(EMPTY_DONOR);
      }
      setDuplicates(null);
      const body: GiftInput = {
        donor_id: payer.id,
        amount_minor: ok.amountMinor,
        currency,
        gift_date: giftDate,
        payment_method: blank(method),
        notes: blank(notes),
      };
      if (fundId) body.allocations = [{ fund_id: fundId, amount_minor: ok.amountMinor }];
      let gift: GiftView;
      try {
        gift = await request<GiftView>('POST', `${FUNDRAISING}/gifts`, { body, idempotencyKey: `${key}-gift` });
      } catch (e) {
        const fe = fieldErrors(e);
        const mapped: Record<string, string> = {};
        for (const [k, v] of Object.entries(fe)) {
          if (k.startsWith('amount')) mapped.amount = v;
          else if (k.startsWith('allocations')) mapped.fund = v;
          else mapped[k] = v;
        }
        setErrors(mapped);
        throw e;
      }
      let declarationError: string | undefined;
      if (giftAid) {
        const decl: DeclarationBody = {
          declaration_text: declarationText(charity),
          method: declMethod,
          declared_on: today(),
          // The wording covers the past four years: start the day after four years ago.
          start_date: addYears(today(), -4, 1),
        };
        try {
          await request('POST', `${FUNDRAISING}/donors/${payer.id}/gift-aid-declarations`, { body: decl, idempotencyKey: `${key}-declaration` });
        } catch (e) {
          declarationError = e instanceof ApiError ? (e.problem.detail ?? e.message) : String(e);
        }
      }
      setConfirmation({ gift, donor: payer, declarationError });
      resetForNextGift();
    } catch (e) {
      setFormError(e);
    } finally {
      setBusy(false);
    }
  }

  function onSubmit(e: Event) {
    e.preventDefault();
    void save();
  }

  function onKeyDown(e: KeyboardEvent) {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      formRef.current?.requestSubmit();
    }
  }

  const fundOptions = [{ value: '', label: 'Unallocated' }, ...(funds.data ?? []).map((f) => ({ value: f.id, label: `${f.name} (${f.code})` }))];

  return (
    <>
      <h1>Gift entry</h1>
      <p class="hint-line">
        Type to find a donor, arrow keys and Enter to choose. <kbd>Enter</kbd> or <kbd>Ctrl</kbd>+<kbd>Enter</kbd> saves the gift.
      </p>
      <div role="status" class="confirmation" data-testid="gift-confirmation">
        {confirmation && (
          <>
            <p>
              Gift of <strong>{money(confirmation.gift.amount_minor, confirmation.gift.currency)}</strong> from{' '}
              <strong>{donorName(confirmation.donor)}</strong> on {date(confirmation.gift.gift_date)} recorded.{' '}
              <a href={`/donors/${confirmation.donor.id}`}>View {donorName(confirmation.donor)}’s page</a>
            </p>
            {confirmation.declarationError && <p class="warn-text">The Gift Aid declaration was not recorded: {confirmation.declarationError}</p>}
          </>
        )}
      </div>
      <form ref={formRef} onSubmit={onSubmit} onKeyDown={onKeyDown} noValidate class="gift-form">
        <fieldset>
          <legend>Donor</legend>
          {mode === 'search' ? (
            donor ? (
              <div class="selected-donor">
                <p>
                  <strong data-testid="selected-donor">{donorName(donor)}</strong>
                  {donor.email ? ` · ${donor.email}` : ''}
                  {donor.address.postcode ? ` · ${donor.address.postcode}` : ''}
                </p>
                <button
                  type="button"
                  class="secondary"
                  onClick={() => {
                    setDonor(null);
                    setTimeout(() => searchRef.current?.focus(), 0);
                  }}
                >
                  Change donor
                </button>
              </div>
            ) : (
              <>
                <DonorSearch
                  inputRef={searchRef}
                  error={errors.donor}
                  onChoose={(d) => {
                    setDonor(d);
                    setErrors({});
                    // The donor chosen, on to the amount.
                    setTimeout(() => amountRef.current?.focus(), 0);
                  }}
                />
                <button
                  type="button"
                  class="secondary"
                  onClick={() => {
                    setMode('new');
                    setTimeout(() => firstNameRef.current?.focus(), 0);
                  }}
                >
                  New donor
                </button>
              </>
            )
          ) : (
            <>
              <div class="grid-2">
                <Field label="First name" autoComplete="off" value={newDonor.first_name} onValue={(v) => setNewDonor({ ...newDonor, first_name: v })} inputRef={firstNameRef} error={errors.first_name} />
                <Field label="Last name (required)" autoComplete="off" value={newDonor.last_name} onValue={(v) => setNewDonor({ ...newDonor, last_name: v })} error={errors.last_name} required />
                <Field label="Email" type="email" autoComplete="off" value={newDonor.email} onValue={(v) => setNewDonor({ ...newDonor, email: v })} error={errors.email} />
                <Field label="Phone" type="tel" autoComplete="off" value={newDonor.phone} onValue={(v) => setNewDonor({ ...newDonor, phone: v })} error={errors.phone} />
                <Field label="Address line 1" autoComplete="off" value={newDonor.line1} onValue={(v) => setNewDonor({ ...newDonor, line1: v })} error={errors.line1} />
                <Field label="Address line 2" autoComplete="off" value={newDonor.line2} onValue={(v) => setNewDonor({ ...newDonor, line2: v })} error={errors.line2} />
                <Field label="Town" autoComplete="off" value={newDonor.town} onValue={(v) => setNewDonor({ ...newDonor, town: v })} error={errors.town} />
                <Field label="Postcode" autoComplete="off" value={newDonor.postcode} onValue={(v) => setNewDonor({ ...newDonor, postcode: v })} error={errors.postcode} />
              </div>
              <button
                type="button"
                class="secondary"
                onClick={() => {
                  setMode('search');
                  setDuplicates(null);
                  setTimeout(() => searchRef.current?.focus(), 0);
                }}
              >
                Search existing donors instead
              </button>
            </>
          )}
        </fieldset>

        {duplicates && duplicates.length > 0 && (
          <section class="duplicate-prompt" data-testid="duplicate-prompt" aria-labelledby="dup-title" onKeyDown={(e) => e.key === 'Escape' && setDuplicates(null)}>
            <h2 id="dup-title" ref={dupHeadingRef} tabIndex={-1}>
              Possible existing donors
            </h2>
            <p>These donors may be the person you are entering. Use one of them, or create a new donor anyway.</p>
            <ul class="match-list">
              {duplicates.map((m) => (
                <li key={m.donor.id} data-testid="duplicate-match">
                  <div>
                    <strong>{donorName(m.donor)}</strong>
                    {m.donor.email ? ` · ${m.donor.email}` : ''}
                    {m.donor.address.postcode ? ` · ${m.donor.address.postcode}` : ''}
                    {m.donor.phone ? ` · ${m.donor.phone}` : ''}
                    <div class="reasons">Matched by: {m.matched_by.map((r) => MATCH_REASONS[r] ?? r).join(', ')}</div>
                  </div>
                  <button
                    type="button"
                    onClick={() => {
                      setDonor(m.donor);
                      setMode('search');
                      setNewDonor(EMPTY_DONOR);
                      setDuplicates(null);
                      void save({ useDonor: m.donor });
                    }}
                  >
                    Use this donor<span class="visually-hidden">: {donorName(m.donor)}</span>
                  </button>
                </li>
              ))}
            </ul>
            <button type="button" class="secondary" onClick={() => void save({ skipMatch: true })}>
              Create a new donor anyway
            </button>
          </section>
        )}

        <fieldset>
          <legend>Gift</legend>
          <div class="grid-3">
            <Field label="Amount" inputMode="decimal" autoComplete="off" value={amount} onValue={setAmount} error={errors.amount} required inputRef={amountRef} />
            <SelectField label="Currency" value={currency} onValue={setCurrency} options={CURRENCIES.map((c) => ({ value: c, label: c }))} error={errors.currency} />
            <Field label="Date" type="date" value={giftDate} max={today()} onValue={setGiftDate} error={errors.gift_date} required />
            <SelectField label="Payment method" value={method} onValue={setMethod} options={PAYMENT_METHODS} error={errors.payment_method} />
            <SelectField label="Fund" value={fundId} onValue={setFundId} options={fundOptions} error={errors.fund} />
            <Field label="Notes" autoComplete="off" value={notes} onValue={setNotes} error={errors.notes} />
          </div>
        </fieldset>

        <fieldset>
          <legend>Gift Aid</legend>
          {existingDecl && (
            <p class="alert info">
              This donor’s Gift Aid declaration of {date(existingDecl.declared_on)} ({existingDecl.state.replace(/_/g, ' ')}) already covers gifts from {date(existingDecl.start_date)}.
            </p>
          )}
          <div class="check">
            <input id="gift-aid" type="checkbox" checked={giftAid} onChange={(e) => setGiftAid((e.currentTarget as HTMLInputElement).checked)} />
            <label for="gift-aid">The donor made a Gift Aid declaration: record it</label>
          </div>
          {giftAid && (
            <>
              <blockquote class="declaration" aria-label="Declaration text">
                {declarationText(charity)}
              </blockquote>
              <SelectField
                label="How it was made"
                value={declMethod}
                onValue={(v) => setDeclMethod(v as DeclarationMethod)}
                options={[
                  { value: 'written', label: 'Written (paper form)' },
                  { value: 'oral', label: 'Oral (phone or in person; a written record must be sent)' },
                  { value: 'online', label: 'Online' },
                ]}
              />
            </>
          )}
        </fieldset>

        <ErrorAlert error={formError} />
        <div class="actions">
          <button type="submit" disabled={busy}>
            {busy ? 'Saving…' : 'Save gift'}
          </button>
        </div>
      </form>
    </>
  );
}

interface DonorSearchProps {
  onChoose: (d: DonorView) => void;
  error?: string;
  inputRef: preact.Ref<HTMLInputElement>;
  label?: string;
}

/** A combobox (ARIA 1.2 pattern) searching donors by name prefix, or by email when the text has an `@`. */
export function DonorSearch({ onChoose, error, inputRef, label = 'Find a donor (name or email)' }: DonorSearchProps) {
  const id = useId('donor-search');
  const [text, setText] = useState('');
  const [results, setResults] = useState<DonorView[]>([]);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const [status, setStatus] = useState('');

  useEffect(() => {
    const q = text.trim();
    if (q.length < 2) {
      setResults([]);
      setOpen(false);
      setStatus('');
      return;
    }
    const ctl = new AbortController();
    const t = setTimeout(async () => {
      try {
        const query = q.includes('@') ? { email: q, limit: 10 } : { q, limit: 10 };
        const page = await get<Page<DonorView>>(`${FUNDRAISING}/donors`, query, ctl.signal);
        setResults(page.data);
        setActive(page.data.length ? 0 : -1);
        setOpen(true);
        setStatus(page.data.length ? `${page.data.length} donor${page.data.length === 1 ? '' : 's'} found. Use the arrow keys to choose.` : 'No donor found.');
      } catch (e) {
        if (ctl.signal.aborted) return;
        setResults([]);
        setOpen(true);
        setStatus(e instanceof ApiError && e.status === 422 ? 'Keep typing: not a whole email address yet.' : 'Search failed. Try again.');
      }
    }, 180);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
  }, [text]);

  function choose(d: DonorView) {
    setOpen(false);
    setText('');
    setResults([]);
    onChoose(d);
  }

  function onKeyDown(e: KeyboardEvent) {
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      if (!open && results.length) setOpen(true);
      setActive((a) => Math.min(results.length - 1, a + 1));
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      setActive((a) => Math.max(0, a - 1));
    } else if (e.key === 'Enter' && !e.ctrlKey && !e.metaKey) {
      if (open && active >= 0 && results[active]) {
        e.preventDefault();
        e.stopPropagation();
        choose(results[active]);
      }
    } else if (e.key === 'Escape') {
      if (open) {
        e.preventDefault();
        setOpen(false);
      }
    }
  }

  const listId = `${id}-list`;
  return (
    <div class="field combobox">
      <label for={id}>{label}</label>
      <input
        ref={inputRef}
        id={id}
        type="text"
        role="combobox"
        autoComplete="off"
        aria-autocomplete="list"
        aria-expanded={open && results.length > 0 ? 'true' : 'false'}
        aria-controls={listId}
        aria-activedescendant={open && active >= 0 && results[active] ? `${listId}-${active}` : undefined}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        value={text}
        onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)}
        onKeyDown={onKeyDown}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        data-testid="donor-search"
      />
      {error && (
        <span class="field-error" id={`${id}-error`}>
          {error}
        </span>
      )}
      {open && results.length > 0 && (
      <ul id={listId} role="listbox" aria-label="Donors found" class="listbox">
        {results.map((d, i) => (
            <li
              key={d.id}
              id={`${listId}-${i}`}
              role="option"
              aria-selected={i === active ? 'true' : 'false'}
              class={i === active ? 'active' : undefined}
              onMouseDown={(e) => {
                e.preventDefault();
                choose(d);
              }}
            >
              <strong>{donorName(d)}</strong>
              <span class="muted">
                {[d.email, d.address.postcode, d.address.town].filter(Boolean).join(' · ')}
              </span>
            </li>
          ))}
      </ul>
      )}
      <span class="visually-hidden" role="status" aria-live="polite">
        {status}
      </span>
      {open && results.length === 0 && status && <p class="muted small">{status}</p>}
    </div>
  );
}
