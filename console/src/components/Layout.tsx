import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { hasScope, signOut, useSession } from '../lib/session';
import { humanize } from '../lib/format';
import { useInboxSummary } from '../lib/inbox';

interface NavItem {
  href: string;
  label: string;
  scope?: string;
}

const NAV: NavItem[] = [
  { href: '/', label: 'Dashboard', scope: 'rollup:read' },
  { href: '/gifts/new', label: 'Gift entry', scope: 'fundraising:write' },
  { href: '/batches', label: 'Batches', scope: 'fundraising:read' },
  { href: '/donors', label: 'Donors', scope: 'fundraising:read' },
  { href: '/staging', label: 'Staging', scope: 'fundraising:read' },
  { href: '/imports', label: 'Imports', scope: 'fundraising:read' },
  { href: '/claims', label: 'Gift Aid claims', scope: 'fundraising:read' },
  { href: '/inbox', label: 'Inbox', scope: 'messaging:read' },
  { href: '/contacts', label: 'Contacts', scope: 'messaging:read' },
  { href: '/do-not-contact', label: 'Do not contact', scope: 'messaging:read' },
  { href: '/templates', label: 'Templates', scope: 'messaging:read' },
  { href: '/segments', label: 'Segments', scope: 'messaging:read' },
  { href: '/campaigns', label: 'Campaigns', scope: 'messaging:read' },
  { href: '/staff', label: 'Staff', scope: 'identity:read' },
  { href: '/settings', label: 'Settings', scope: 'identity:read' },
];

/** The nav's count of conversations with unread member messages, kept live. */
function InboxBadge() {
  const summary = useInboxSummary(hasScope('messaging:read'));
  const n = summary?.unread_conversations ?? 0;
  if (!n) return null;
  return (
    <span class="nav-badge" data-testid="inbox-unread" data-count={n}>
      {n > 99 ? '99+' : n}
      <span class="visually-hidden"> unread</span>
    </span>
  );
}

function isCurrent(href: string, path: string) {
  if (href === '/') return path === '/';
  return path === href || path.startsWith(`${href}/`);
}

/** Moves focus to the new page's heading after client-side navigation, so it is announced. */
function useFocusOnNavigate(path: string) {
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const h1 = document.querySelector<HTMLElement>('main h1');
    if (h1) {
      h1.tabIndex = -1;
      h1.focus();
    } else {
      document.getElementById('main')?.focus();
    }
  }, [path]);
}

export function Layout({ children }: { children: ComponentChildren }) {
  const s = useSession();
  const loc = useLocation();
  useFocusOnNavigate(loc.path);
  const staff = s.status === 'signed-in' ? s.staff : undefined;
  return (
    <>
      <a class="skip-link" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to main content
      </a>
      <header class="site-header">
        <div class="brand">
          <span class="logo" aria-hidden="true">A</span>
          <span>
            <span class="product">Almoner</span>
            {staff && <span class="tenant" data-testid="tenant-name">{staff.tenant_name}</span>}
          </span>
        </div>
        {staff && (
          <div class="who">
            <span data-testid="staff-name">{staff.name}</span>
            <span class="role" data-testid="staff-role">{humanize(staff.role)}</span>
            <button
              type="button"
              class="secondary"
              onClick={async () => {
                await signOut();
                loc.route('/sign-in', true);
              }}
            >
              Sign out
            </button>
          </div>
        )}
      </header>
      <nav class="site-nav" aria-label="Main">
        <ul>
          {NAV.filter((n) => !n.scope || hasScope(n.scope)).map((n) => (
            <li key={n.href}>
              <a href={n.href} aria-current={isCurrent(n.href, loc.path) ? 'page' : undefined}>
                {n.label}
                {n.href === '/inbox' && <InboxBadge />}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}

export function PublicLayout({ children }: { children: ComponentChildren }) {
  return (
    <>
      <a class="skip-link" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to main content
      </a>
      <header class="site-header">
        <div class="brand">
          <span class="logo" aria-hidden="true">A</span>
          <span class="product">Almoner staff console</span>
        </div>
      </header>
      <main id="main" tabIndex={-1} class="narrow">
        {children}
      </main>
    </>
  );
}
