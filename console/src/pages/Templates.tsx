// SMS templates (messaging's /v1/templates): the list and a form for a new one; one template, edited as a merge patch
// of its name and body, or deleted. The body's editor counts segments and cost as you type (POST
// /v1/templates/preview, debounced), and a template can be previewed for a contact.
import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { KillSwitch } from '../components/KillSwitch';
import { ErrorAlert, Field, Loading, Pager, TextAreaField, useAsync, useCursor, useDebouncedRequest, useTitle } from '../components/ui';
import { ApiError, fieldErrors, get, MESSAGING, request, uuid } from '../lib/api';
import { count, date } from '../lib/format';
import { contactName, microsMoney } from '../lib/messaging';
import { useScope } from '../lib/session';
import type { ContactView, Page, PreviewView, TemplateInput, TemplateView } from '../lib/types';

const BODY_HINT = 'Variables such as {{first_name}}, {{last_name}}, {{email}}, {{phone}} or an attribute’s key, with a default after | ({{first_name|friend}}). The opt-out line is added at the end.';

function focusFirstInvalid(form: HTMLElement | null) {
  setTimeout(() => form?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
}

/** The preview of `body` (debounced 250 ms), and the preview's own error (a 422 naming `body`). */
function useLivePreview(body: string) {
  const { data, error } = useDebouncedRequest(
    body,
    (signal) => request<PreviewView>('POST', `${MESSAGING}/templates/preview`, { body: { body, variables: {} }, signal }),
    250,
    !body.trim(),
  );
  return { preview: data, error };
}

/** The live counter: encoding, characters, segments, cost, what forces UCS-2, unfilled variables, the whole text. */
function Counter({ body, preview, error }: { body: string; preview: PreviewView | undefined; error: unknown }) {
  const p = body.trim() ? preview : undefined;
  return (
    <div class="counter" aria-live="polite" data-testid="template-counter" data-encoding={p?.encoding} data-segments={p?.segments}>
      {!body.trim() ? (
        <p class="small">Type the message to see its length and cost.</p>
      ) : !p ? (
        error ? null : <p class="small">Counting…</p>
      ) : (
        <>
          <dl class="facts">
            <dt>Encoding</dt>
            <dd data-testid="counter-encoding">{p.encoding}</dd>
            <dt>Characters</dt>
            <dd data-testid="counter-characters">{count(p.characters)}</dd>
            <dt>Segments</dt>
            <dd data-testid="counter-segments">
              {p.segments} {p.segments === 1 ? 'segment' : 'segments'}
            </dd>
            <dt>Units per segment</dt>
            <dd>{p.units_per_segment}</dd>
            <dt>Cost per message</dt>
            <dd data-testid="counter-cost">{microsMoney(p.cost_micros, p.currency)}</dd>
            {p.non_gsm_characters.length > 0 && (
              <>
                <dt>Characters forcing UCS-2</dt>
                <dd data-testid="counter-non-gsm">
                  {p.non_gsm_characters.map((c) => `“${c}”`).join(' ')} (replace them to send as GSM-7, with more characters per segment)
                </dd>
              </>
            )}
            {p.unfilled_variables.length > 0 && (
              <>
                <dt>Variables filled per contact</dt>
                <dd>{p.unfilled_variables.map((v) => `{{${v}}}`).join(', ')}</dd>
              </>
            )}
          </dl>
          {p.over_limit && <p class="warn-text">Over Twilio’s 1,600-character limit: it could not be sent.</p>}
          <p class="small">The whole message, with the opt-out line:</p>
          <pre class="message-text" data-testid="counter-text">
            {p.text}
          </pre>
        </>
      )}
    </div>
  );
}

export function TemplateList() {
  useTitle('Templates');
  const canWrite = useScope('messaging:write');
  const { cursor, setCursor, atFirst } = useCursor([]);
  const list = useAsync((signal) => get<Page<TemplateView>>(`${MESSAGING}/templates`, { limit: 50, cursor }, signal), [cursor]);
  return (
    <>
      <div class="page-head">
        <h1>Templates</h1>
        <div class="actions">
          <a class="button secondary" href="/campaigns">
            Campaigns
          </a>
        </div>
      </div>
      <p class="hint-line">The text messages campaigns send, with variables filled in for each contact.</p>
      <KillSwitch />
      {canWrite && <TemplateForm onSaved={() => (atFirst ? list.reload() : setCursor(undefined))} />}
      <section class="panel" aria-labelledby="templates-title">
        <h2 id="templates-title">All templates</h2>
        <ErrorAlert error={list.error} />
        {list.loading && <Loading what="Loading templates" />}
        {list.data && (
          <>
            <div class="table-wrap">
              <table data-testid="template-list">
                <caption>Templates, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Variables</th>
                    <th scope="col">Changed</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.data.map((t) => (
                    <tr key={t.id}>
                      <td>
                        <a href={`/templates/${t.id}`}>{t.name}</a>
                      </td>
                      <td>{t.variables.length ? t.variables.join(', ') : '—'}</td>
                      <td>{date(t.updated_at)}</td>
                    </tr>
                  ))}
                  {list.data.data.length === 0 && (
                    <tr>
                      <td colSpan={3}>No templates yet.</td>
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

/** A new template (no `template`), or a template's edit (a merge patch of what changed). */
function TemplateForm({ template, onSaved }: { template?: TemplateView; onSaved: (t: TemplateView) => void }) {
  const [name, setName] = useState(template?.name ?? '');
  const [body, setBody] = useState(template?.body ?? '');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [notice, setNotice] = useState<{ text: string; id?: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const nameRef = useRef<HTMLInputElement>(null);
  const live = useLivePreview(body);
  const previewBodyError = fieldErrors(live.error).body;

  useEffect(() => {
    if (!template) return;
    setName(template.name);
    setBody(template.body);
  }, [template?.id, template?.revision]);

  async function submit(e: Event) {
    e.preventDefault();
    if (busy) return;
    setError(undefined);
    setNotice(null);
    const missing: Record<string, string> = {};
    if (!name.trim()) missing.name = 'Enter a name for the template.';
    if (!body.trim()) missing.body = 'Enter the message.';
    if (Object.keys(missing).length) {
      setErrors(missing);
      focusFirstInvalid(formRef.current);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      let saved: TemplateView;
      if (template) {
        const patch: Partial<TemplateInput> = {};
        if (name.trim() !== template.name) patch.name = name.trim();
        if (body !== template.body) patch.body = body;
        if (Object.keys(patch).length === 0) {
          setNotice({ text: 'Nothing to save: nothing has changed.' });
          return;
        }
        saved = await request<TemplateView>('PATCH', `${MESSAGING}/templates/${template.id}`, { body: patch, contentType: 'application/merge-patch+json' });
        setNotice({ text: 'Template saved.' });
      } else {
        saved = await request<TemplateView>('POST', `${MESSAGING}/templates`, { body: { name: name.trim(), body }, idempotencyKey: uuid() });
        setNotice({ text: `Template “${saved.name}” saved.`, id: saved.id });
        setName('');
        setBody('');
        setTimeout(() => nameRef.current?.focus(), 0);
      }
      onSaved(saved);
    } catch (err) {
      const fe = fieldErrors(err);
      setErrors(fe);
      setError(err);
      if (Object.keys(fe).length) focusFirstInvalid(formRef.current);
    } finally {
      setBusy(false);
    }
  }

  const titleId = template ? 'edit-template-title' : 'new-template-title';
  return (
    <form ref={formRef} class="panel" onSubmit={submit} noValidate aria-labelledby={titleId}>
      <h2 id={titleId}>{template ? 'Edit template' : 'New template'}</h2>
      <Field label="Name (required)" autoComplete="off" inputRef={nameRef} value={name} onValue={setName} error={errors.name} maxLength={100} required />
      <TextAreaField label="Message (required)" hint={BODY_HINT} rows={5} value={body} onValue={setBody} error={errors.body ?? previewBodyError} maxLength={1600} required />
      <Counter body={body} preview={live.preview} error={live.error} />
      {live.error && !previewBodyError ? <ErrorAlert error={live.error} /> : null}
      <ErrorAlert error={error} />
      <p role="status" class="notice" data-testid="template-notice">
        {notice && (
          <>
            {notice.text}
            {notice.id && (
              <>
                {' '}
                <a href={`/templates/${notice.id}`}>Open it</a>
              </>
            )}
          </>
        )}
      </p>
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : template ? 'Save template' : 'Save new template'}
        </button>
      </div>
    </form>
  );
}

export function TemplatePage({ id }: { id: string }) {
  const canWrite = useScope('messaging:write');
  const loc = useLocation();
  const template = useAsync((signal) => get<TemplateView>(`${MESSAGING}/templates/${id}`, undefined, signal), [id]);
  const [deleteError, setDeleteError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const t = template.data;
  useTitle(t ? t.name : 'Template');

  if (template.error) {
    return (
      <>
        <h1>Template</h1>
        <ErrorAlert error={template.error} />
        <p>
          <a href="/templates">Back to templates</a>
        </p>
      </>
    );
  }
  if (!t) return <Loading what="Loading the template" />;

  async function remove() {
    if (!t) return;
    if (!confirm(`Delete the template “${t.name}”? Campaigns already queued keep their text.`)) return;
    setBusy(true);
    setDeleteError(undefined);
    try {
      await request('DELETE', `${MESSAGING}/templates/${t.id}`);
      loc.route('/templates');
    } catch (err) {
      setDeleteError(err);
      setBusy(false);
    }
  }

  return (
    <>
      <div class="page-head">
        <h1 data-testid="template-name">{t.name}</h1>
        <a class="button secondary" href="/templates">
          All templates
        </a>
      </div>
      <KillSwitch />
      {canWrite ? <TemplateForm template={t} onSaved={(next) => template.setData(next)} /> : <ReadOnlyTemplate template={t} />}
      <ContactPreview templateId={t.id} />
      <section class="panel" aria-labelledby="template-record-title">
        <h2 id="template-record-title">Record</h2>
        <dl class="facts">
          <dt>Variables</dt>
          <dd>{t.variables.length ? t.variables.join(', ') : '—'}</dd>
          <dt>Added</dt>
          <dd>{date(t.created_at)}</dd>
          <dt>Last changed</dt>
          <dd>{date(t.updated_at)}</dd>
          <dt>Revision</dt>
          <dd>{t.revision}</dd>
        </dl>
        {canWrite && (
          <>
            <ErrorAlert error={deleteError} />
            <div class="actions">
              <button type="button" class="danger" disabled={busy} onClick={() => void remove()}>
                Delete template
              </button>
            </div>
          </>
        )}
      </section>
    </>
  );
}

function ReadOnlyTemplate({ template: t }: { template: TemplateView }) {
  const live = useLivePreview(t.body);
  return (
    <section class="panel" aria-labelledby="template-body-title">
      <h2 id="template-body-title">Message</h2>
      <pre class="message-text">{t.body}</pre>
      <Counter body={t.body} preview={live.preview} error={live.error} />
      <ErrorAlert error={live.error} />
    </section>
  );
}

/** The saved template rendered for a contact found by search, or the variables that contact has no value for. */
function ContactPreview({ templateId }: { templateId: string }) {
  const [text, setText] = useState('');
  const [q, setQ] = useState<string | null>(null);
  const results = useAsync(
    (signal) => (q === null ? Promise.resolve(null) : get<Page<ContactView>>(`${MESSAGING}/contacts`, { q, limit: 10 }, signal)),
    [q],
  );
  const [chosen, setChosen] = useState<ContactView | null>(null);
  const [preview, setPreview] = useState<PreviewView | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);

  async function choose(c: ContactView) {
    setChosen(c);
    setPreview(null);
    setError(undefined);
    setBusy(true);
    try {
      setPreview(await request<PreviewView>('POST', `${MESSAGING}/templates/preview`, { body: { template_id: templateId, contact_id: c.id } }));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  const missing = error instanceof ApiError && error.code === 'template_variable_missing' ? error.fieldErrors.map((f) => f.field.replace(/^variables\./, '')) : null;
  return (
    <section class="panel" aria-labelledby="contact-preview-title">
      <h2 id="contact-preview-title">Preview for a contact</h2>
      <p class="small">The saved template, as a contact would receive it.</p>
      <form
        role="search"
        aria-label="Contacts to preview for"
        class="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          setQ(text.trim());
        }}
      >
        <Field label="Find a contact by name, email, or 3 or more digits of the number" type="search" value={text} onValue={setText} name="q" />
        <button type="submit">Find</button>
      </form>
      <ErrorAlert error={results.error} />
      {q !== null && results.loading && <Loading what="Finding contacts" />}
      {results.data && (
        <>
          {results.data.data.length === 0 ? (
            <p>No contacts match.</p>
          ) : (
            <ul class="contact-picks" aria-label="Contacts found">
              {results.data.data.map((c) => (
                <li key={c.id}>
                  <button type="button" class="link" aria-pressed={chosen?.id === c.id} onClick={() => void choose(c)}>
                    {contactName(c)}, {c.phone}
                  </button>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
      <div role="status" data-testid="contact-preview">
        {chosen && busy && <p class="small">Rendering for {contactName(chosen)}…</p>}
        {chosen && preview && (
          <>
            <p>
              For {contactName(chosen)}: {preview.encoding}, {preview.segments} {preview.segments === 1 ? 'segment' : 'segments'}, {microsMoney(preview.cost_micros, preview.currency)}
            </p>
            <pre class="message-text">{preview.text}</pre>
          </>
        )}
        {chosen && missing && (
          <div class="alert error">
            <p>
              {contactName(chosen)} has no value for {missing.map((m) => `{{${m}}}`).join(', ')}, and the template gives no default: a campaign leaves them out.
            </p>
          </div>
        )}
      </div>
      {!missing && <ErrorAlert error={error} />}
    </section>
  );
}
