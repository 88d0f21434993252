import { useMemo, useState } from 'preact/hooks';
import { ChartPanel } from '../components/Chart';
import { ErrorAlert, Loading, SelectField, useAsync, useTitle } from '../components/ui';
import { get, ROLLUP } from '../lib/api';
import type { ChartOption } from '../lib/chart-types';
import { count, date, fiscalMonths, fiscalYearOf, fyLabel, major, money, moneyMajor, MONTHS, today } from '../lib/format';
import type { Page, Retention, RollupFundView, Summary, TopDonorView } from '../lib/types';

export function Dashboard() {
  useTitle('Dashboard');
  const summary = useAsync((signal) => get<Summary>(`${ROLLUP}/summary`, undefined, signal), []);
  const retention = useAsync((signal) => get<Retention>(`${ROLLUP}/summary/retention`, undefined, signal), []);
  const [chosen, setChosen] = useState<string | undefined>();

  const currencies = summary.data?.currencies.map((c) => c.currency) ?? [];
  const currency = chosen ?? (currencies.includes('GBP') || currencies.length === 0 ? 'GBP' : currencies[0]);
  const startMonth = summary.data?.fiscal_year_start_month ?? retention.data?.fiscal_year_start_month ?? 4;
  const currentFy = retention.data?.current_fiscal_year ?? fiscalYearOf(today(), startMonth);

  return (
    <>
      <div class="page-head">
        <h1>Dashboard</h1>
        {currencies.length > 1 && (
          <SelectField
            label="Currency"
            class="inline"
            value={currency}
            onValue={setChosen}
            options={currencies.map((c) => ({ value: c, label: c }))}
          />
        )}
      </div>
      <ErrorAlert error={summary.error} />
      {summary.loading && !summary.data ? <Loading what="Loading this year's figures" /> : null}
      {summary.data && <YearCards summary={summary.data} currency={currency} fy={currentFy} />}
      <div class="charts" data-charts-expected="3">
        {summary.data && <MonthlyIncome summary={summary.data} currency={currency} fy={currentFy} />}
        <ErrorAlert error={retention.error} />
        {retention.data && <RetentionChart retention={retention.data} />}
        <FundsChart currency={currency} />
      </div>
      <TopDonors currency={currency} />
    </>
  );
}

function YearCards({ summary, currency, fy }: { summary: Summary; currency: string; fy: number }) {
  const years = summary.currencies.find((c) => c.currency === currency)?.by_fiscal_year ?? [];
  const now = years.find((y) => y.fiscal_year === fy);
  const last = years.find((y) => y.fiscal_year === fy - 1);
  const label = fyLabel(fy, summary.fiscal_year_start_month);
  return (
    <section class="cards" aria-label={`This fiscal year, ${label}`}>
      <div class="card">
        <h2>Income this year</h2>
        <p class="figure" data-testid="fy-total" data-value={now?.total_minor ?? 0}>
          {money(now?.total_minor ?? 0, currency)}
        </p>
        <p class="sub">
          {label}; last year {money(last?.total_minor ?? 0, currency)}
        </p>
      </div>
      <div class="card">
        <h2>Gifts this year</h2>
        <p class="figure" data-testid="fy-gifts" data-value={now?.count ?? 0}>
          {count(now?.count ?? 0)}
        </p>
        <p class="sub">last year {count(last?.count ?? 0)}</p>
      </div>
      <div class="card">
        <h2>Donors this year</h2>
        <p class="figure" data-testid="fy-donors" data-value={now?.donors ?? 0}>
          {count(now?.donors ?? 0)}
        </p>
        <p class="sub">last year {count(last?.donors ?? 0)}</p>
      </div>
    </section>
  );
}

function MonthlyIncome({ summary, currency, fy }: { summary: Summary; currency: string; fy: number }) {
  const start = summary.fiscal_year_start_month;
  const data = useMemo(() => {
    const byMonth = new Map((summary.currencies.find((c) => c.currency === currency)?.by_month ?? []).map((m) => [m.month, m.total_minor]));
    const thisYear = fiscalMonths(fy, start);
    const lastYear = fiscalMonths(fy - 1, start);
    const labels = thisYear.map((m) => MONTHS[Number(m.slice(5, 7)) - 1].slice(0, 3));
    const now = thisYear.map((m) => byMonth.get(m) ?? 0);
    const before = lastYear.map((m) => byMonth.get(m) ?? 0);
    return { labels, now, before };
  }, [summary, currency, fy, start]);
  const nowLabel = fyLabel(fy, start);
  const lastLabel = fyLabel(fy - 1, start);
  const option = useMemo<ChartOption>(
    () => ({
      legend: { top: 0 },
      xAxis: { type: 'category', data: data.labels },
      yAxis: { type: 'value', axisLabel: { formatter: (v: number) => moneyMajor(v, currency) } },
      tooltip: { trigger: 'axis', valueFormatter: (v) => moneyMajor(v as number, currency) },
      series: [
        { name: lastLabel, type: 'bar', data: data.before.map((v) => major(v, currency)), itemStyle: { color: '#9aa5b1' } },
        { name: nowLabel, type: 'bar', data: data.now.map((v) => major(v, currency)) },
      ],
    }),
    [data, currency, nowLabel, lastLabel],
  );
  const total = data.now.reduce((a, b) => a + b, 0);
  const lastTotal = data.before.reduce((a, b) => a + b, 0);
  const best = data.now.indexOf(Math.max(...data.now));
  const label =
    `Bar chart of income by month in ${currency}, ${nowLabel} against ${lastLabel}. ` +
    `${nowLabel}: ${money(total, currency)} so far` +
    (total > 0 ? `, highest in ${data.labels[best]}` : '') +
    `. ${lastLabel}: ${money(lastTotal, currency)}.`;
  return (
    <ChartPanel
      title="Income by month"
      testid="chart-income-by-month"
      label={label}
      option={option}
      filename={`income-by-month-${currency}-${fy}.csv`}
      columns={['Month', `${lastLabel} (${currency})`, `${nowLabel} (${currency})`]}
      rows={data.labels.map((m, i) => [m, major(data.before[i], currency), major(data.now[i], currency)])}
      displayRows={data.labels.map((m, i) => [m, money(data.before[i], currency), money(data.now[i], currency)])}
    />
  );
}

function RetentionChart({ retention }: { retention: Retention }) {
  const years = retention.fiscal_years.slice(-6);
  const start = retention.fiscal_year_start_month;
  const labels = years.map((y) => fyLabel(y.fiscal_year, start));
  const option = useMemo<ChartOption>(
    () => ({
      legend: { top: 0 },
      tooltip: { trigger: 'axis' },
      xAxis: { type: 'category', data: labels },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        { name: 'New', type: 'bar', data: years.map((y) => y.new) },
        { name: 'Retained', type: 'bar', data: years.map((y) => y.retained) },
        { name: 'Reactivated', type: 'bar', data: years.map((y) => y.reactivated) },
        { name: 'Lapsed', type: 'bar', data: years.map((y) => y.lapsed) },
      ],
    }),
    [retention],
  );
  const cur = retention.fiscal_years.find((y) => y.fiscal_year === retention.current_fiscal_year);
  const label =
    `Bar chart of donors by fiscal year: new, retained, reactivated and lapsed, ${labels[0] ?? ''} to ${labels[labels.length - 1] ?? ''}.` +
    (cur ? ` This year: ${cur.new} new, ${cur.retained} retained, ${cur.reactivated} reactivated, ${cur.lapsed} lapsed.` : ' No gifts yet.');
  return (
    <ChartPanel
      title="Donors by year"
      testid="chart-retention"
      label={label}
      option={option}
      filename="donor-retention.csv"
      columns={['Fiscal year', 'Donors', 'New', 'Retained', 'Reactivated', 'Lapsed']}
      rows={years.map((y, i) => [labels[i], y.donors, y.new, y.retained, y.reactivated, y.lapsed])}
    />
  );
}

function FundsChart({ currency }: { currency: string }) {
  const funds = useAsync((signal) => get<Page<RollupFundView>>(`${ROLLUP}/funds`, { limit: 500 }, signal), []);
  const rows = useMemo(() => {
    return (funds.data?.data ?? [])
      .map((f) => ({ name: f.name ?? f.code ?? 'Unnamed fund', total: f.currencies.find((c) => c.currency === currency)?.total_minor ?? 0, gifts: f.currencies.find((c) => c.currency === currency)?.gift_count ?? 0 }))
      .filter((f) => f.total !== 0)
      .sort((a, b) => b.total - a.total)
      .slice(0, 10);
  }, [funds.data, currency]);
  const option = useMemo<ChartOption>(
    () => ({
      tooltip: { trigger: 'axis', valueFormatter: (v) => moneyMajor(v as number, currency) },
      grid: { left: 8, right: 24, top: 16, bottom: 8, containLabel: true },
      xAxis: { type: 'value' },
      yAxis: { type: 'category', inverse: true, data: rows.map((r) => r.name) },
      series: [{ name: `Total (${currency})`, type: 'bar', data: rows.map((r) => major(r.total, currency)) }],
    }),
    [rows, currency],
  );
  if (funds.error) return <ErrorAlert error={funds.error} />;
  if (!funds.data) return null;
  const label = rows.length
    ? `Bar chart of income by fund in ${currency}, all time, largest first: ${rows.slice(0, 3).map((r) => `${r.name} ${money(r.total, currency)}`).join(', ')}.`
    : `Bar chart of income by fund in ${currency}: no gifts allocated to funds yet.`;
  return (
    <ChartPanel
      title="Income by fund (all time)"
      testid="chart-funds"
      label={label}
      option={option}
      height={Math.max(160, rows.length * 32 + 40)}
      filename={`income-by-fund-${currency}.csv`}
      columns={['Fund', `Total (${currency})`, 'Gifts']}
      rows={rows.map((r) => [r.name, major(r.total, currency), r.gifts])}
      displayRows={rows.map((r) => [r.name, money(r.total, currency), count(r.gifts)])}
    />
  );
}

function TopDonors({ currency }: { currency: string }) {
  const top = useAsync((signal) => get<Page<TopDonorView>>(`${ROLLUP}/donors`, { currency, limit: 10 }, signal), [currency]);
  return (
    <section class="panel" aria-labelledby="top-donors-title">
      <h2 id="top-donors-title">Top donors ({currency}, lifetime)</h2>
      <ErrorAlert error={top.error} />
      {top.data && (
        <div class="table-wrap">
          <table aria-labelledby="top-donors-title">
            <thead>
              <tr>
                <th scope="col">Donor</th>
                <th scope="col" class="num">Lifetime</th>
                <th scope="col" class="num">Gifts</th>
                <th scope="col">Last gift</th>
              </tr>
            </thead>
            <tbody>
              {top.data.data.map((d) => (
                <tr key={d.donor_id}>
                  <td>
                    <a href={`/donors/${d.donor_id}`}>{d.display_name ?? 'Unnamed donor'}</a>
                  </td>
                  <td class="num">{money(d.lifetime_total_minor, d.currency)}</td>
                  <td class="num">{count(d.lifetime_count)}</td>
                  <td>{date(d.last_gift_date)}</td>
                </tr>
              ))}
              {top.data.data.length === 0 && (
                <tr>
                  <td colSpan={4}>No gifts in {currency} yet.</td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
