// Money is integer minor units plus an ISO 4217 code; shown with Intl.NumberFormat, never as floats in transit.

const LOCALE = 'en-GB';
const formatters = new Map<string, Intl.NumberFormat>();

function formatter(currency: string): Intl.NumberFormat {
  let f = formatters.get(currency);
  if (!f) {
    f = new Intl.NumberFormat(LOCALE, { style: 'currency', currency });
    formatters.set(currency, f);
  }
  return f;
}

/** Decimal places of a currency's minor unit (2 for GBP, 0 for JPY). */
export function minorDigits(currency: string): number {
  try {
    return formatter(currency).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

export function money(minor: number | null | undefined, currency: string): string {
  if (minor === null || minor === undefined) return '—';
  const digits = minorDigits(currency);
  try {
    return formatter(currency).format(minor / 10 ** digits);
  } catch {
    return `${(minor / 10 ** digits).toFixed(digits)} ${currency}`;
  }
}

/** Major units as a plain number (for charts' axes and CSV files). */
export function major(minor: number, currency: string): number {
  const digits = minorDigits(currency);
  return Number((minor / 10 ** digits).toFixed(digits));
}

/**
 * Reads an amount typed by a person ("25", "25.50", "£1,234.5") as minor units of `currency`.
 * Returns null when it is not an amount. Exact: no floating point arithmetic.
 */
export function parseAmount(text: string, currency: string): number | null {
  const digits = minorDigits(currency);
  const cleaned = text.replace(/[\s£$€¥,]/g, '').replace(/^(GBP|EUR|USD)/i, '');
  const m = /^(\d+)(?:\.(\d*))?$/.exec(cleaned);
  if (!m) return null;
  const frac = m[2] ?? '';
  if (frac.length > digits) return null;
  const minor = Number(m[1]) * 10 ** digits + Number((frac + '0'.repeat(digits)).slice(0, digits) || '0');
  return Number.isSafeInteger(minor) ? minor : null;
}

export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : new Intl.NumberFormat(LOCALE).format(n);
}

/** `n` and the noun, singular for one: `counted(1, 'gift')` is "1 gift", `counted(2, 'gift')` "2 gifts". */
export function counted(n: number, singular: string, plural = `${singular}s`): string {
  return `${count(n)} ${n === 1 ? singular : plural}`;
}

// The tenant's time zone (identity's `GET /v1/tenant` `time_zone`, an IANA name): timestamps are shown, and "today"
// reckoned, in it. Until it is known (or if it cannot be read), the browser's own zone.
let tenantZone: string | undefined;

/** Sets the zone timestamps are shown in; an unknown name is ignored. */
export function setTimeZone(zone: string | null | undefined) {
  if (!zone) {
    tenantZone = undefined;
    return;
  }
  try {
    new Intl.DateTimeFormat(LOCALE, { timeZone: zone });
    tenantZone = zone;
  } catch {
    tenantZone = undefined;
  }
}

/** The zone timestamps are shown in: the tenant's, else the browser's. */
export function timeZone(): string {
  return tenantZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** The time zones this browser knows (IANA names), for a picker. */
export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  try {
    const zones = intl.supportedValuesOf?.('timeZone') ?? [];
    if (zones.length) return zones.includes('UTC') ? zones : [...zones, 'UTC'];
  } catch {
    // An older browser: the common ones.
  }
  return ['Europe/London', 'Europe/Dublin', 'Europe/Paris', 'America/New_York', 'America/Toronto', 'Australia/Sydney', 'Pacific/Auckland', 'UTC'];
}

/**
 * A date (`YYYY-MM-DD`, a calendar day, shown as is) or a timestamp (shown in the tenant's time zone with its
 * abbreviation when `withZone`).
 */
export function date(iso: string | null | undefined, withZone = false): string {
  if (!iso) return '—';
  const d = new Date(iso.length === 10 ? `${iso}T00:00:00Z` : iso);
  if (Number.isNaN(d.getTime())) return iso;
  return iso.length === 10
    ? d.toLocaleDateString(LOCALE, { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' })
    : d.toLocaleString(LOCALE, {
        day: 'numeric',
        month: 'short',
        year: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
        timeZone: timeZone(),
        timeZoneName: withZone ? 'short' : undefined,
      });
}

/** Today as an ISO date in the tenant's time zone (the browser's until it is known). */
export function today(): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: timeZone(), year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(new Date());
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

export function addYears(iso: string, years: number, days = 0): string {
  const d = new Date(`${iso}T00:00:00Z`);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

export const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** The fiscal year (named by the calendar year it starts in) that `iso` (a date or YYYY-MM) falls in. */
export function fiscalYearOf(iso: string, startMonth: number): number {
  const y = Number(iso.slice(0, 4));
  const m = Number(iso.slice(5, 7));
  return m >= startMonth ? y : y - 1;
}

/** The twelve `YYYY-MM` months of a fiscal year, in order. */
export function fiscalMonths(fy: number, startMonth: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < 12; i++) {
    const m0 = startMonth - 1 + i;
    const y = fy + Math.floor(m0 / 12);
    out.push(`${y}-${String((m0 % 12) + 1).padStart(2, '0')}`);
  }
  return out;
}

/** "FY 2025/26" for a fiscal year starting in a month other than January, else "2025". */
export function fyLabel(fy: number, startMonth: number): string {
  return startMonth === 1 ? String(fy) : `FY ${fy}/${String((fy + 1) % 100).padStart(2, '0')}`;
}

export function donorName(d: { title?: string | null; first_name?: string | null; last_name: string }): string {
  return [d.title, d.first_name, d.last_name].filter(Boolean).join(' ');
}

export function humanize(code: string): string {
  const s = code.replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Formats an amount in major units (a chart's axis value) as money, without pennies when whole. */
export function moneyMajor(v: number | string, currency: string): string {
  const digits = minorDigits(currency);
  const s = money(Math.round(Number(v) * 10 ** digits), currency);
  return Number(v) % 1 === 0 ? s.replace(/\.00$/, '') : s;
}
