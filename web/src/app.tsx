import {
  AppBar,
  Box,
  Button,
  CircularProgress,
  Container,
  Stack,
  Toolbar,
  Typography,
} from '@mui/material';
import { Link as RouterLink, Navigate, Route, Routes } from 'react-router';
import { AccessRequestsPage } from './pages/access-requests-page.tsx';
import { AdminUsersPage } from './pages/admin-users-page.tsx';
import { AuditPage } from './pages/audit-page.tsx';
import { CatalogPage } from './pages/catalog-page.tsx';
import { DatasetPage } from './pages/dataset-page.tsx';
import { FirstStepsPage } from './pages/first-steps-page.tsx';
import { QueryBuilderPage } from './pages/query-builder-page.tsx';
import { QueryHistoryPage } from './pages/query-history-page.tsx';
import { ProfilePage } from './pages/profile-page.tsx';
import { QueryResultPage } from './pages/query-result-page.tsx';
import { SignInPage } from './pages/sign-in-page.tsx';
import { StatusPage } from './pages/status-page.tsx';
import { UploadsPage } from './pages/uploads-page.tsx';
import { useSession } from './session.tsx';

/**
 * The app: the sign-in page for visitors, the first steps for a session that must change its
 * password or set up its authenticator, and the pages of the app for everyone else.
 */
export function App() {
  const { session } = useSession();
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
      <Routes>
        <Route path="/" element={<CatalogPage />} />
        <Route path="/datasets/:id" element={<DatasetPage />} />
        <Route path="/queries" element={<QueryHistoryPage />} />
        <Route path="/queries/new" element={<QueryBuilderPage />} />
        <Route path="/queries/:id" element={<QueryResultPage />} />
        <Route path="/uploads" element={<UploadsPage />} />
        <Route path="/admin/access-requests" element={<AccessRequestsPage />} />
        <Route path="/admin/users" element={<AdminUsersPage />} />
        <Route path="/audit" element={<AuditPage />} />
        <Route path="/profile" element={<ProfilePage />} />
        <Route path="/status" element={<StatusPage />} />
        <Route path="*" element={<Navigate to="/" replace />} />
      </Routes>
    </Shell>
  );
}

function Shell({ children }: { children: React.ReactNode }) {
  const { session, signOut } = useSession();
  const role = session?.user.role;
  return (
    <Box sx={{ minHeight: '100vh' }}>
      <AppBar position="static" elevation={0}>
        <Toolbar sx={{ gap: 2, flexWrap: 'wrap' }}>
          <Typography variant="h6" component="span" sx={{ fontWeight: 700 }}>
            medlake
          </Typography>
          <Stack component="nav" aria-label="Main" direction="row" spacing={1} sx={{ flexGrow: 1 }}>
            <Button color="inherit" component={RouterLink} to="/">
              Catalog
            </Button>
            <Button color="inherit" component={RouterLink} to="/queries">
              Queries
            </Button>
            {(role === 'steward' || role === 'admin') && (
              <Button color="inherit" component={RouterLink} to="/uploads">
                Uploads
              </Button>
            )}
            {role === 'admin' && (
              <>
                <Button color="inherit" component={RouterLink} to="/admin/users">
                  Users and grants
                </Button>
                <Button color="inherit" component={RouterLink} to="/admin/access-requests">
                  Access requests
                </Button>
              </>
            )}
            {(role === 'auditor' || role === 'admin') && (
              <Button color="inherit" component={RouterLink} to="/audit">
                Audit log
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
