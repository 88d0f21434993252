import { useMemo, useState } from 'preact/hooks';
import { ChartPanel } from '../components/Chart';
import { Badge, ErrorAlert, Field, Loading, Pager, useAsync, useCursor, useTitle } from '../components/ui';
import { ApiError, FUNDRAISING, get, getAll, ROLLUP } from '../lib/api';
import type { ChartOption } from '../lib/chart-types';
import { count, date, donorName, fyLabel, humanize, major, money, moneyMajor } from '../lib/format';
import { useScope } from '../lib/session';
import { DonorConversations } from './Inbox';
import type {
  CurrencyGiving,
  DeclarationView,
  DonorGiving,
  DonorView,
  FundView,
  GiftView,
  HouseholdView,
  Page,
  PledgeView,
  RecurringView,
} from '../lib/types';

/** A gift linked to (`/donors/:id#gift-<id>`, from a processed batch) is scrolled to, once per link followed. */
let scrolledTo = '';
function scrollToLinked(el: HTMLTableRowElement | null) {
  if (!el || `#${el.id}` !== location.hash || scrolledTo === location.href) return;
  scrolledTo = location.href;
  setTimeout(() => el.scrollIntoView({ block: 'center' }), 0);
}

export function DonorList() {
  useTitle('Donors');
  const canWrite = useScope('fundraising:write');
  const [text, setText] = useState('');
  const [q, setQ] = useState('');
  const { cursor, setCursor, atFirst } = useCursor([q]);
  const list = useAsync(
    (signal) => {
      const query = q.includes('@') ? { email: q } : { q };
      return get<Page<DonorView>>(`${FUNDRAISING}/donors`, { ...query, limit: 50, cursor }, signal);
    },
    [q, cursor],
  );
  return (
    <>
      <div class="page-head">
        <h1>Donors</h1>
        {canWrite && (
          <a class="button" href="/gifts/new">
            Enter a gift
          </a>
        )}
      </div>
      <form
        role="search"
        class="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          setQ(text.trim());
        }}
      >
        <Field label="Search donors by name, or an exact email address" type="search" value={text} onValue={setText} name="q" />
        <button type="submit">Search</button>
      </form>
      <ErrorAlert error={list.error} />
      {list.loading && <Loading what="Loading donors" />}
      {list.data && (
        <>
          <div class="table-wrap">
            <table>
              <caption>{q ? `Donors matching “${q}”` : 'Donors, newest first'}</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Email</th>
                  <th scope="col">Postcode</th>
                  <th scope="col">Added</th>
                </tr>
              </thead>
              <tbody>
                {list.data.data.map((d) => (
                  <tr key={d.id}>
                    <td>
                      <a href={`/donors/${d.id}`}>{donorName(d)}</a>
                    </td>
                    <td>{d.email ?? '—'}</td>
                    <td>{d.address.postcode ?? '—'}</td>
                    <td>{date(d.created_at)}</td>
                  </tr>
                ))}
                {list.data.data.length === 0 && (
                  <tr>
                    <td colSpan={4}>No donors found.</td>
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

interface DonorData {
  donor: DonorView;
  gifts: GiftView[];
  declarations: DeclarationView[];
  pledges: PledgeView[];
  recurring: RecurringView[];
  household: HouseholdView | null;
  funds: Map<string, FundView>;
}

async function loadDonor(id: string): Promise<DonorData> {
  const donor = await get<DonorView>(`${FUNDRAISING}/donors/${id}`);
  const [gifts, declarations, pledges, recurring, household, funds] = await Promise.all([
    getAll<GiftView>(`${FUNDRAISING}/gifts`, { donor_id: id }),
    get<{ data: DeclarationView[] }>(`${FUNDRAISING}/donors/${id}/gift-aid-declarations`).then((r) => r.data),
    getAll<PledgeView>(`${FUNDRAISING}/pledges`, { donor_id: id }),
    getAll<RecurringView>(`${FUNDRAISING}/recurring`, { donor_id: id }),
    donor.household_id ? get<HouseholdView>(`${FUNDRAISING}/households/${donor.household_id}`) : Promise.resolve(null),
    getAll<FundView>(`${FUNDRAISING}/funds`),
  ]);
  return { donor, gifts, declarations, pledges, recurring, household, funds: new Map(funds.map((f) => [f.id, f])) };
}

export function DonorPage({ id }: { id: string }) {
  const data = useAsync(() => loadDonor(id), [id]);
  const giving = useAsync(
    () =>
      get<DonorGiving>(`${ROLLUP}/donors/${id}`).catch((e) => {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }),
    [id],
  );
  const name = data.data ? donorName(data.data.donor) : 'Donor';
  useTitle(name);
  if (data.error) {
    return (
      <>
        <h1>Donor</h1>
        <ErrorAlert error={data.error} />
        <p>
          <a href="/donors">Back to donors</a>
        </p>
      </>
    );
  }
  if (!data.data) return <Loading what="Loading the donor" />;
  const { donor, gifts, declarations, pledges, recurring, household, funds } = data.data;
  const a = donor.address;
  const refundsOf = new Map<string, GiftView[]>();
  for (const g of gifts) if (g.refund_of) refundsOf.set(g.refund_of, [...(refundsOf.get(g.refund_of) ?? []), g]);
  return (
    <>
      <div class="page-head">
        <h1 data-testid="donor-name">{name}</h1>
        <a class="button secondary" href="/donors">
          All donors
        </a>
      </div>

      <div class="columns">
        <section class="panel" aria-labelledby="details-title">
          <h2 id="details-title">Details</h2>
          <dl class="facts">
            <dt>Email</dt>
            <dd>{donor.email ?? '—'}</dd>
            <dt>Phone</dt>
            <dd>{donor.phone ?? '—'}</dd>
            <dt>Address</dt>
            <dd>{[a.line1, a.line2, a.town, a.county, a.postcode, a.country].filter(Boolean).join(', ') || '—'}</dd>
            <dt>Contact by</dt>
            <dd>
              {Object.entries(donor.communication_preferences)
                .filter(([, v]) => v)
                .map(([k]) => humanize(k))
                .join(', ') || 'No consent recorded'}
            </dd>
            {Object.keys(donor.external_ids).length > 0 && (
              <>
                <dt>External ids</dt>
                <dd>
                  {Object.entries(donor.external_ids)
                    .map(([k, v]) => `${k}: ${v}`)
                    .join(', ')}
                </dd>
              </>
            )}
            <dt>Household</dt>
            <dd>
              {household ? (
                <>
                  {household.name}
                  {household.members.length > 1 && (
                    <ul class="plain">
                      {household.members
                        .filter((m) => m.id !== donor.id)
                        .map((m) => (
                          <li key={m.id}>
                            <a href={`/donors/${m.id}`}>{donorName(m)}</a>
                          </li>
                        ))}
                    </ul>
                  )}
                </>
              ) : (
                'None'
              )}
            </dd>
            <dt>Added</dt>
            <dd>{date(donor.created_at)}</dd>
          </dl>
        </section>
        <GivingFigures giving={giving.data} error={giving.error} loading={giving.loading} />
      </div>

      {giving.data && giving.data.currencies.length > 0 && <GivingByYear giving={giving.data} />}

      <section class="panel" aria-labelledby="gifts-title">
        <h2 id="gifts-title">Gifts and refunds</h2>
        <div class="table-wrap">
          <table aria-labelledby="gifts-title" data-testid="donor-gifts">
            <thead>
              <tr>
                <th scope="col">Date</th>
                <th scope="col" class="num">Amount</th>
                <th scope="col">Status</th>
                <th scope="col">Method</th>
                <th scope="col">Fund</th>
                <th scope="col">Source</th>
              </tr>
            </thead>
            <tbody>
              {gifts.map((g) => (
                <tr key={g.id} id={`gift-${g.id}`} ref={scrollToLinked} class={[g.refund_of ? 'refund' : '', location.hash === `#gift-${g.id}` ? 'linked' : ''].filter(Boolean).join(' ') || undefined}>
                  <td>{date(g.gift_date)}</td>
                  <td class="num">{money(g.amount_minor, g.currency)}</td>
                  <td>
                    {g.refund_of ? <Badge tone="warn">Refund</Badge> : <Badge tone={g.status === 'succeeded' ? 'good' : g.status === 'failed' ? 'bad' : 'neutral'}>{humanize(g.status)}</Badge>}
                    {refundsOf.has(g.id) && <span class="muted small"> ({refundsOf.get(g.id)!.length} refund{refundsOf.get(g.id)!.length > 1 ? 's' : ''})</span>}
                  </td>
                  <td>{g.payment_method ? humanize(g.payment_method) : '—'}</td>
                  <td>{g.allocations.length ? g.allocations.map((al) => funds.get(al.fund_id)?.name ?? 'Fund').join(', ') : (g.fund ?? '—')}</td>
                  <td>{g.source}</td>
                </tr>
              ))}
              {gifts.length === 0 && (
                <tr>
                  <td colSpan={6}>No gifts yet.</td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      </section>

      <section class="panel" aria-labelledby="decl-title">
        <h2 id="decl-title">Gift Aid declarations</h2>
        {declarations.length === 0 ? (
          <p>None recorded.</p>
        ) : (
          <div class="table-wrap">
            <table aria-labelledby="decl-title">
              <thead>
                <tr>
                  <th scope="col">Declared</th>
                  <th scope="col">Method</th>
                  <th scope="col">Covers</th>
                  <th scope="col">State</th>
                </tr>
              </thead>
              <tbody>
                {declarations.map((d) => (
                  <tr key={d.id}>
                    <td>{date(d.declared_on)}</td>
                    <td>{humanize(d.method)}</td>
                    <td>
                      {date(d.start_date)} to {d.end_date ? date(d.end_date) : 'no end'}
                    </td>
                    <td>
                      <Badge tone={d.state === 'active' ? 'good' : d.state === 'cancelled' ? 'bad' : 'neutral'}>{humanize(d.state)}</Badge>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section class="panel" aria-labelledby="pledges-title">
        <h2 id="pledges-title">Pledges</h2>
        {pledges.length === 0 ? (
          <p>None.</p>
        ) : (
          <div class="table-wrap">
            <table aria-labelledby="pledges-title">
              <thead>
                <tr>
                  <th scope="col">Starts</th>
                  <th scope="col" class="num">Pledged</th>
                  <th scope="col">Frequency</th>
                  <th scope="col" class="num">Paid</th>
                  <th scope="col" class="num">Outstanding</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {pledges.map((p) => (
                  <tr key={p.id}>
                    <td>{date(p.start_date)}</td>
                    <td class="num">{money(p.amount_minor, p.currency)}</td>
                    <td>
                      {humanize(p.frequency)}
                      {p.instalments > 1 ? `, ${p.instalments} instalments` : ''}
                    </td>
                    <td class="num">{money(p.paid_minor, p.currency)}</td>
                    <td class="num">{money(p.outstanding_minor, p.currency)}</td>
                    <td>{humanize(p.status)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section class="panel" aria-labelledby="recurring-title">
        <h2 id="recurring-title">Recurring agreements</h2>
        {recurring.length === 0 ? (
          <p>None.</p>
        ) : (
          <div class="table-wrap">
            <table aria-labelledby="recurring-title">
              <thead>
                <tr>
                  <th scope="col">Provider</th>
                  <th scope="col" class="num">Amount</th>
                  <th scope="col">Every</th>
                  <th scope="col">Status</th>
                  <th scope="col">Last paid</th>
                  <th scope="col">Next expected</th>
                </tr>
              </thead>
              <tbody>
                {recurring.map((r) => (
                  <tr key={r.id}>
                    <td>{humanize(r.provider)}</td>
                    <td class="num">{money(r.amount_minor, r.currency)}</td>
                    <td>{r.interval}</td>
                    <td>{humanize(r.status)}</td>
                    <td>{date(r.last_paid_date)}</td>
                    <td>{date(r.next_expected_date)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <DonorConversations donorId={donor.id} />
    </>
  );
}

function mainCurrency(g: DonorGiving): CurrencyGiving | undefined {
  return [...g.currencies].sort((a, b) => b.lifetime_total_minor - a.lifetime_total_minor)[0];
}

function GivingFigures({ giving, error, loading }: { giving: DonorGiving | null | undefined; error: unknown; loading: boolean }) {
  return (
    <section class="panel" aria-labelledby="giving-title">
      <h2 id="giving-title">Giving</h2>
      <ErrorAlert error={error} />
      {loading && <Loading what="Loading giving figures" />}
      {giving === null && <p>No giving figures yet: they appear shortly after the first gift is recorded.</p>}
      {giving && giving.currencies.length === 0 && <p>No counted gifts yet.</p>}
      {giving &&
        giving.currencies.map((c) => (
          <dl class="facts" key={c.currency} aria-label={`Giving in ${c.currency}`}>
            <dt>Lifetime ({c.currency})</dt>
            <dd data-testid={`lifetime-${c.currency}`}>
              {money(c.lifetime_total_minor, c.currency)} in {count(c.lifetime_count)} gift{c.lifetime_count === 1 ? '' : 's'}
            </dd>
            <dt>This fiscal year</dt>
            <dd>{money(c.this_fiscal_year.total_minor, c.currency)}</dd>
            <dt>Last fiscal year</dt>
            <dd>{money(c.last_fiscal_year.total_minor, c.currency)}</dd>
            <dt>Last 365 days</dt>
            <dd>{money(c.last_365_days.total_minor, c.currency)}</dd>
            <dt>Streak</dt>
            <dd>
              {c.consecutive_fiscal_years} consecutive year{c.consecutive_fiscal_years === 1 ? '' : 's'}; gave in {c.fiscal_years_donated} year{c.fiscal_years_donated === 1 ? '' : 's'}
            </dd>
            <dt>First gift</dt>
            <dd>{c.first_gift ? `${money(c.first_gift.amount_minor, c.currency)} on ${date(c.first_gift.date)}` : '—'}</dd>
            <dt>Last gift</dt>
            <dd>{c.last_gift ? `${money(c.last_gift.amount_minor, c.currency)} on ${date(c.last_gift.date)}` : '—'}</dd>
            <dt>Largest gift</dt>
            <dd>{money(c.largest_gift_minor, c.currency)}</dd>
            <dt>Average gift</dt>
            <dd>{money(c.average_gift_minor, c.currency)}</dd>
          </dl>
        ))}
      {giving && giving.recurring.length > 0 && (
        <p>
          Recurring: {giving.recurring.map((r) => `${r.active} active, ${money(r.monthly_minor, r.currency)} a month`).join('; ')}
        </p>
      )}
      {giving && giving.soft_credits.length > 0 && (
        <p>Soft credits: {giving.soft_credits.map((s) => `${money(s.total_minor, s.currency)} from ${s.count} gift${s.count === 1 ? '' : 's'}`).join('; ')}</p>
      )}
      {giving && giving.pledges.length > 0 && (
        <p>Pledges: {giving.pledges.map((p) => `${p.open} open, ${money(p.outstanding_minor, p.currency)} outstanding`).join('; ')}</p>
      )}
    </section>
  );
}

function GivingByYear({ giving }: { giving: DonorGiving }) {
  const c = mainCurrency(giving)!;
  const start = giving.fiscal_year_start_month;
  const years = [c.fiscal_year_before_last, c.last_fiscal_year, c.this_fiscal_year];
  const labels = years.map((y) => fyLabel(y.fiscal_year, start));
  const option = useMemo<ChartOption>(
    () => ({
      tooltip: { trigger: 'axis', valueFormatter: (v) => moneyMajor(v as number, c.currency) },
      xAxis: { type: 'category', data: labels },
      yAxis: { type: 'value', axisLabel: { formatter: (v: number) => moneyMajor(v, c.currency) } },
      series: [{ name: `Given (${c.currency})`, type: 'bar', data: years.map((y) => major(y.total_minor, c.currency)) }],
    }),
    [giving],
  );
  const label = `Bar chart of this donor's giving in ${c.currency} by fiscal year: ${years.map((y, i) => `${labels[i]} ${money(y.total_minor, c.currency)}`).join(', ')}.`;
  return (
    <ChartPanel
      title="Giving by year"
      testid="chart-donor-years"
      label={label}
      option={option}
      height={220}
      filename={`donor-${giving.donor_id}-giving-by-year.csv`}
      columns={['Fiscal year', `Given (${c.currency})`, 'Gifts']}
      rows={years.map((y, i) => [labels[i], major(y.total_minor, c.currency), y.count])}
      displayRows={years.map((y, i) => [labels[i], money(y.total_minor, c.currency), count(y.count)])}
    />
  );
}
