// The staff inbox of chat widget conversations (messaging's /v1/conversations): the list in four views (open,
// mine, unassigned, all) with the counters; one conversation, its messages oldest first, replies (with a file),
// assignment and status, read receipts both ways; and a donor's conversations on the donor's page. Everything
// shown follows the live stream (lib/live.ts) without a reload: conversations by id (the newer revision wins),
// messages by id (ordered by their number, never twice).
import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { Badge, ErrorAlert, Loading, Pager, TextAreaField, useCursor, useId, useTitle } from '../components/ui';
import { ApiError, get, messageOf, request, uuid } from '../lib/api';
import { bytes, date } from '../lib/format';
import {
  applyConversation,
  CONVERSATIONS,
  INBOX_VIEWS,
  inView,
  memberLabel,
  mergeMessages,
  mySubject,
  newer,
  refreshSummary,
  useInboxSummary,
  viewCount,
  viewQuery,
  type InboxView,
} from '../lib/inbox';
import { useLive, useLiveStatus } from '../lib/live';
import { useActorNames } from '../lib/messaging';
import { useScope } from '../lib/session';
import { contentTypeOf, UPLOADABLE_TYPES, uploadFile } from '../lib/upload';
import type {
  AttachmentView,
  ConversationPatch,
  ConversationStatus,
  ConversationView,
  MessagesPage,
  MessageView,
  ObjectView,
  Page,
  PostedMessage,
} from '../lib/types';

const STATUS_LABELS: Record<ConversationStatus, string> = { open: 'Open', pending: 'Pending', resolved: 'Resolved' };
const STATUS_TONE: Record<ConversationStatus, 'neutral' | 'good' | 'warn' | 'bad'> = { open: 'good', pending: 'warn', resolved: 'neutral' };

function StatusBadge({ status }: { status: ConversationStatus }) {
  return <Badge tone={STATUS_TONE[status] ?? 'neutral'}>{STATUS_LABELS[status] ?? status}</Badge>;
}

/** The live connection's state, announced when it changes. */
export function LiveState() {
  const status = useLiveStatus();
  const text = status === 'live' ? 'Live' : status === 'reconnecting' ? 'Reconnecting…' : 'Connecting…';
  return (
    <p class={`live-state ${status}`} data-testid="inbox-live" data-state={status} role="status" aria-live="polite">
      <span class="live-dot" aria-hidden="true" />
      {text}
    </p>
  );
}

/** Who a conversation is assigned to, in words (for the list's column). */
function assigneeText(assignee: string | null | undefined, me: string | undefined, actor: (a: string) => string): string {
  if (!assignee) return 'Unassigned';
  if (assignee === me) return 'You';
  return actor(assignee);
}

/** The same as a sentence, for the conversation's page. */
function assignmentLine(assignee: string | null | undefined, me: string | undefined, actor: (a: string) => string): string {
  if (!assignee) return 'Unassigned';
  return `Assigned to ${assignee === me ? 'you' : actor(assignee)}`;
}

function parseView(v: string | undefined): InboxView {
  return INBOX_VIEWS.some((x) => x.view === v) ? (v as InboxView) : 'open';
}

const VIEW_CAPTIONS: Record<InboxView, string> = {
  open: 'Open conversations, newest first',
  mine: 'Conversations assigned to you, newest first',
  unassigned: 'Open conversations assigned to no one, newest first',
  all: 'All conversations, newest first',
};

interface ListState {
  key: string;
  data: ConversationView[];
  next: string | null;
}

export function InboxList() {
  useTitle('Inbox');
  const loc = useLocation();
  const view = parseView(loc.query.view);
  const me = mySubject();
  const actor = useActorNames();
  const summary = useInboxSummary();
  const { cursor, setCursor, atFirst } = useCursor([view]);
  const key = `${view}|${cursor ?? ''}`;
  const [state, setState] = useState<ListState | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [tick, setTick] = useState(0);
  // Conversations the stream brought lately: one that changed while a page was being asked for may be newer than
  // the answer, or missing from it.
  const recent = useRef(new Map<string, ConversationView>());

  useEffect(() => {
    const ctl = new AbortController();
    get<Page<ConversationView>>(CONVERSATIONS, { ...viewQuery(view), limit: 50, cursor }, ctl.signal).then(
      (p) => {
        if (ctl.signal.aborted) return;
        setState((cur) => {
          const held = cur?.key === key ? new Map(cur.data.map((c) => [c.id, c])) : new Map<string, ConversationView>();
          let data = p.data.map((c) => newer(newer(held.get(c.id), recent.current.get(c.id) ?? c), c));
          // Started after the answer was read: newer than anything on the first page.
          if (cursor === undefined) {
            const newest = data[0]?.id ?? '';
            for (const c of recent.current.values()) {
              if (c.id > newest && inView(c, view, me)) data = applyConversation(data, c, true);
            }
          }
          return { key, next: p.next_cursor ?? null, data };
        });
        setError(undefined);
      },
      (e) => {
        if (!ctl.signal.aborted && !(e instanceof DOMException && e.name === 'AbortError')) setError(e);
      },
    );
    return () => ctl.abort();
  }, [key, tick]);

  useLive((e) => {
    if (e.type === 'reset') {
      setTick((t) => t + 1);
      return;
    }
    const c = e.conversation;
    recent.current.set(c.id, newer(recent.current.get(c.id), c));
    if (recent.current.size > 200) recent.current.delete(recent.current.keys().next().value!);
    // A new conversation joins the first page of a view it belongs in; one already listed is updated wherever.
    setState((cur) => cur && { ...cur, data: applyConversation(cur.data, c, cur.key === key && atFirst && inView(c, view, me)) });
  });

  const rows = state?.key === key ? state : undefined;
  return (
    <>
      <div class="page-head">
        <h1>Inbox</h1>
        <LiveState />
      </div>
      <p class="hint-line">Conversations members start from the chat widget on the charity’s website. New messages appear here as they arrive.</p>
      <nav class="view-tabs" aria-label="Inbox views">
        <ul>
          {INBOX_VIEWS.map((v) => (
            <li key={v.view}>
              <a href={v.view === 'open' ? '/inbox' : `/inbox?view=${v.view}`} aria-current={view === v.view ? 'page' : undefined} data-view={v.view}>
                {v.label}
                {summary && (
                  <span class="count" data-testid={`inbox-count-${v.view}`}>
                    {' '}
                    ({viewCount(summary, v.view)})
                  </span>
                )}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <ErrorAlert error={error} />
      {!rows && !error && <Loading what="Loading conversations" />}
      {rows && (
        <>
          <div class="table-wrap">
            <table data-testid="conversation-list" class="conversation-list">
              <caption>{VIEW_CAPTIONS[view]}</caption>
              <thead>
                <tr>
                  <th scope="col">Member</th>
                  <th scope="col">Last message</th>
                  <th scope="col">When</th>
                  <th scope="col">Status</th>
                  <th scope="col">Assigned to</th>
                  <th scope="col" class="num">Unread</th>
                </tr>
              </thead>
              <tbody>
                {rows.data.map((c) => (
                  <tr
                    key={c.id}
                    data-testid="conversation-row"
                    data-conversation-id={c.id}
                    data-status={c.status}
                    data-assignee={c.assignee ?? ''}
                    data-unread={c.unread}
                    class={c.unread > 0 ? 'unread' : undefined}
                  >
                    <td>
                      <a href={`/inbox/${c.id}`}>{memberLabel(c.member)}</a>
                      {!c.member.verified && (
                        <>
                          {' '}
                          <Badge tone="warn">Unverified</Badge>
                        </>
                      )}
                    </td>
                    <td class="preview">
                      {c.last_author === 'staff' && <span class="muted">Staff: </span>}
                      {c.last_preview ?? <span class="muted">No messages</span>}
                    </td>
                    <td>
                      <time dateTime={c.last_message_at ?? c.updated_at}>{date(c.last_message_at ?? c.updated_at)}</time>
                    </td>
                    <td>
                      <StatusBadge status={c.status} />
                    </td>
                    <td>{c.assignee ? assigneeText(c.assignee, me, actor) : <span class="muted">Unassigned</span>}</td>
                    <td class="num">
                      {c.unread > 0 ? (
                        <span class="unread-count" data-testid="conversation-unread">
                          {c.unread}
                          <span class="visually-hidden"> unread</span>
                        </span>
                      ) : (
                        <span class="muted">
                          0<span class="visually-hidden"> unread</span>
                        </span>
                      )}
                    </td>
                  </tr>
                ))}
                {rows.data.length === 0 && (
                  <tr>
                    <td colSpan={6}>{view === 'all' ? 'No conversations yet.' : 'No conversations here.'}</td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
          <Pager next={rows.next} atFirst={atFirst} onNext={() => setCursor(rows.next ?? undefined)} onFirst={() => setCursor(undefined)} />
        </>
      )}
    </>
  );
}

/** Every message after `after`, oldest first (pages of 500; a conversation of more than 5,000 shows its first). */
async function loadMessages(id: string, after: number, signal?: AbortSignal): Promise<MessageView[]> {
  const out: MessageView[] = [];
  let from = after;
  for (;;) {
    const page = await get<MessagesPage>(`${CONVERSATIONS}/${id}/messages`, { after_seq: from, limit: 500 }, signal);
    out.push(...page.data);
    if (!page.more || !page.data.length || out.length >= 5_000) return out;
    from = page.data[page.data.length - 1].seq;
  }
}

const maxSeq = (ms: MessageView[], author?: 'member' | 'staff') =>
  ms.reduce((n, m) => (!author || m.author === author ? Math.max(n, m.seq) : n), 0);

export function ConversationPage({ id }: { id: string }) {
  const canWrite = useScope('messaging:write');
  const canSeeDonors = useScope('fundraising:read');
  const me = mySubject();
  const actor = useActorNames();
  const [conv, setConv] = useState<ConversationView | undefined>(undefined);
  const [messages, setMessages] = useState<MessageView[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [tick, setTick] = useState(0);
  const [visible, setVisible] = useState(typeof document === 'undefined' || !document.hidden);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState('');
  const [actionError, setActionError] = useState<unknown>(undefined);
  const messagesRef = useRef(messages);
  messagesRef.current = messages;
  const loadedRef = useRef(false);
  loadedRef.current = loaded;
  const readSent = useRef(0);
  const threadRef = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  useTitle(conv ? `Conversation with ${memberLabel(conv.member)}` : 'Conversation');

  useEffect(() => {
    setConv(undefined);
    setMessages([]);
    setLoaded(false);
    setError(undefined);
    setNotice('');
    setActionError(undefined);
    readSent.current = 0;
    stickToBottom.current = true;
  }, [id]);

  useEffect(() => {
    const ctl = new AbortController();
    Promise.all([get<ConversationView>(`${CONVERSATIONS}/${id}`, undefined, ctl.signal), loadMessages(id, 0, ctl.signal)]).then(
      ([c, ms]) => {
        if (ctl.signal.aborted) return;
        setConv((cur) => (cur?.id === id ? newer(cur, c) : c));
        setMessages((cur) => mergeMessages(cur.filter((m) => m.conversation_id === id), ms));
        setLoaded(true);
        setError(undefined);
      },
      (e) => {
        if (!ctl.signal.aborted && !(e instanceof DOMException && e.name === 'AbortError')) setError(e);
      },
    );
    return () => ctl.abort();
  }, [id, tick]);

  useEffect(() => {
    const f = () => setVisible(!document.hidden);
    document.addEventListener('visibilitychange', f);
    return () => document.removeEventListener('visibilitychange', f);
  }, []);

  useLive((e) => {
    if (e.type === 'reset') {
      setTick((t) => t + 1);
      return;
    }
    if (e.conversation.id !== id) return;
    setConv((cur) => newer(cur, e.conversation));
    if (e.type === 'message') {
      const before = maxSeq(messagesRef.current);
      setMessages((cur) => mergeMessages(cur, [e.message]));
      // A gap (a frame this page missed): fetch what lies between.
      if (loadedRef.current && e.message.seq > before + 1) {
        loadMessages(id, before).then(
          (ms) => setMessages((cur) => mergeMessages(cur, ms)),
          () => undefined,
        );
      }
    }
  });

  // Read: the member's messages shown, when the page is in view (and again as new ones arrive).
  useEffect(() => {
    if (!conv || !loaded || !visible || !canWrite) return;
    const newestMember = maxSeq(messages, 'member');
    if (newestMember <= conv.staff_read_seq || newestMember <= readSent.current) return;
    const seq = maxSeq(messages);
    readSent.current = seq;
    request<ConversationView>('POST', `${CONVERSATIONS}/${id}/read`, { body: { seq } }).then(
      (c) => {
        setConv((cur) => newer(cur, c));
        refreshSummary(0);
      },
      () => {
        // Tried again with the next change.
        readSent.current = 0;
      },
    );
  }, [conv, messages, loaded, visible, canWrite, id]);

  // The newest message in view, unless the reader has scrolled up to read older ones.
  useEffect(() => {
    const el = threadRef.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages, loaded]);

  async function patch(p: ConversationPatch, done: string) {
    setBusy(true);
    setActionError(undefined);
    setNotice('');
    try {
      const c = await request<ConversationView>('PATCH', `${CONVERSATIONS}/${id}`, { body: p, contentType: 'application/merge-patch+json' });
      setConv((cur) => newer(cur, c));
      setNotice(done);
      refreshSummary(0);
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(false);
    }
  }

  if (error && !conv) {
    return (
      <>
        <h1>Conversation</h1>
        <ErrorAlert error={error} />
        <p>
          <a href="/inbox">Back to the inbox</a>
        </p>
      </>
    );
  }
  if (!conv || !loaded) return <Loading what="Loading the conversation" />;

  const member = conv.member;
  const name = memberLabel(member);
  const newestStaff = [...messages].reverse().find((m) => m.author === 'staff');
  const authorName = (m: MessageView) => {
    if (m.author === 'member') return name;
    if (m.author_subject && m.author_subject === me) return 'You';
    return m.author_subject ? actor(m.author_subject) : 'Staff';
  };
  return (
    <>
      <p class="breadcrumb">
        <a href="/inbox">Inbox</a>
      </p>
      <div class="page-head">
        <div>
          <h1 data-testid="conversation-title">{name}</h1>
          <p class="contact-sub">
            <span data-testid="conversation-status">
              <StatusBadge status={conv.status} />
            </span>
            <span data-testid="conversation-assignee">{assignmentLine(conv.assignee, me, actor)}</span>
            {!member.verified && <Badge tone="warn">Unverified</Badge>}
          </p>
        </div>
        <LiveState />
      </div>
      <ErrorAlert error={error} />
      <div class="conversation-layout">
        <section class="panel thread-panel" aria-labelledby="thread-title">
          <h2 id="thread-title">Messages</h2>
          <div
            class="thread"
            role="log"
            aria-label={`Messages with ${name}`}
            tabIndex={0}
            ref={threadRef}
            onScroll={(e) => {
              const el = e.currentTarget as HTMLDivElement;
              stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
              // Read by a picture that finishes loading (and makes the thread taller).
              el.dataset.stick = stickToBottom.current ? 'yes' : 'no';
            }}
          >
            {messages.length === 0 ? (
              <p class="muted">No messages yet.</p>
            ) : (
              <ol class="messages">
                {messages.map((m) => (
                  <li
                    key={m.id}
                    class={`message ${m.author}`}
                    data-testid="inbox-message"
                    data-author={m.author}
                    data-seq={m.seq}
                    data-message-id={m.id}
                  >
                    <p class="message-meta">
                      <span class="message-author">{authorName(m)}</span>{' '}
                      <time dateTime={m.created_at}>{date(m.created_at)}</time>
                    </p>
                    {m.body && <p class="message-body">{m.body}</p>}
                    {m.attachments.length > 0 && (
                      <ul class="attachments" aria-label="Attachments">
                        {m.attachments.map((a) => (
                          <li key={a.object_id}>
                            <Attachment conversationId={conv.id} attachment={a} />
                          </li>
                        ))}
                      </ul>
                    )}
                    {m === newestStaff && (
                      <p class="receipt" data-testid="read-receipt" data-seen={conv.member_read_seq >= m.seq ? 'true' : 'false'}>
                        {conv.member_read_seq >= m.seq ? 'Seen' : 'Not seen yet'}
                      </p>
                    )}
                  </li>
                ))}
              </ol>
            )}
          </div>
          {canWrite && (
            <ReplyBox
              conversationId={conv.id}
              onPosted={(p) => {
                setConv((cur) => newer(cur, p.conversation));
                stickToBottom.current = true;
                setMessages((cur) => mergeMessages(cur, [p.message]));
                refreshSummary();
              }}
            />
          )}
        </section>

        <div class="conversation-side">
          <section class="panel" aria-labelledby="member-title">
            <h2 id="member-title">Member</h2>
            <dl class="facts" data-testid="conversation-member">
              <dt>Name</dt>
              <dd>{member.name || '—'}</dd>
              <dt>Email</dt>
              <dd data-testid="member-email">{member.email ? <a href={`mailto:${member.email}`}>{member.email}</a> : '—'}</dd>
              <dt>Identifier</dt>
              <dd class="identifier">{member.identifier}</dd>
              <dt>Identity</dt>
              <dd>{member.verified ? 'Verified by the website' : 'Unverified: the website did not vouch for this person'}</dd>
              <dt>Donor</dt>
              <dd>
                {member.donor_id ? (
                  canSeeDonors ? (
                    <a href={`/donors/${member.donor_id}`} data-testid="member-donor-link">
                      The donor’s record
                    </a>
                  ) : (
                    'Linked to a donor'
                  )
                ) : (
                  <span class="muted">No donor has this email</span>
                )}
              </dd>
              <dt>Started</dt>
              <dd>{date(conv.created_at)}</dd>
            </dl>
          </section>
          {canWrite && (
            <section class="panel" aria-labelledby="actions-title">
              <h2 id="actions-title">Handling</h2>
              <div class="actions stacked">
                {conv.assignee !== me && me && (
                  <button type="button" class="secondary" disabled={busy} onClick={() => void patch({ assignee: me }, 'Assigned to you.')}>
                    Assign to me
                  </button>
                )}
                {conv.assignee && (
                  <button type="button" class="secondary" disabled={busy} onClick={() => void patch({ assignee: null }, 'Unassigned.')}>
                    Unassign
                  </button>
                )}
                {conv.status !== 'resolved' && (
                  <button type="button" disabled={busy} onClick={() => void patch({ status: 'resolved' }, 'Resolved.')}>
                    Resolve
                  </button>
                )}
                {conv.status !== 'open' && (
                  <button type="button" class="secondary" disabled={busy} onClick={() => void patch({ status: 'open' }, 'Reopened.')}>
                    Reopen
                  </button>
                )}
                {conv.status !== 'pending' && (
                  <button type="button" class="secondary" disabled={busy} onClick={() => void patch({ status: 'pending' }, 'Marked pending.')}>
                    Mark pending
                  </button>
                )}
              </div>
              <ErrorAlert error={actionError} />
              <p role="status" class="notice" data-testid="conversation-notice">
                {notice}
              </p>
            </section>
          )}
        </div>
      </div>
    </>
  );
}

/** A file on a message: an image shown, anything else linked; its address asked for when shown. */
function Attachment({ conversationId, attachment: a }: { conversationId: string; attachment: AttachmentView }) {
  const [url, setUrl] = useState<string | undefined>(undefined);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    get<{ url: string }>(`${CONVERSATIONS}/${conversationId}/attachments/${a.object_id}`).then(
      (r) => live && setUrl(r.url),
      () => live && setFailed(true),
    );
    return () => {
      live = false;
    };
  }, [conversationId, a.object_id]);
  const label = `${a.file_name} (${bytes(a.size_bytes)})`;
  if (failed) return <span class="attachment muted">{label}: not available</span>;
  if (!url) return <span class="attachment muted">{label}</span>;
  if (a.content_type.startsWith('image/')) {
    return (
      <a class="attachment image" href={url} target="_blank" rel="noopener noreferrer">
        <img
          src={url}
          alt={a.file_name}
          onLoad={(e) => {
            // Still at the newest message once the picture has made the thread taller.
            const thread = (e.currentTarget as HTMLElement).closest<HTMLElement>('.thread');
            if (thread && thread.dataset.stick !== 'no') thread.scrollTop = thread.scrollHeight;
          }}
        />
        <span class="small">{label}</span>
      </a>
    );
  }
  return (
    <a class="attachment" href={url} target="_blank" rel="noopener noreferrer" download={a.file_name}>
      {label}
    </a>
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A failure worth sending again with the same id: the network, or the gateway without an answer. */
function isTransient(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 0 || e.status === 502 || e.status === 503 || e.status === 504);
}

function ReplyBox({ conversationId, onPosted }: { conversationId: string; onPosted: (p: PostedMessage) => void }) {
  const [draft, setDraft] = useState('');
  const [file, setFile] = useState<ObjectView | null>(null);
  const [uploading, setUploading] = useState('');
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [fieldError, setFieldError] = useState<string | undefined>(undefined);
  // One id per reply: a send retried after a network failure makes no second message.
  const clientId = useRef(uuid());
  const textRef = useRef<HTMLTextAreaElement>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const fileId = useId('attach');

  useEffect(() => {
    setDraft('');
    setFile(null);
    setError(undefined);
    setFieldError(undefined);
    clientId.current = uuid();
  }, [conversationId]);

  async function pick(f: File | null) {
    setError(undefined);
    setFile(null);
    if (!f) return;
    try {
      const obj = await uploadFile(f, { contentType: contentTypeOf(f), purpose: 'conversation_attachment', ownerReference: conversationId }, setUploading);
      setFile(obj);
    } catch (e) {
      setError(e);
      if (fileRef.current) fileRef.current.value = '';
    } finally {
      setUploading('');
    }
  }

  async function send() {
    if (sending || uploading) return;
    // What the box holds now (a key pressed straight after typing may come before the state has caught up).
    const body = (textRef.current?.value ?? draft).trim();
    if (!body && !file) {
      setFieldError('Write a reply, or attach a file.');
      textRef.current?.focus();
      return;
    }
    setFieldError(undefined);
    setError(undefined);
    setSending(true);
    const payload: Record<string, unknown> = { body, client_message_id: clientId.current };
    if (file) payload.attachments = [file.id];
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const posted = await request<PostedMessage>('POST', `${CONVERSATIONS}/${conversationId}/messages`, { body: payload });
          onPosted(posted);
          setDraft('');
          setFile(null);
          if (fileRef.current) fileRef.current.value = '';
          clientId.current = uuid();
          break;
        } catch (e) {
          if (isTransient(e) && attempt < 4) {
            await sleep(500 * 2 ** attempt);
            continue;
          }
          // Kept: sending again uses the same id.
          setError(e);
          break;
        }
      }
    } finally {
      setSending(false);
      setTimeout(() => textRef.current?.focus(), 0);
    }
  }

  return (
    <form
      class="reply-box"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      <TextAreaField
        label="Reply"
        hint="Enter sends; Shift+Enter starts a new line."
        value={draft}
        onValue={(v) => {
          setDraft(v);
          if (fieldError) setFieldError(undefined);
        }}
        error={fieldError}
        textareaRef={textRef}
        rows={3}
        maxLength={4000}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && !e.isComposing) {
            e.preventDefault();
            void send();
          }
        }}
      />
      <div class="reply-tools">
        <div class="field compact">
          <label for={fileId}>Attach a file</label>
          <input
            id={fileId}
            ref={fileRef}
            type="file"
            accept={UPLOADABLE_TYPES}
            disabled={sending || !!uploading}
            onChange={(e) => void pick((e.currentTarget as HTMLInputElement).files?.[0] ?? null)}
          />
        </div>
        <button type="submit" disabled={sending || !!uploading}>
          {sending ? 'Sending…' : 'Send'}
        </button>
      </div>
      <p role="status" class="small muted" data-testid="reply-attachment">
        {uploading || (file ? `Attached: ${file.filename} (${bytes(file.size_bytes)}).` : '')}
      </p>
      {file && !uploading && (
        <button
          type="button"
          class="link"
          onClick={() => {
            setFile(null);
            if (fileRef.current) fileRef.current.value = '';
          }}
        >
          Take the file off
        </button>
      )}
      <ErrorAlert error={error}>{error !== undefined && isTransient(error) && <p>Your reply is kept: press Send to try again.</p>}</ErrorAlert>
    </form>
  );
}

/** A donor's conversations (members whose email is the donor's), for the donor's page; nothing without the scope. */
export function DonorConversations({ donorId }: { donorId: string }) {
  const canRead = useScope('messaging:read');
  const [data, setData] = useState<ConversationView[] | undefined>(undefined);
  const [hidden, setHidden] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    if (!canRead) return;
    const ctl = new AbortController();
    setData(undefined);
    setHidden(false);
    setError(undefined);
    get<Page<ConversationView>>(CONVERSATIONS, { donor_id: donorId, limit: 50 }, ctl.signal).then(
      (p) => !ctl.signal.aborted && setData(p.data),
      (e) => {
        if (ctl.signal.aborted) return;
        if (e instanceof ApiError && (e.status === 403 || e.status === 401)) setHidden(true);
        else setError(e);
      },
    );
    return () => ctl.abort();
  }, [donorId, canRead]);
  useLive((e) => {
    if (e.type === 'reset' || e.conversation.member.donor_id !== donorId) return;
    setData((cur) => cur && applyConversation(cur, e.conversation, true));
  }, canRead && !hidden);
  if (!canRead || hidden) return null;
  return (
    <section class="panel" aria-labelledby="donor-conversations-title" data-testid="donor-conversations">
      <h2 id="donor-conversations-title">Conversations</h2>
      {error !== undefined && (
        <div class="alert error" role="alert">
          <p>The conversations could not be loaded: {messageOf(error)}</p>
        </div>
      )}
      {!data && error === undefined && <Loading what="Loading conversations" />}
      {data && data.length === 0 && <p>No conversations from the chat widget with this donor’s email.</p>}
      {data && data.length > 0 && (
        <div class="table-wrap">
          <table aria-labelledby="donor-conversations-title">
            <thead>
              <tr>
                <th scope="col">Last message</th>
                <th scope="col">Status</th>
                <th scope="col">When</th>
                <th scope="col">Member</th>
              </tr>
            </thead>
            <tbody>
              {data.map((c) => (
                <tr key={c.id} data-testid="donor-conversation" data-conversation-id={c.id}>
                  <td>
                    <a href={`/inbox/${c.id}`}>{c.last_preview || 'Open the conversation'}</a>
                  </td>
                  <td>
                    <StatusBadge status={c.status} />
                  </td>
                  <td>{date(c.last_message_at ?? c.updated_at)}</td>
                  <td>{memberLabel(c.member)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
