import { useEffect, useState } from 'preact/hooks';
import { ErrorAlert, Field, Loading, SelectField, useAsync, useTitle } from '../components/ui';
import { fieldErrors, FUNDRAISING, get, IDENTITY, MESSAGING, request } from '../lib/api';
import { date, money, MONTHS, parseAmount, setTimeZone, timeZones } from '../lib/format';
import { useScope } from '../lib/session';
import type { GiftAidSettingsView, MessagingSettingsView, Tenant } from '../lib/types';

const monthOptions = MONTHS.map((m, i) => ({ value: String(i + 1), label: m }));

/** Every IANA zone the browser knows, with the tenant's own even if the browser calls it by another name. */
function zoneOptions(current: string) {
  const zones = timeZones();
  const all = current && !zones.includes(current) ? [current, ...zones] : zones;
  return all.map((z) => ({ value: z, label: z.replace(/_/g, ' ') }));
}

export function Settings() {
  useTitle('Settings');
  const readMessaging = useScope('messaging:read');
  return (
    <>
      <h1>Settings</h1>
      <TenantSettings />
      <GiftAidSettings />
      {readMessaging && <MessagingSettings />}
    </>
  );
}

function TenantSettings() {
  const canEdit = useScope('identity:admin');
  const tenant = useAsync(() => get<Tenant>(`${IDENTITY}/tenant`), []);
  const [name, setName] = useState('');
  const [fyStart, setFyStart] = useState('4');
  const [ownPeriodEnd, setOwnPeriodEnd] = useState(false);
  const [endMonth, setEndMonth] = useState('3');
  const [endDay, setEndDay] = useState('31');
  const [zone, setZone] = useState('Europe/London');
  const [error, setError] = useState<unknown>(undefined);
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const t = tenant.data;
    if (!t) return;
    setName(t.name);
    setFyStart(String(t.fiscal_year_start_month));
    setZone(t.time_zone);
    setEndMonth(String(t.accounting_period_end.month));
    setEndDay(String(t.accounting_period_end.day));
    // The period end is the tenant's own unless it is the day before the fiscal year starts.
    const before = new Date(Date.UTC(2001, t.fiscal_year_start_month - 1, 0));
    setOwnPeriodEnd(!(before.getUTCMonth() + 1 === t.accounting_period_end.month && before.getUTCDate() === t.accounting_period_end.day));
  }, [tenant.data]);

  async function save(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setNotice('');
    try {
      const next = await request<Tenant>('PATCH', `${IDENTITY}/tenant`, {
        body: {
          name: name.trim(),
          fiscal_year_start_month: Number(fyStart),
          accounting_period_end: ownPeriodEnd ? { month: Number(endMonth), day: Number(endDay) } : null,
          time_zone: zone,
        },
      });
      tenant.setData(next);
      // Times across the console follow the tenant's zone from now on.
      setTimeZone(next.time_zone);
      setNotice('Organisation settings saved.');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const fe = fieldErrors(error);
  return (
    <section class="panel" aria-labelledby="tenant-title">
      <h2 id="tenant-title">Organisation</h2>
      <ErrorAlert error={tenant.error} />
      {tenant.loading && <Loading what="Loading settings" />}
      {tenant.data && (
        <form onSubmit={save} noValidate>
          <fieldset disabled={!canEdit}>
            <legend class="visually-hidden">Organisation settings</legend>
            <Field label="Name" value={name} onValue={setName} error={fe.name} maxLength={200} />
            <SelectField label="Fiscal year starts in" value={fyStart} onValue={setFyStart} options={monthOptions} error={fe.fiscal_year_start_month} />
            <SelectField
              label="Time zone"
              value={zone}
              onValue={setZone}
              options={zoneOptions(zone)}
              error={fe.time_zone}
              hint={`The console shows times in this zone. Last saved ${date(tenant.data.updated_at, true)}.`}
            />
            <div class="check">
              <input id="own-period-end" type="checkbox" checked={ownPeriodEnd} onChange={(e) => setOwnPeriodEnd((e.currentTarget as HTMLInputElement).checked)} />
              <label for="own-period-end">The accounting period ends on another day than the day before the fiscal year starts</label>
            </div>
            {ownPeriodEnd && (
              <div class="grid-3">
                <SelectField label="Accounting period ends: month" value={endMonth} onValue={setEndMonth} options={monthOptions} error={fe['accounting_period_end.month']} />
                <Field label="Day" type="number" min={1} max={31} value={endDay} onValue={setEndDay} error={fe['accounting_period_end.day'] ?? fe.accounting_period_end} />
              </div>
            )}
            <p class="hint">Gift Aid’s four-year limit runs from the end of the accounting period: currently {tenant.data.accounting_period_end.day} {MONTHS[tenant.data.accounting_period_end.month - 1]}.</p>
          </fieldset>
          <ErrorAlert error={error} />
          <p role="status" class="notice">
            {notice}
          </p>
          {canEdit ? (
            <button type="submit" disabled={busy}>
              Save organisation settings
            </button>
          ) : (
            <p class="muted">Only admins can change these.</p>
          )}
        </form>
      )}
    </section>
  );
}

function GiftAidSettings() {
  const canEdit = useScope('fundraising:write');
  const settings = useAsync(() => get<GiftAidSettingsView>(`${FUNDRAISING}/gift-aid/settings`), []);
  const [agents, setAgents] = useState('');
  const [aggregate, setAggregate] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const s = settings.data;
    if (!s) return;
    setAgents(s.agent_sources.join(', '));
    setAggregate((s.aggregate_up_to_minor / 100).toFixed(2));
  }, [settings.data]);

  async function save(e: Event) {
    e.preventDefault();
    setError(undefined);
    setNotice('');
    const minor = aggregate.trim() === '' ? null : parseAmount(aggregate, 'GBP');
    if (aggregate.trim() !== '' && minor === null) {
      setError(new Error('Enter the aggregation limit in pounds, such as 20.00.'));
      return;
    }
    setBusy(true);
    try {
      const next = await request<GiftAidSettingsView>('PUT', `${FUNDRAISING}/gift-aid/settings`, {
        body: {
          agent_sources: agents
            .split(/[,\n]/)
            .map((s) => s.trim())
            .filter(Boolean),
          aggregate_up_to_minor: minor,
        },
      });
      settings.setData(next);
      setNotice('Gift Aid settings saved.');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const fe = fieldErrors(error);
  const s = settings.data;
  return (
    <section class="panel" aria-labelledby="giftaid-title">
      <h2 id="giftaid-title">Gift Aid</h2>
      <ErrorAlert error={settings.error} />
      {settings.loading && <Loading what="Loading Gift Aid settings" />}
      {s && (
        <form onSubmit={save} noValidate>
          <fieldset disabled={!canEdit}>
            <legend class="visually-hidden">Gift Aid settings</legend>
            <Field
              label="Sources whose platform claims Gift Aid itself"
              hint="Comma-separated gift sources (e.g. justgiving): their gifts are never in the charity’s claims."
              value={agents}
              onValue={setAgents}
              error={Object.entries(fe).find(([k]) => k.startsWith('agent_sources'))?.[1]}
            />
            <Field
              label="Aggregate donations up to (£)"
              hint={`Small donations up to this amount are aggregated in the HMRC schedule: 0 for none, at most £20.00. Now ${money(s.aggregate_up_to_minor, 'GBP')}.`}
              inputMode="decimal"
              value={aggregate}
              onValue={setAggregate}
              error={fe.aggregate_up_to_minor}
            />
            <p class="hint">
              Accounting period ends {s.accounting_period_end.day} {MONTHS[s.accounting_period_end.month - 1]} (set under Organisation).
            </p>
          </fieldset>
          <ErrorAlert error={error} />
          <p role="status" class="notice">
            {notice}
          </p>
          {canEdit ? (
            <button type="submit" disabled={busy}>
              Save Gift Aid settings
            </button>
          ) : (
            <p class="muted">Your role cannot change these.</p>
          )}
        </form>
      )}
    </section>
  );
}

const COUNTRY_OPTIONS = [
  { value: 'GB', label: 'United Kingdom: 07700 900123 is +447700900123' },
  { value: 'AU', label: 'Australia: 0412 345 678 is +61412345678' },
];

function MessagingSettings() {
  const canEdit = useScope('messaging:write');
  const settings = useAsync(() => get<MessagingSettingsView>(`${MESSAGING}/settings`), []);
  const [country, setCountry] = useState('GB');
  const [error, setError] = useState<unknown>(undefined);
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (settings.data) setCountry(settings.data.default_country);
  }, [settings.data]);

  async function save(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setNotice('');
    try {
      const next = await request<MessagingSettingsView>('PATCH', `${MESSAGING}/settings`, {
        body: { default_country: country },
        contentType: 'application/merge-patch+json',
      });
      settings.setData(next);
      setNotice('SMS settings saved.');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const fe = fieldErrors(error);
  const s = settings.data;
  return (
    <section class="panel" aria-labelledby="sms-title">
      <h2 id="sms-title">Text messages (SMS)</h2>
      <ErrorAlert error={settings.error} />
      {settings.loading && <Loading what="Loading SMS settings" />}
      {s && (
        <form onSubmit={save} noValidate>
          <fieldset disabled={!canEdit}>
            <legend class="visually-hidden">SMS settings</legend>
            <SelectField
              label="Numbers written without a country code are"
              value={country}
              onValue={setCountry}
              options={COUNTRY_OPTIONS}
              error={fe.default_country}
              hint={`How contacts, the do-not-contact list and imports read local numbers (an import may say otherwise).${s.updated_at ? ` Last saved ${date(s.updated_at, true)}.` : ''}`}
            />
          </fieldset>
          <ErrorAlert error={error} />
          <p role="status" class="notice">
            {notice}
          </p>
          {canEdit ? (
            <button type="submit" disabled={busy}>
              Save SMS settings
            </button>
          ) : (
            <p class="muted">Your role cannot change these.</p>
          )}
        </form>
      )}
    </section>
  );
}
