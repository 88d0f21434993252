// SMS campaigns (messaging's /v1/campaigns): the tenant's spend against its budgets, the list and a form for a new
// draft (to a segment, or to tags); one campaign, what queueing it found, its report (with a chart) and jobs by
// status, and queueing, pausing, resuming or cancelling it. Polled every 2 s while it sends.
import { Fragment } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { ChartPanel } from '../components/Chart';
import { KillSwitch } from '../components/KillSwitch';
import { Badge, ErrorAlert, Field, Loading, Pager, SelectField, useAsync, useCursor, useTitle } from '../components/ui';
import { fieldErrors, get, getAll, MESSAGING, request, uuid } from '../lib/api';
import { count, date, humanize } from '../lib/format';
import { blank, microsMoney, parseTags } from '../lib/messaging';
import { useScope } from '../lib/session';
import type { ChartOption } from '../lib/chart-types';
import type { CampaignInput, CampaignReport, CampaignStatus, CampaignView, MessagingSettingsView, Page, SegmentView, SpendView, TemplateView } from '../lib/types';

const STATUS_TONE: Record<CampaignStatus, 'neutral' | 'good' | 'warn' | 'bad'> = {
  draft: 'neutral',
  scheduled: 'good',
  running: 'good',
  paused: 'warn',
  completed: 'good',
  cancelled: 'bad',
};

const JOB_STATUSES = ['queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'blocked', 'cancelled'];

function StatusBadge({ status }: { status: string }) {
  return (
    <span data-testid="campaign-status" data-status={status}>
      <Badge tone={STATUS_TONE[status as CampaignStatus] ?? 'neutral'}>{humanize(status)}</Badge>
    </span>
  );
}

function focusFirstInvalid(form: HTMLElement | null) {
  setTimeout(() => form?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
}

export function CampaignList() {
  useTitle('Campaigns');
  const canWrite = useScope('messaging:write');
  const { cursor, setCursor, atFirst } = useCursor([]);
  const list = useAsync((signal) => get<Page<CampaignView>>(`${MESSAGING}/campaigns`, { limit: 50, cursor }, signal), [cursor]);
  return (
    <>
      <div class="page-head">
        <h1>Campaigns</h1>
        <div class="actions">
          <a class="button secondary" href="/templates">
            Templates
          </a>
        </div>
      </div>
      <p class="hint-line">A campaign texts a template to a segment’s contacts, or to the contacts with its tags (or everyone), never to a number on the do-not-contact list.</p>
      <KillSwitch />
      <Budgets />
      {canWrite && <NewCampaign onCreated={() => (atFirst ? list.reload() : setCursor(undefined))} />}
      <section class="panel" aria-labelledby="campaigns-title">
        <h2 id="campaigns-title">All campaigns</h2>
        <ErrorAlert error={list.error} />
        {list.loading && <Loading what="Loading campaigns" />}
        {list.data && (
          <>
            <div class="table-wrap">
              <table data-testid="campaign-list">
                <caption>Campaigns, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Status</th>
                    <th scope="col" class="num">
                      Queued jobs
                    </th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.data.map((c) => (
                    <tr key={c.id} data-id={c.id}>
                      <td>
                        <a href={`/campaigns/${c.id}`}>{c.name}</a>
                      </td>
                      <td>
                        <StatusBadge status={c.status} />
                      </td>
                      <td class="num">{typeof c.queue_summary?.jobs === 'number' ? count(c.queue_summary.jobs) : '—'}</td>
                      <td>{date(c.created_at)}</td>
                    </tr>
                  ))}
                  {list.data.data.length === 0 && (
                    <tr>
                      <td colSpan={4}>No campaigns yet.</td>
                    </tr>
                  )}
                </tbody>
              </table>
            </div>
            <Pager next={list.data.next_cursor} atFirst={atFirst} onNext={() => setCursor(list.data!.next_cursor ?? undefined)} onFirst={() => setCursor(undefined)} />
          </>
        )}
      </section>
    </>
  );
}

/** The tenant's spend today and this month against its budgets; staff who may write change the budgets here. */
function Budgets() {
  const canWrite = useScope('messaging:write');
  const spend = useAsync((signal) => get<SpendView>(`${MESSAGING}/spend`, undefined, signal), []);
  const [daily, setDaily] = useState('');
  const [monthly, setMonthly] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);
  const sp = spend.data;
  useEffect(() => {
    if (!sp) return;
    setDaily(String(sp.day.budget_micros / 1_000_000));
    setMonthly(String(sp.month.budget_micros / 1_000_000));
  }, [sp?.day.budget_micros, sp?.month.budget_micros]);

  async function save(e: Event) {
    e.preventDefault();
    if (busy) return;
    const micros = (raw: string) => (raw.trim() && Number.isFinite(Number(raw)) ? Math.round(Number(raw) * 1_000_000) : NaN);
    const d = micros(daily);
    const m = micros(monthly);
    const bad: Record<string, string> = {};
    if (Number.isNaN(d) || d < 0) bad.daily_budget_micros = 'Enter the daily budget in dollars, e.g. 100.';
    if (Number.isNaN(m) || m < 0) bad.monthly_budget_micros = 'Enter the monthly budget in dollars, e.g. 2000.';
    setErrors(bad);
    setNotice('');
    if (Object.keys(bad).length) return;
    setBusy(true);
    setError(undefined);
    try {
      await request<MessagingSettingsView>('PATCH', `${MESSAGING}/settings`, {
        body: { daily_budget_micros: d, monthly_budget_micros: m },
        contentType: 'application/merge-patch+json',
      });
      spend.setData(await get<SpendView>(`${MESSAGING}/spend`));
      setNotice('Budgets saved.');
    } catch (err) {
      setErrors(fieldErrors(err));
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const meter = (label: string, testid: string, w: SpendView['day']) => (
    <div class="budget" data-testid={testid} data-spent={w.spent_micros} data-budget={w.budget_micros}>
      <p>
        <strong>{label}:</strong> {microsMoney(w.spent_micros, sp?.currency)} spent of {microsMoney(w.budget_micros, sp?.currency)} ({count(w.segments)} segments
        {w.segment_limit !== null && w.segment_limit !== undefined ? ` of ${count(w.segment_limit)}` : ''})
      </p>
      <meter min={0} max={Math.max(w.budget_micros, 1)} value={Math.min(w.spent_micros, w.budget_micros)} aria-label={`${label}: share of the budget spent`} />
    </div>
  );
  return (
    <section class="panel" aria-labelledby="budgets-title">
      <h2 id="budgets-title">Budgets and spend</h2>
      <ErrorAlert error={spend.error} />
      {sp && (
        <>
          {meter('Today', 'spend-day', sp.day)}
          {meter('This month', 'spend-month', sp.month)}
          <p class="small">
            Queued, not yet sent: {microsMoney(sp.queued_micros, sp.currency)} ({count(sp.queued_segments)} segments). Days and months are counted in {sp.time_zone}. A campaign
            that would pass a budget is not queued.
          </p>
          {canWrite && (
            <form class="grid-3" onSubmit={save} noValidate aria-label="Change the budgets">
              <Field label={`Daily budget (${sp.currency})`} inputMode="decimal" autoComplete="off" value={daily} onValue={setDaily} error={errors.daily_budget_micros} />
              <Field label={`Monthly budget (${sp.currency})`} inputMode="decimal" autoComplete="off" value={monthly} onValue={setMonthly} error={errors.monthly_budget_micros} />
              <div class="actions">
                <button type="submit" class="secondary" disabled={busy}>
                  {busy ? 'Saving…' : 'Save budgets'}
                </button>
              </div>
            </form>
          )}
          <ErrorAlert error={error} />
          <p role="status" class="notice" data-testid="budgets-notice">
            {notice}
          </p>
        </>
      )}
    </section>
  );
}

const EMPTY = { name: '', template_id: '', segment_id: '', tags: '', sender: '', send_at: '' };

function NewCampaign({ onCreated }: { onCreated: (c: CampaignView) => void }) {
  const templates = useAsync(() => getAll<TemplateView>(`${MESSAGING}/templates`), []);
  const segments = useAsync(() => getAll<SegmentView>(`${MESSAGING}/segments`), []);
  const [v, setV] = useState(EMPTY);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [created, setCreated] = useState<CampaignView | null>(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const nameRef = useRef<HTMLInputElement>(null);
  const set = (k: keyof typeof EMPTY) => (value: string) => setV((cur) => ({ ...cur, [k]: value }));

  async function submit(e: Event) {
    e.preventDefault();
    if (busy) return;
    setError(undefined);
    setCreated(null);
    const missing: Record<string, string> = {};
    if (!v.name.trim()) missing.name = 'Enter a name for the campaign.';
    if (!v.template_id) missing.template_id = 'Choose the template to send.';
    if (!v.sender.trim()) missing.sender = 'Enter who the message comes from.';
    if (Object.keys(missing).length) {
      setErrors(missing);
      focusFirstInvalid(formRef.current);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const tags = parseTags(v.tags);
      const sendAt = blank(v.send_at);
      const body: CampaignInput = {
        name: v.name.trim(),
        template_id: v.template_id,
        sender: v.sender.trim(),
        tags: v.segment_id ? null : tags.length ? tags : null,
        segment_id: v.segment_id || null,
        send_at: sendAt ? new Date(sendAt).toISOString() : null,
      };
      const c = await request<CampaignView>('POST', `${MESSAGING}/campaigns`, { body, idempotencyKey: uuid() });
      setCreated(c);
      setV(EMPTY);
      onCreated(c);
      setTimeout(() => nameRef.current?.focus(), 0);
    } catch (err) {
      const fe = fieldErrors(err);
      setErrors(fe);
      setError(err);
      if (Object.keys(fe).length) focusFirstInvalid(formRef.current);
    } finally {
      setBusy(false);
    }
  }

  const options = [{ value: '', label: templates.loading ? 'Loading templates…' : 'Choose a template' }, ...(templates.data ?? []).map((t) => ({ value: t.id, label: t.name }))];
  const audiences = [{ value: '', label: 'Contacts with the tags below (or everyone)' }, ...(segments.data ?? []).map((g) => ({ value: g.id, label: `Segment: ${g.name}` }))];
  return (
    <form ref={formRef} class="panel" onSubmit={submit} noValidate aria-labelledby="new-campaign-title">
      <h2 id="new-campaign-title">New campaign</h2>
      <div class="grid-2">
        <Field label="Name (required)" autoComplete="off" inputRef={nameRef} value={v.name} onValue={set('name')} error={errors.name} maxLength={200} required />
        <SelectField label="Template (required)" value={v.template_id} onValue={set('template_id')} options={options} error={errors.template_id} required />
        <SelectField
          label="Audience"
          hint="A saved segment (counted when the campaign is queued), or tags."
          value={v.segment_id}
          onValue={set('segment_id')}
          options={audiences}
          error={errors.segment_id}
        />
        {!v.segment_id && (
          <Field
            label="Tags"
            hint="Contacts with any of these tags, separated by commas; none for every contact."
            autoComplete="off"
            value={v.tags}
            onValue={set('tags')}
            error={errors.tags ?? Object.entries(errors).find(([k]) => k.startsWith('tags.'))?.[1]}
          />
        )}
        <Field
          label="Sender (required)"
          hint="Your number in E.164 (+447700900123), a Twilio messaging service (MG…), or a sender ID of up to 11 letters and digits."
          autoComplete="off"
          value={v.sender}
          onValue={set('sender')}
          error={errors.sender}
          maxLength={40}
          required
        />
        <Field label="Send time" hint="Optional: the earliest time to send, in your computer’s time zone. Empty: as soon as it is queued." type="datetime-local" value={v.send_at} onValue={set('send_at')} error={errors.send_at} />
      </div>
      <ErrorAlert error={templates.error} />
      <ErrorAlert error={segments.error} />
      <ErrorAlert error={error} />
      <p role="status" class="notice" data-testid="campaign-created">
        {created && (
          <>
            Draft campaign created: <a href={`/campaigns/${created.id}`}>{created.name}</a>. Open it to queue it.
          </>
        )}
      </p>
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create draft campaign'}
        </button>
      </div>
    </form>
  );
}

const ACTION_DONE: Record<string, string> = {
  queue: 'Campaign queued.',
  pause: 'Campaign paused.',
  resume: 'Campaign resumed.',
  cancel: 'Campaign cancelled: its jobs not yet sent will not go.',
};

export function CampaignPage({ id }: { id: string }) {
  const canWrite = useScope('messaging:write');
  const loc = useLocation();
  const campaign = useAsync((signal) => get<CampaignView>(`${MESSAGING}/campaigns/${id}`, undefined, signal), [id]);
  const template = useAsync(
    (signal) => (campaign.data ? get<TemplateView>(`${MESSAGING}/templates/${campaign.data.template_id}`, undefined, signal).catch(() => null) : Promise.resolve(null)),
    [campaign.data?.template_id],
  );
  const report = useAsync(
    (signal) => (campaign.data && campaign.data.status !== 'draft' ? get<CampaignReport>(`${MESSAGING}/campaigns/${id}/report`, undefined, signal) : Promise.resolve(null)),
    [id, campaign.data?.status],
  );
  const [notice, setNotice] = useState('');
  const [actionError, setActionError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const actionsRef = useRef<HTMLHeadingElement>(null);
  const c = campaign.data;
  useTitle(c ? c.name : 'Campaign');

  // Polled every 2 s while it is scheduled or running.
  const polling = c?.status === 'scheduled' || c?.status === 'running';
  useEffect(() => {
    if (!polling) return;
    let live = true;
    const timer = setInterval(() => {
      get<CampaignView>(`${MESSAGING}/campaigns/${id}`)
        .then((next) => live && campaign.setData(next))
        .catch(() => undefined);
      get<CampaignReport>(`${MESSAGING}/campaigns/${id}/report`)
        .then((next) => live && report.setData(next))
        .catch(() => undefined);
    }, 2000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [polling, id]);

  if (campaign.error) {
    return (
      <>
        <h1>Campaign</h1>
        <ErrorAlert error={campaign.error} />
        <p>
          <a href="/campaigns">Back to campaigns</a>
        </p>
      </>
    );
  }
  if (!c) return <Loading what="Loading the campaign" />;

  async function act(action: 'queue' | 'pause' | 'resume' | 'cancel') {
    if (!c || busy) return;
    if (action === 'cancel' && !confirm(`Cancel the campaign “${c.name}”? Its messages not yet sent will never go.`)) return;
    setBusy(true);
    setActionError(undefined);
    setNotice('');
    try {
      await request<CampaignView>('POST', `${MESSAGING}/campaigns/${c.id}/${action}`);
      // The answer has no jobs by status: read the campaign again for them.
      campaign.setData(await get<CampaignView>(`${MESSAGING}/campaigns/${c.id}`));
      report.setData(await get<CampaignReport>(`${MESSAGING}/campaigns/${c.id}/report`));
      setNotice(ACTION_DONE[action]);
      // The button pressed has gone (the status allows others): the panel's heading takes focus.
      setTimeout(() => actionsRef.current?.focus(), 0);
    } catch (err) {
      setActionError(err);
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    if (!c) return;
    if (!confirm(`Delete the draft campaign “${c.name}”?`)) return;
    setBusy(true);
    setActionError(undefined);
    try {
      await request('DELETE', `${MESSAGING}/campaigns/${c.id}`);
      loc.route('/campaigns');
    } catch (err) {
      setActionError(err);
      setBusy(false);
    }
  }

  const s = c.queue_summary ?? {};
  const queued = c.status !== 'draft';
  const jobs = c.jobs ?? {};
  const jobRows = [...JOB_STATUSES.filter((k) => k in jobs), ...Object.keys(jobs).filter((k) => !JOB_STATUSES.includes(k))];
  const num = (n: unknown) => (typeof n === 'number' ? count(n) : '—');

  return (
    <>
      <div class="page-head">
        <div>
          <h1 data-testid="campaign-name">{c.name}</h1>
          <p class="contact-sub">
            <StatusBadge status={c.status} />
          </p>
        </div>
        <a class="button secondary" href="/campaigns">
          All campaigns
        </a>
      </div>
      <KillSwitch />

      {canWrite && (
        <section class="panel" aria-labelledby="campaign-actions-title">
          <h2 id="campaign-actions-title" ref={actionsRef} tabIndex={-1}>
            Actions
          </h2>
          <div class="actions">
            {c.status === 'draft' && (
              <>
                <button type="button" disabled={busy} onClick={() => void act('queue')}>
                  Queue campaign
                </button>
                <button type="button" class="danger" disabled={busy} onClick={() => void remove()}>
                  Delete draft
                </button>
              </>
            )}
            {(c.status === 'scheduled' || c.status === 'running') && (
              <button type="button" class="secondary" disabled={busy} onClick={() => void act('pause')}>
                Pause campaign
              </button>
            )}
            {c.status === 'paused' && (
              <button type="button" disabled={busy} onClick={() => void act('resume')}>
                Resume campaign
              </button>
            )}
            {(c.status === 'scheduled' || c.status === 'running' || c.status === 'paused') && (
              <button type="button" class="danger" disabled={busy} onClick={() => void act('cancel')}>
                Cancel campaign
              </button>
            )}
            {(c.status === 'completed' || c.status === 'cancelled') && <p class="small">This campaign is {c.status}: nothing more to do.</p>}
          </div>
          <ErrorAlert error={actionError} />
        </section>
      )}
      <p role="status" class="notice" data-testid="campaign-notice">
        {notice}
      </p>

      <div class="columns">
        <section class="panel" aria-labelledby="campaign-details-title">
          <h2 id="campaign-details-title">Details</h2>
          <dl class="facts">
            <dt>Template</dt>
            <dd>{template.data ? <a href={`/templates/${template.data.id}`}>{template.data.name}</a> : queued ? 'As queued (below)' : 'The template is gone'}</dd>
            <dt>Audience</dt>
            <dd data-testid="campaign-audience">
              {c.segment_id ? (
                <a href={`/segments/${c.segment_id}`}>{typeof s.audience_segment === 'object' && s.audience_segment ? `Segment: ${(s.audience_segment as { name?: string }).name}` : 'A segment'}</a>
              ) : c.tags.length ? (
                `Tagged ${c.tags.join(', ')}`
              ) : (
                'Every contact'
              )}
            </dd>
            <dt>Sender</dt>
            <dd>{c.sender}</dd>
            <dt>Send time</dt>
            <dd>{c.send_at ? date(c.send_at, true) : 'As soon as it is queued'}</dd>
            <dt>Created</dt>
            <dd>{date(c.created_at)}</dd>
            <dt>Queued</dt>
            <dd>{c.queued_at ? date(c.queued_at, true) : '—'}</dd>
            {c.completed_at && (
              <>
                <dt>Completed</dt>
                <dd>{date(c.completed_at, true)}</dd>
              </>
            )}
          </dl>
          {c.body && (
            <>
              <p class="small">The message as queued:</p>
              <pre class="message-text">{c.body}</pre>
            </>
          )}
        </section>

        <section class="panel" aria-labelledby="queue-summary-title">
          <h2 id="queue-summary-title">What queueing found</h2>
          {queued ? (
            <dl class="facts" data-testid="queue-summary">
              <dt>Messages queued</dt>
              <dd data-testid="queue-jobs">{num(s.jobs)}</dd>
              <dt>Left out: do not contact</dt>
              <dd>{num(s.do_not_contact)}</dd>
              <dt>Left out: variables missing</dt>
              <dd>{num(s.variables_missing)}</dd>
              <dt>Left out: too long</dt>
              <dd>{num(s.too_long)}</dd>
              <dt>Segments</dt>
              <dd>{num(s.segments)}</dd>
              <dt>Estimated cost</dt>
              <dd>{typeof s.estimated_cost_micros === 'number' ? microsMoney(s.estimated_cost_micros) : '—'}</dd>
              <dt>First send time</dt>
              <dd>{typeof s.first_send_at === 'string' ? date(s.first_send_at, true) : '—'}</dd>
            </dl>
          ) : (
            <p>Not queued yet: queueing makes one message per contact of its audience, leaving out numbers not to text.</p>
          )}
        </section>
      </div>

      {report.data && <Report report={report.data} live={polling} onRefresh={() => report.reload()} />}
      <ErrorAlert error={report.error} />

      <section class="panel" aria-labelledby="jobs-title">
        <h2 id="jobs-title">Messages by status</h2>
        {jobRows.length ? (
          <div class="table-wrap">
            <table data-testid="campaign-jobs">
              <caption>The campaign’s messages by status{c.status === 'scheduled' || c.status === 'running' ? ', updated every 2 seconds' : ''}</caption>
              <thead>
                <tr>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">
                    Messages
                  </th>
                </tr>
              </thead>
              <tbody>
                {jobRows.map((k) => (
                  <tr key={k} data-job-status={k}>
                    <th scope="row">{humanize(k)}</th>
                    <td class="num">{count(jobs[k])}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p>No messages yet.</p>
        )}
      </section>
    </>
  );
}

/** What a campaign's messages became, in words, as the report counts them. */
const OUTCOMES: { key: keyof CampaignReport; label: string }[] = [
  { key: 'delivered', label: 'Delivered' },
  { key: 'undelivered', label: 'Undelivered' },
  { key: 'failed', label: 'Failed' },
  { key: 'blocked', label: 'Blocked (opted out)' },
  { key: 'cancelled', label: 'Cancelled' },
  { key: 'pending', label: 'Waiting or sending' },
];

/** The campaign's report: its counts (each with a test id the browser tests compare with the API), and a chart. */
function Report({ report, live, onRefresh }: { report: CampaignReport; live: boolean; onRefresh: () => void }) {
  // Sent and not yet delivered, undelivered or failed: still with the carrier.
  const inFlight = Math.max(0, report.sent - report.delivered - report.undelivered - report.failed);
  const rows = useMemo(() => [...OUTCOMES.map((o) => [o.label, report[o.key] as number] as [string, number]), ['Sent, awaiting delivery', inFlight] as [string, number]], [report, inFlight]);
  const option = useMemo<ChartOption>(
    () => ({
      tooltip: { trigger: 'axis' },
      grid: { left: 8, right: 24, top: 16, bottom: 8, containLabel: true },
      xAxis: { type: 'value', minInterval: 1 },
      yAxis: { type: 'category', inverse: true, data: rows.map((r) => r[0]) },
      series: [{ name: 'Messages', type: 'bar', data: rows.map((r) => r[1]) }],
    }),
    [rows],
  );
  const figures: [string, string, string][] = [
    ['Queued', 'report-queued', count(report.queued)],
    ['Sent', 'report-sent', count(report.sent)],
    ['Delivered', 'report-delivered', count(report.delivered)],
    ['Undelivered', 'report-undelivered', count(report.undelivered)],
    ['Failed', 'report-failed', count(report.failed)],
    ['Blocked', 'report-blocked', count(report.blocked)],
    ['Waiting or sending', 'report-pending', count(report.pending)],
    ['Segments sent', 'report-segments', count(report.segments)],
    ['Spend', 'report-spend', microsMoney(report.spend_micros, report.currency)],
    ['Opt-outs since queued', 'report-opt-outs', count(report.opt_outs)],
    ['Link clicks by people', 'report-human-clicks', count(report.human_clicks)],
    ['Link previews and prefetches (not counted)', 'report-bot-clicks', count(report.bot_clicks)],
    ['Contacts who clicked', 'report-clickers', count(report.contacts_who_clicked)],
  ];
  const summary = `Bar chart of the campaign’s ${count(report.queued)} messages by outcome: ${rows.map((r) => `${r[0]} ${count(r[1])}`).join(', ')}.`;
  return (
    <>
      <section class="panel" aria-labelledby="report-title">
        <div class="panel-head">
          <h2 id="report-title">Report</h2>
          <button type="button" class="secondary" onClick={onRefresh}>
            Refresh<span class="visually-hidden"> the report</span>
          </button>
        </div>
        <p class="small">{live ? 'Updated every 2 seconds while it sends.' : 'As of now.'}</p>
        <dl class="facts report" data-testid="campaign-report">
          {figures.map(([label, testid, value]) => (
            <Fragment key={testid}>
              <dt>{label}</dt>
              <dd data-testid={testid}>{value}</dd>
            </Fragment>
          ))}
        </dl>
      </section>
      <ChartPanel
        title="Messages by outcome"
        testid="chart-campaign-outcomes"
        label={summary}
        option={option}
        height={Math.max(180, rows.length * 34 + 48)}
        filename={`campaign-${report.campaign_id}-outcomes.csv`}
        columns={['Outcome', 'Messages']}
        rows={rows}
      />
    </>
  );
}
