import { useMemo, useState } from 'preact/hooks';
import { ChartPanel } from '../components/Chart';
import { ErrorAlert, Loading, SelectField, useAsync, useTitle } from '../components/ui';
import { get, ROLLUP } from '../lib/api';
import type { ChartOption } from '../lib/chart-types';
import { count, date, fiscalMonths, fiscalYearOf, fyLabel, humanize, major, money, moneyMajor, MONTHS, today } from '../lib/format';
import type { IncomeByFund, IncomeBySource, Retention, SourceIncome, Summary, TopDonors } from '../lib/types';

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
      <div class="charts" data-charts-expected="4">
        {summary.data && <MonthlyIncome summary={summary.data} currency={currency} fy={currentFy} />}
        <ErrorAlert error={retention.error} />
        {retention.data && <RetentionChart retention={retention.data} />}
        <FundsChart currency={currency} fy={currentFy} />
        <SourcesChart currency={currency} fy={currentFy} />
      </div>
      <TopDonors currency={currency} fy={currentFy} />
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

function FundsChart({ currency, fy }: { currency: string; fy: number }) {
  const income = useAsync((signal) => get<IncomeByFund>(`${ROLLUP}/summary/income/funds`, { fiscal_year: fy }, signal), [fy]);
  const start = income.data?.fiscal_year_start_month ?? 4;
  const rows = useMemo(() => {
    const funds = income.data?.currencies.find((c) => c.currency === currency)?.funds ?? [];
    return funds.map((f) => ({ name: f.fund_id ? (f.name ?? f.code ?? 'Unnamed fund') : 'Unallocated', total: f.total_minor, gifts: f.count }));
  }, [income.data, currency]);
  const option = useMemo<ChartOption>(
    () => ({
      tooltip: { trigger: 'axis', valueFormatter: (v) => moneyMajor(v as number, currency) },
      grid: { left: 8, right: 24, top: 16, bottom: 8, containLabel: true },
      xAxis: { type: 'value', axisLabel: { formatter: (v: number) => moneyMajor(v, currency) } },
      yAxis: { type: 'category', inverse: true, data: rows.map((r) => r.name) },
      series: [{ name: `Income (${currency})`, type: 'bar', data: rows.map((r) => major(r.total, currency)) }],
    }),
    [rows, currency],
  );
  if (income.error) return <ErrorAlert error={income.error} />;
  if (!income.data) return null;
  const label = fyLabel(fy, start);
  const summary = rows.length
    ? `Bar chart of income by fund in ${currency}, ${label}, largest first: ${rows
        .slice(0, 4)
        .map((r) => `${r.name} ${money(r.total, currency)}`)
        .join(', ')}.`
    : `Bar chart of income by fund in ${currency}, ${label}: no income yet.`;
  return (
    <ChartPanel
      title="Income by fund this year"
      testid="chart-funds"
      label={summary}
      option={option}
      height={Math.max(160, rows.length * 34 + 48)}
      filename={`income-by-fund-${currency}-${fy}.csv`}
      columns={['Fund', `Income (${currency})`, 'Gifts']}
      rows={rows.map((r) => [r.name, major(r.total, currency), r.gifts])}
      displayRows={rows.map((r) => [r.name, money(r.total, currency), count(r.gifts)])}
    />
  );
}

function SourcesChart({ currency, fy }: { currency: string; fy: number }) {
  const income = useAsync((signal) => get<IncomeBySource>(`${ROLLUP}/summary/income/sources`, { fiscal_year: fy }, signal), [fy]);
  const start = income.data?.fiscal_year_start_month ?? 4;
  const sources = useMemo(() => income.data?.currencies.find((c) => c.currency === currency)?.sources ?? [], [income.data, currency]);
  const months = fiscalMonths(fy, start);
  const labels = months.map((m) => MONTHS[Number(m.slice(5, 7)) - 1].slice(0, 3));
  const perMonth = (src: SourceIncome) => {
    const byMonth = new Map(src.by_month.map((m) => [m.month, m.total_minor]));
    return months.map((m) => byMonth.get(m) ?? 0);
  };
  const option = useMemo<ChartOption>(
    () => ({
      legend: { top: 0 },
      tooltip: { trigger: 'axis', valueFormatter: (v) => moneyMajor(v as number, currency) },
      xAxis: { type: 'category', data: labels },
      yAxis: { type: 'value', axisLabel: { formatter: (v: number) => moneyMajor(v, currency) } },
      series: sources.map((src) => ({ name: humanize(src.source), type: 'bar', stack: 'income', data: perMonth(src).map((v) => major(v, currency)) })),
    }),
    [sources, currency, fy, start],
  );
  if (income.error) return <ErrorAlert error={income.error} />;
  if (!income.data) return null;
  const label = fyLabel(fy, start);
  const summary = sources.length
    ? `Stacked bar chart of income by source and month in ${currency}, ${label}: ${sources
        .map((src) => `${humanize(src.source)} ${money(src.total_minor, currency)}`)
        .join(', ')}.`
    : `Bar chart of income by source in ${currency}, ${label}: no income yet.`;
  return (
    <ChartPanel
      title="Income by source this year"
      testid="chart-sources"
      label={summary}
      option={option}
      filename={`income-by-source-${currency}-${fy}.csv`}
      columns={['Month', ...sources.map((src) => `${humanize(src.source)} (${currency})`)]}
      rows={labels.map((m, i) => [m, ...sources.map((src) => major(perMonth(src)[i], currency))])}
      displayRows={labels.map((m, i) => [m, ...sources.map((src) => money(perMonth(src)[i], currency))])}
    />
  );
}

function TopDonors({ currency, fy }: { currency: string; fy: number }) {
  const [period, setPeriod] = useState<'fiscal_year' | 'lifetime'>('fiscal_year');
  const top = useAsync(
    (signal) => get<TopDonors>(`${ROLLUP}/summary/top-donors`, { period, fiscal_year: period === 'fiscal_year' ? fy : undefined, limit: 10 }, signal),
    [period, fy],
  );
  const donors = top.data?.currencies.find((c) => c.currency === currency)?.donors ?? [];
  const when = period === 'fiscal_year' ? 'this fiscal year' : 'all time';
  return (
    <section class="panel" aria-labelledby="top-donors-title">
      <div class="panel-head">
        <h2 id="top-donors-title">
          Top donors, {when} ({currency})
        </h2>
        <SelectField
          label="Period"
          class="inline compact"
          value={period}
          onValue={(v) => setPeriod(v as 'fiscal_year' | 'lifetime')}
          options={[
            { value: 'fiscal_year', label: 'This fiscal year' },
            { value: 'lifetime', label: 'All time' },
          ]}
        />
      </div>
      <ErrorAlert error={top.error} />
      {top.data && (
        <div class="table-wrap">
          <table aria-labelledby="top-donors-title" data-testid="top-donors">
            <thead>
              <tr>
                <th scope="col">Donor</th>
                <th scope="col" class="num">
                  Given
                </th>
                <th scope="col" class="num">
                  Gifts
                </th>
                <th scope="col">Last gift</th>
              </tr>
            </thead>
            <tbody>
              {donors.map((d) => (
                <tr key={d.donor_id}>
                  <td>
                    <a href={`/donors/${d.donor_id}`}>{d.display_name ?? 'Unnamed donor'}</a>
                  </td>
                  <td class="num">{money(d.total_minor, currency)}</td>
                  <td class="num">{count(d.gift_count)}</td>
                  <td>{date(d.last_gift_date)}</td>
                </tr>
              ))}
              {donors.length === 0 && (
                <tr>
                  <td colSpan={4}>
                    No gifts in {currency} {when === 'all time' ? 'yet' : 'this fiscal year yet'}.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
