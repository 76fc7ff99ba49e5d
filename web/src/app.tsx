import {
  AppBar,
  Box,
  Button,
  CircularProgress,
  Container,
  Menu,
  MenuItem,
  Stack,
  Toolbar,
  Typography,
} from '@mui/material';
import { lazy, Suspense, useState } from 'react';
import { Link as RouterLink, Navigate, Route, Routes, useLocation } from 'react-router';
import type { SessionView } from '@medlake/shared';
import { PageErrorBoundary } from './components/page-error-boundary.tsx';
import { CatalogPage } from './pages/catalog-page.tsx';
import { AdminHomePage, NotFoundPage, RequireRole } from './pages/home-pages.tsx';
import { FirstStepsPage } from './pages/first-steps-page.tsx';
import { SignInPage } from './pages/sign-in-page.tsx';
import { StatusPage } from './pages/status-page.tsx';
import { useSession } from './session.tsx';

// Pages past the catalog load when first visited: the first screen needs only its own code.
const AccessRequestsPage = lazy(() =>
  import('./pages/access-requests-page.tsx').then((module) => ({
    default: module.AccessRequestsPage,
  })),
);
const AdminExportsPage = lazy(() =>
  import('./pages/admin-exports-page.tsx').then((module) => ({
    default: module.AdminExportsPage,
  })),
);
const AdminHospitalsPage = lazy(() =>
  import('./pages/admin-hospitals-page.tsx').then((module) => ({
    default: module.AdminHospitalsPage,
  })),
);
const AdminOperationsPage = lazy(() =>
  import('./pages/admin-operations-page.tsx').then((module) => ({
    default: module.AdminOperationsPage,
  })),
);
const AdminProjectsPage = lazy(() =>
  import('./pages/admin-projects-page.tsx').then((module) => ({
    default: module.AdminProjectsPage,
  })),
);
const AdminUsersPage = lazy(() =>
  import('./pages/admin-users-page.tsx').then((module) => ({ default: module.AdminUsersPage })),
);
const SuspiciousActivityPage = lazy(() =>
  import('./pages/suspicious-activity-page.tsx').then((module) => ({
    default: module.SuspiciousActivityPage,
  })),
);
const AuditPage = lazy(() =>
  import('./pages/audit-page.tsx').then((module) => ({ default: module.AuditPage })),
);
const DatasetPage = lazy(() =>
  import('./pages/dataset-page.tsx').then((module) => ({ default: module.DatasetPage })),
);
const QueryBuilderPage = lazy(() =>
  import('./pages/query-builder/query-builder-page.tsx').then((module) => ({
    default: module.QueryBuilderPage,
  })),
);
const QueryHistoryPage = lazy(() =>
  import('./pages/query-history-page.tsx').then((module) => ({ default: module.QueryHistoryPage })),
);
const ProfilePage = lazy(() =>
  import('./pages/profile-page.tsx').then((module) => ({ default: module.ProfilePage })),
);
const QueryResultPage = lazy(() =>
  import('./pages/query-result-page.tsx').then((module) => ({ default: module.QueryResultPage })),
);
const UploadsPage = lazy(() =>
  import('./pages/uploads/uploads-page.tsx').then((module) => ({ default: module.UploadsPage })),
);

/**
 * The app: the sign-in page for visitors, the first steps for a session that must change its
 * password or set up its authenticator, and the pages of the app for everyone else.
 */
export function App() {
  const { session } = useSession();
  const location = useLocation();
  if (session === undefined) {
    return (
      <Box sx={{ display: 'grid', placeItems: 'center', minHeight: '100vh' }}>
        <CircularProgress aria-label="Loading" />
      </Box>
    );
  }
  if (session === null) {
    return (
      <Routes>
        <Route path="/status" element={<StatusPage />} />
        <Route path="*" element={<SignInPage />} />
      </Routes>
    );
  }
  if (session.needs.length > 0) return <FirstStepsPage session={session} />;
  return (
    <Shell>
      <PageErrorBoundary resetKey={location.pathname}>
        <Suspense fallback={<CircularProgress aria-label="Loading the page" />}>
          <Routes>
            <Route path="/" element={<Home session={session} />} />
            <Route path="/catalog" element={<CatalogPage />} />
            <Route path="/datasets/:id" element={<DatasetPage />} />
            <Route path="/queries" element={<QueryHistoryPage />} />
            <Route path="/queries/new" element={<QueryBuilderPage />} />
            <Route path="/queries/:id" element={<QueryResultPage />} />
            <Route
              path="/uploads"
              element={
                <RequireRole roles={['steward', 'admin']}>
                  <UploadsPage />
                </RequireRole>
              }
            />
            {(
              [
                ['/admin/access-requests', <AccessRequestsPage key="requests" />],
                ['/admin/exports', <AdminExportsPage key="exports" />],
                ['/admin/users', <AdminUsersPage key="users" />],
                ['/admin/projects', <AdminProjectsPage key="projects" />],
                ['/admin/hospitals', <AdminHospitalsPage key="hospitals" />],
                ['/admin/operations', <AdminOperationsPage key="operations" />],
              ] as const
            ).map(([path, page]) => (
              <Route
                key={path}
                path={path}
                element={<RequireRole roles={['admin']}>{page}</RequireRole>}
              />
            ))}
            <Route
              path="/audit"
              element={
                <RequireRole roles={['auditor', 'admin']}>
                  <AuditPage />
                </RequireRole>
              }
            />
            <Route
              path="/audit/suspicious"
              element={
                <RequireRole roles={['auditor', 'admin']}>
                  <SuspiciousActivityPage />
                </RequireRole>
              }
            />
            <Route path="/profile" element={<ProfilePage />} />
            <Route path="/status" element={<StatusPage />} />
            <Route path="*" element={<NotFoundPage />} />
          </Routes>
        </Suspense>
      </PageErrorBoundary>
    </Shell>
  );
}

/**
 * Where each role's work is: a steward's uploads, an admin's requests and exports waiting for
 * review, an auditor's log; a researcher's datasets and recent queries.
 */
function Home({ session }: { session: SessionView }) {
  switch (session.user.role) {
    case 'steward':
      return <Navigate to="/uploads" replace />;
    case 'admin':
      return <AdminHomePage />;
    case 'auditor':
      return <Navigate to="/audit" replace />;
    default:
      return <CatalogPage recent />;
  }
}

function Shell({ children }: { children: React.ReactNode }) {
  const { session, signOut } = useSession();
  const role = session?.user.role;
  return (
    <Box sx={{ minHeight: '100vh' }}>
      <AppBar position="static" elevation={0}>
        <Toolbar sx={{ gap: 2, flexWrap: 'wrap' }}>
          <Typography
            variant="h6"
            component={RouterLink}
            to="/"
            aria-label="medlake: your start page"
            sx={{ fontWeight: 700, color: 'inherit', textDecoration: 'none' }}
          >
            medlake
          </Typography>
          <Stack
            component="nav"
            aria-label="Main"
            direction="row"
            sx={{ flexGrow: 1, flexWrap: 'wrap', columnGap: 1 }}
          >
            <Button
              color="inherit"
              component={RouterLink}
              to={role === 'researcher' ? '/' : '/catalog'}
            >
              Catalog
            </Button>
            {role !== 'auditor' && (
              <Button color="inherit" component={RouterLink} to="/queries">
                Queries
              </Button>
            )}
            {(role === 'steward' || role === 'admin') && (
              <Button color="inherit" component={RouterLink} to="/uploads">
                Uploads
              </Button>
            )}
            {role === 'admin' && <AdministrationMenu />}
            {(role === 'auditor' || role === 'admin') && (
              <Button color="inherit" component={RouterLink} to="/audit">
                Audit log
              </Button>
            )}
            {(role === 'auditor' || role === 'admin') && (
              <Button color="inherit" component={RouterLink} to="/audit/suspicious">
                Suspicious activity
              </Button>
            )}
            <Button color="inherit" component={RouterLink} to="/status">
              Status
            </Button>
          </Stack>
          <Button color="inherit" component={RouterLink} to="/profile">
            {session?.user.name} ({session?.user.role})
          </Button>
          <Button color="inherit" variant="outlined" onClick={() => void signOut()}>
            Sign out
          </Button>
        </Toolbar>
      </AppBar>
      <Container component="main" maxWidth="lg" sx={{ py: 4 }}>
        {children}
      </Container>
    </Box>
  );
}

const administrationPages = [
  ['/admin/users', 'Users and grants'],
  ['/admin/projects', 'Projects'],
  ['/admin/access-requests', 'Access requests'],
  ['/admin/exports', 'Held for review'],
  ['/admin/hospitals', 'Hospitals and stewards'],
  ['/admin/operations', 'Running work and storage'],
] as const;

/** The admin's pages under one menu, so that the bar stays one line at 1280 pixels. */
function AdministrationMenu() {
  const [anchor, setAnchor] = useState<HTMLElement | null>(null);
  return (
    <>
      <Button
        color="inherit"
        id="administration-button"
        aria-haspopup="true"
        aria-controls={anchor ? 'administration-menu' : undefined}
        aria-expanded={anchor ? 'true' : undefined}
        onClick={(event) => setAnchor(event.currentTarget)}
      >
        Administration
      </Button>
      <Menu
        id="administration-menu"
        anchorEl={anchor}
        open={anchor !== null}
        onClose={() => setAnchor(null)}
        slotProps={{ list: { 'aria-labelledby': 'administration-button' } }}
      >
        {administrationPages.map(([path, label]) => (
          <MenuItem key={path} component={RouterLink} to={path} onClick={() => setAnchor(null)}>
            {label}
          </MenuItem>
        ))}
      </Menu>
    </>
  );
}
