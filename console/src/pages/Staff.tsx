import { useState } from 'preact/hooks';
import { ErrorAlert, Field, Loading, SelectField, useAsync, useTitle } from '../components/ui';
import { fieldErrors, get, IDENTITY, request, uuid } from '../lib/api';
import { date, humanize } from '../lib/format';
import { session, useScope } from '../lib/session';
import { ROLES, type Page, type RoleName, type StaffView } from '../lib/types';

const ROLE_HELP: Record<RoleName, string> = {
  admin: 'everything, including staff and settings',
  fundraiser: 'reads everything; records donors, gifts, imports and claims',
  messenger: 'reads everything; sends messages',
  viewer: 'reads only',
};

const roleOptions = ROLES.map((r) => ({ value: r, label: `${humanize(r)}: ${ROLE_HELP[r]}` }));

export function StaffPage() {
  useTitle('Staff');
  const isAdmin = useScope('identity:admin');
  const list = useAsync((signal) => get<Page<StaffView>>(`${IDENTITY}/staff`, { limit: 500 }, signal), []);
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<RoleName>('fundraiser');
  const [roles, setRoles] = useState<Record<string, RoleName>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [addError, setAddError] = useState<unknown>(undefined);
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);
  const me = session();
  const myId = me.status === 'signed-in' ? me.staff.id : '';

  async function add(e: Event) {
    e.preventDefault();
    setBusy(true);
    setAddError(undefined);
    setNotice('');
    try {
      const added = await request<StaffView>('POST', `${IDENTITY}/staff`, { body: { name: name.trim(), email: email.trim(), role }, idempotencyKey: uuid() });
      setNotice(`${added.name} added as ${humanize(added.role).toLowerCase()}. They can sign in with ${added.email}.`);
      setName('');
      setEmail('');
      list.reload();
    } catch (err) {
      setAddError(err);
    } finally {
      setBusy(false);
    }
  }

  async function change(s: StaffView) {
    const next = roles[s.id];
    if (!next || next === s.role) return;
    setBusy(true);
    setError(undefined);
    setNotice('');
    try {
      const changed = await request<StaffView>('PATCH', `${IDENTITY}/staff/${s.id}`, {
        body: { name: s.name, role: next },
        contentType: 'application/merge-patch+json',
      });
      setNotice(`${changed.name} is now ${humanize(changed.role).toLowerCase()}.`);
      list.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  async function remove(s: StaffView) {
    if (!confirm(`Remove ${s.name}? They will no longer be able to sign in.`)) return;
    setBusy(true);
    setError(undefined);
    setNotice('');
    try {
      await request('DELETE', `${IDENTITY}/staff/${s.id}`);
      setNotice(`${s.name} removed.`);
      list.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const fe = fieldErrors(addError);
  return (
    <>
      <h1>Staff</h1>
      <p role="status" class="notice">
        {notice}
      </p>
      <ErrorAlert error={error} />
      <ErrorAlert error={list.error} />
      {list.loading && <Loading what="Loading staff" />}
      {list.data && (
        <div class="table-wrap">
          <table>
            <caption>Staff who can sign in</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Added</th>
                {isAdmin && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {list.data.data.map((s) => (
                <tr key={s.id}>
                  <th scope="row">
                    {s.name}
                    {s.id === myId ? ' (you)' : ''}
                  </th>
                  <td>{s.email}</td>
                  <td>
                    {isAdmin ? (
                      <SelectField
                        label={<span class="visually-hidden">Role of {s.name}</span>}
                        value={roles[s.id] ?? s.role}
                        onValue={(v) => setRoles({ ...roles, [s.id]: v as RoleName })}
                        options={ROLES.map((r) => ({ value: r, label: humanize(r) }))}
                        class="compact"
                      />
                    ) : (
                      humanize(s.role)
                    )}
                  </td>
                  <td>{date(s.created_at)}</td>
                  {isAdmin && (
                    <td class="row-actions">
                      <button type="button" class="secondary" disabled={busy || !roles[s.id] || roles[s.id] === s.role} onClick={() => void change(s)}>
                        Save role<span class="visually-hidden"> of {s.name}</span>
                      </button>
                      <button type="button" class="danger" disabled={busy} onClick={() => void remove(s)}>
                        Remove<span class="visually-hidden"> {s.name}</span>
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {isAdmin && (
        <form class="panel" onSubmit={add} noValidate aria-labelledby="add-staff-title">
          <h2 id="add-staff-title">Add a member of staff</h2>
          <p>They sign in with a link mailed to this address.</p>
          <div class="grid-3">
            <Field label="Name" value={name} onValue={setName} required error={fe.name} autoComplete="off" />
            <Field label="Email" type="email" value={email} onValue={setEmail} required error={fe.email} autoComplete="off" />
            <SelectField label="Role" value={role} onValue={(v) => setRole(v as RoleName)} options={roleOptions} error={fe.role} />
          </div>
          <ErrorAlert error={addError} />
          <button type="submit" disabled={busy}>
            Add staff member
          </button>
        </form>
      )}
    </>
  );
}
