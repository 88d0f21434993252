import { useEffect, useState } from 'preact/hooks';
import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { Layout, PublicLayout } from './components/Layout';
import { Loading, useTitle } from './components/ui';
import { refresh, useSession } from './lib/session';
import { get, IDENTITY } from './lib/api';
import { setTimeZone } from './lib/format';
import type { Tenant } from './lib/types';
import { rememberNext, SignIn, SignInCallback } from './pages/SignIn';
import { Dashboard } from './pages/Dashboard';
import { GiftEntry } from './pages/GiftEntry';
import { DonorList, DonorPage } from './pages/Donors';
import { Staging } from './pages/Staging';
import { ImportList, ImportPage } from './pages/Imports';
import { ClaimList, ClaimPage } from './pages/Claims';
import { StaffPage } from './pages/Staff';
import { Settings } from './pages/Settings';
import { BatchList, BatchPage } from './pages/Batches';
import { ContactList, ContactPage } from './pages/Contacts';
import { ContactImportList, ContactImportPage } from './pages/ContactImports';
import { DoNotContactPage } from './pages/DoNotContact';
import { TemplateList, TemplatePage } from './pages/Templates';
import { CampaignList, CampaignPage } from './pages/Campaigns';
import { SegmentList, SegmentPage } from './pages/Segments';
import { ConversationPage, InboxList } from './pages/Inbox';

const PUBLIC_PATHS = new Set(['/sign-in', '/sign-in/callback']);

function NotFound() {
  useTitle('Page not found');
  return (
    <>
      <h1>Page not found</h1>
      <p>There is no page at this address.</p>
      <p>
        <a href="/">Go to the dashboard</a>
      </p>
    </>
  );
}

function PublicRoutes() {
  return (
    <PublicLayout>
      <Router>
        <Route path="/sign-in" component={SignIn} />
        <Route path="/sign-in/callback" component={SignInCallback} />
        <Route default component={NotFound} />
      </Router>
    </PublicLayout>
  );
}

function StaffRoutes() {
  return (
    <Layout>
      <Router>
        <Route path="/" component={Dashboard} />
        <Route path="/gifts/new" component={GiftEntry} />
        <Route path="/donors" component={DonorList} />
        <Route path="/donors/:id" component={DonorPage} />
        <Route path="/batches" component={BatchList} />
        <Route path="/batches/:id" component={BatchPage} />
        <Route path="/staging" component={Staging} />
        <Route path="/imports" component={ImportList} />
        <Route path="/imports/:id" component={ImportPage} />
        <Route path="/claims" component={ClaimList} />
        <Route path="/claims/:id" component={ClaimPage} />
        <Route path="/inbox" component={InboxList} />
        <Route path="/inbox/:id" component={ConversationPage} />
        <Route path="/contacts" component={ContactList} />
        {/* Before /contacts/:id, which would take "imports" for an id. */}
        <Route path="/contacts/imports" component={ContactImportList} />
        <Route path="/contacts/imports/:id" component={ContactImportPage} />
        <Route path="/contacts/:id" component={ContactPage} />
        <Route path="/do-not-contact" component={DoNotContactPage} />
        <Route path="/templates" component={TemplateList} />
        <Route path="/templates/:id" component={TemplatePage} />
        <Route path="/segments" component={SegmentList} />
        <Route path="/segments/:id" component={SegmentPage} />
        <Route path="/campaigns" component={CampaignList} />
        <Route path="/campaigns/:id" component={CampaignPage} />
        <Route path="/staff" component={StaffPage} />
        <Route path="/settings" component={Settings} />
        <Route default component={NotFound} />
      </Router>
    </Layout>
  );
}

function Shell() {
  const loc = useLocation();
  const s = useSession();
  const isPublic = PUBLIC_PATHS.has(loc.path);

  useEffect(() => {
    // Restores the session after a reload from the refresh cookie.
    if (!isPublic && s.status === 'unknown') void refresh();
  }, [isPublic, s.status]);

  useEffect(() => {
    if (!isPublic && s.status === 'signed-out') {
      // Back to this page after signing in again, unless the member chose to sign out.
      if (!s.byUser) rememberNext(loc.url);
      loc.route('/sign-in', true);
    }
  }, [isPublic, s.status, loc.url]);

  // The tenant's time zone, which every page shows times in: read once per tenant signed in to.
  const tenantId = s.status === 'signed-in' ? s.staff.tenant_id : undefined;
  const [zoneFor, setZoneFor] = useState<string | undefined>(undefined);
  useEffect(() => {
    if (!tenantId || zoneFor === tenantId) return;
    let live = true;
    get<Tenant>(`${IDENTITY}/tenant`)
      .then((t) => setTimeZone(t.time_zone))
      .catch(() => setTimeZone(undefined))
      .finally(() => live && setZoneFor(tenantId));
    return () => {
      live = false;
    };
  }, [tenantId, zoneFor]);

  if (isPublic) return <PublicRoutes />;
  if (s.status === 'signed-in' && zoneFor === tenantId) return <StaffRoutes />;
  return (
    <PublicLayout>
      {s.status === 'unavailable' ? (
        <>
          <h1>Almoner is unavailable</h1>
          <div class="alert error" role="alert">
            <p>{s.message}</p>
          </div>
          <button type="button" onClick={() => void refresh()}>
            Try again
          </button>
        </>
      ) : (
        <Loading what="Checking your session" />
      )}
    </PublicLayout>
  );
}

export function App() {
  return (
    <LocationProvider>
      <Shell />
    </LocationProvider>
  );
}
