// What the inbox pages and the nav's badge share: names for members and authors, applying live updates
// idempotently (conversations by id, the newer revision winning; messages by id, ordered by their number), the
// caller's own subject, and the inbox's counters, kept live.
import { useEffect, useState } from 'preact/hooks';
import { get, MESSAGING } from './api';
import { subscribeLive } from './live';
import { session } from './session';
import type { ConversationMember, ConversationSummary, ConversationView, MessageView } from './types';

export const CONVERSATIONS = `${MESSAGING}/conversations`;

/** The inbox's views: the list's filters. */
export type InboxView = 'open' | 'mine' | 'unassigned' | 'all';

export const INBOX_VIEWS: { view: InboxView; label: string }[] = [
  { view: 'open', label: 'Open' },
  { view: 'mine', label: 'Mine' },
  { view: 'unassigned', label: 'Unassigned' },
  { view: 'all', label: 'All' },
];

/** The list's query for a view. */
export function viewQuery(view: InboxView): Record<string, string> {
  switch (view) {
    case 'open':
      return { status: 'open' };
    case 'mine':
      return { assignee: 'me' };
    case 'unassigned':
      return { assignee: 'none', status: 'open' };
    default:
      return {};
  }
}

/** Whether a conversation belongs in a view (for one that arrives live). */
export function inView(c: ConversationView, view: InboxView, me: string | undefined): boolean {
  switch (view) {
    case 'open':
      return c.status === 'open';
    case 'mine':
      return !!me && c.assignee === me;
    case 'unassigned':
      return !c.assignee && c.status === 'open';
    default:
      return true;
  }
}

/** The view's count from the summary. */
export function viewCount(s: ConversationSummary, view: InboxView): number {
  switch (view) {
    case 'open':
      return s.open;
    case 'mine':
      return s.mine_open;
    case 'unassigned':
      return s.unassigned_open;
    default:
      return s.open + s.pending + s.resolved;
  }
}

/** A member as shown: their name, else their email, else the identifier the host site gave. */
export function memberLabel(m: Pick<ConversationMember, 'name' | 'email' | 'identifier'>): string {
  return m.name?.trim() || m.email?.trim() || m.identifier;
}

/** The caller's own subject (`staff:<id>`): the `sub` of the access token, else made from the staff id. */
export function mySubject(): string | undefined {
  const s = session();
  if (s.status !== 'signed-in') return undefined;
  try {
    const part = s.token.split('.')[1] ?? '';
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    if (typeof sub === 'string' && sub) return sub;
  } catch {
    // Not a JWT we can read: fall back on the staff id.
  }
  return `staff:${s.staff.id}`;
}

/** `incoming` when it is newer than `current` (or there is no current), else `current`. */
export function newer(current: ConversationView | undefined, incoming: ConversationView): ConversationView {
  return !current || incoming.revision > current.revision ? incoming : current;
}

/** A list of conversations with `c` applied: replaced when newer; added (in id order, newest first) when `add`. */
export function applyConversation(list: ConversationView[], c: ConversationView, add: boolean): ConversationView[] {
  const i = list.findIndex((x) => x.id === c.id);
  if (i >= 0) {
    const next = newer(list[i], c);
    if (next === list[i]) return list;
    const copy = list.slice();
    copy[i] = next;
    return copy;
  }
  if (!add) return list;
  // Conversation ids are v7 UUIDs: by creation, as the service lists them (newest first).
  return [...list, c].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** Messages with `incoming` merged: by id (never twice), ordered by their number in the conversation. */
export function mergeMessages(current: MessageView[], incoming: MessageView[]): MessageView[] {
  if (!incoming.length) return current;
  const byId = new Map(current.map((m) => [m.id, m]));
  let changed = false;
  for (const m of incoming) {
    if (!byId.has(m.id)) {
      byId.set(m.id, m);
      changed = true;
    }
  }
  if (!changed) return current;
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

// ---- the counters (GET /conversations/summary), one copy for the whole console ----

let summary: ConversationSummary | undefined;
const summaryListeners = new Set<(s: ConversationSummary | undefined) => void>();
let inFlight = false;
let again = false;
let refetchTimer: ReturnType<typeof setTimeout> | undefined;
let liveUnsubscribe: (() => void) | undefined;
let summaryFor: string | undefined;

async function fetchSummary() {
  if (inFlight) {
    again = true;
    return;
  }
  inFlight = true;
  try {
    const s = await get<ConversationSummary>(`${CONVERSATIONS}/summary`);
    summary = s;
    for (const l of summaryListeners) l(s);
  } catch {
    // Kept as it was; the next change asks again.
  } finally {
    inFlight = false;
    if (again) {
      again = false;
      void fetchSummary();
    }
  }
}

/** Asks for the counters again shortly (changes that come together are asked about once). */
export function refreshSummary(delay = 120) {
  clearTimeout(refetchTimer);
  refetchTimer = setTimeout(() => void fetchSummary(), delay);
}

/** The inbox's counters, kept live while mounted (`enabled` false: none, and nothing is asked). */
export function useInboxSummary(enabled = true): ConversationSummary | undefined {
  const [s, setS] = useState<ConversationSummary | undefined>(enabled ? summary : undefined);
  useEffect(() => {
    if (!enabled) return;
    summaryListeners.add(setS);
    const st = session();
    const token = st.status === 'signed-in' ? st.staff.id : undefined;
    // Another member signed in (or none was): forget the last one's counters.
    if (summaryFor !== token) {
      summaryFor = token;
      summary = undefined;
      setS(undefined);
    } else {
      setS(summary);
    }
    if (summaryListeners.size === 1) {
      liveUnsubscribe = subscribeLive(() => refreshSummary());
      void fetchSummary();
    } else if (!summary) {
      void fetchSummary();
    }
    return () => {
      summaryListeners.delete(setS);
      if (summaryListeners.size === 0) {
        liveUnsubscribe?.();
        liveUnsubscribe = undefined;
      }
    };
  }, [enabled]);
  return enabled ? s : undefined;
}
