// What the SMS pages share: names and words for messaging's documents (contacts, the do-not-contact list, contact
// imports), and who did what (messaging records `staff:<id>`, `api_key:<id>` or `sms`).
import { useEffect, useState } from 'preact/hooks';
import { get, IDENTITY } from './api';
import { hasScope } from './session';
import type { AttributeValue, ContactImportOutcome, ContactView, DoNotContactReason, Page, StaffView } from './types';

/** A contact's name, or its number when it has none. */
export function contactName(c: Pick<ContactView, 'first_name' | 'last_name' | 'phone'>): string {
  return [c.first_name, c.last_name].filter(Boolean).join(' ') || c.phone;
}

/** Tags typed as "gala 2025, volunteers": each trimmed, empty ones dropped. */
export function parseTags(text: string): string[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

/** An optional text field as sent: trimmed, or null when empty. */
export function blank(s: string): string | null {
  const t = s.trim();
  return t ? t : null;
}

/** Why a number is on the do-not-contact list, in words. */
export const REASON_TEXT: Record<DoNotContactReason, string> = {
  stop_keyword: 'The person texted STOP (or a word like it)',
  provider_opt_out: 'Twilio reported the number unsubscribed',
  staff: 'Added by staff',
};

export function reasonText(reason: string): string {
  return REASON_TEXT[reason as DoNotContactReason] ?? reason;
}

/** What a row of a contact import does, in words. */
export const OUTCOME_LABELS: Record<ContactImportOutcome, string> = {
  create: 'New contact',
  update: 'Updates a contact',
  unchanged: 'Contact unchanged',
  duplicate_in_file: 'Duplicate in the file',
  invalid: 'Invalid row',
  invalid_number: 'Invalid number',
  do_not_contact: 'On the do-not-contact list',
};

export function outcomeLabel(outcome: string): string {
  return OUTCOME_LABELS[outcome as ContactImportOutcome] ?? outcome;
}

export const OUTCOME_TONE: Record<ContactImportOutcome, 'neutral' | 'good' | 'warn' | 'bad'> = {
  create: 'good',
  update: 'good',
  unchanged: 'neutral',
  duplicate_in_file: 'warn',
  invalid: 'bad',
  invalid_number: 'bad',
  do_not_contact: 'warn',
};

/** An attribute's value as shown. */
export function attributeText(v: AttributeValue): string {
  if (typeof v === 'boolean') return v ? 'Yes' : 'No';
  return String(v);
}

/**
 * Who an actor is (`staff:<id>` → the member's name when the member may read the staff list; `api_key:<id>` → "An
 * API key"; `sms` → "A text reply").
 */
export function useActorNames(): (actor: string) => string {
  const [names, setNames] = useState<Map<string, string>>(new Map());
  const canRead = hasScope('identity:read');
  useEffect(() => {
    if (!canRead) return;
    let live = true;
    get<Page<StaffView>>(`${IDENTITY}/staff`, { limit: 500 })
      .then((p) => live && setNames(new Map(p.data.map((s) => [s.id, s.name]))))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [canRead]);
  return (actor: string) => {
    const [kind, id] = actor.split(':', 2);
    if (kind === 'staff') return names.get(id ?? '') ?? 'A member of staff';
    if (kind === 'api_key') return 'An API key';
    if (actor === 'sms') return 'A text reply';
    return actor;
  };
}

/** Millionths of a currency as money: `$0.04` for 40,000 USD micros, `$0.0075` for 7,500. */
export function microsMoney(micros: number | null | undefined, currency = 'USD'): string {
  if (micros === null || micros === undefined) return '—';
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: 4 }).format(micros / 1_000_000);
  } catch {
    return `${(micros / 1_000_000).toFixed(4)} ${currency}`;
  }
}
