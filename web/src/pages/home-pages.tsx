import {
  accessRequestPageSchema,
  exportReviewListSchema,
  resultReviewListSchema,
  queryJobPageSchema,
  type userRoleSchema,
} from '@medlake/shared';
import {
  Alert,
  Button,
  Card,
  CardActions,
  CardContent,
  CircularProgress,
  Stack,
  Typography,
} from '@mui/material';
import { useQuery } from '@tanstack/react-query';
import { Link as RouterLink, useLocation } from 'react-router';
import { api, messageOf } from '../api.ts';
import { formatDateTime } from '../format.ts';
import { useSession } from '../session.tsx';
import type { z } from 'zod';

type UserRole = z.infer<typeof userRoleSchema>;

/** What waits for an administrator: access requests to decide and exports to review. */
export function AdminHomePage() {
  const requests = useQuery({
    queryKey: ['admin-access-requests', 'waiting'],
    queryFn: () =>
      api(
        accessRequestPageSchema,
        'GET',
        '/api/v1/admin/access-requests?status=pending&page=1&pageSize=5',
      ),
  });
  const exports = useQuery({
    queryKey: ['admin-exports'],
    queryFn: () => api(exportReviewListSchema, 'GET', '/api/v1/admin/exports'),
  });
  const results = useQuery({
    queryKey: ['admin-results'],
    queryFn: () => api(resultReviewListSchema, 'GET', '/api/v1/admin/results'),
  });
  const waiting = [
    {
      title: 'Access requests',
      to: '/admin/access-requests',
      query: requests,
      count: requests.data?.total,
      none: 'No request is waiting for a decision.',
      some: (n: number) => `${n} ${n === 1 ? 'request waits' : 'requests wait'} for a decision`,
      lines: requests.data?.requests.map(
        (request) =>
          `${request.userEmail} asks for ${request.level} access to ${request.datasetId}`,
      ),
    },
    {
      title: 'Results held in the airlock',
      to: '/admin/exports',
      query: results,
      count: results.data?.results.length,
      none: 'No result is held for review.',
      some: (n: number) => `${n} ${n === 1 ? 'result waits' : 'results wait'} for your review`,
      lines: results.data?.results
        .slice(0, 5)
        .map(
          (item) =>
            `${item.userEmail}: a query on ${item.dataset}${item.finishedAt ? `, ${formatDateTime(item.finishedAt)}` : ''}`,
        ),
    },
    {
      title: 'Exports to review',
      to: '/admin/exports',
      query: exports,
      count: exports.data?.exports.length,
      none: 'No export waits in the airlock.',
      some: (n: number) => `${n} ${n === 1 ? 'export waits' : 'exports wait'} for your review`,
      lines: exports.data?.exports
        .slice(0, 5)
        .map((item) => `${item.userEmail}: ${item.fileName}, ${formatDateTime(item.createdAt)}`),
    },
  ];
  return (
    <Stack spacing={2}>
      <Typography variant="h4" component="h1">
        Waiting for you
      </Typography>
      {waiting.map((item) => (
        <Card key={item.title} variant="outlined" component="section" aria-label={item.title}>
          <CardContent>
            <Typography variant="h6" component="h2" gutterBottom>
              {item.title}
            </Typography>
            {item.query.isPending && <CircularProgress aria-label={`Loading ${item.title}`} />}
            {item.query.isError && <Alert severity="error">{messageOf(item.query.error)}</Alert>}
            {item.count !== undefined && (
              <Typography>{item.count === 0 ? item.none : item.some(item.count)}</Typography>
            )}
            {item.lines && item.lines.length > 0 && (
              <Stack component="ul" sx={{ pl: 2, mb: 0 }}>
                {item.lines.map((line) => (
                  <Typography component="li" key={line}>
                    {line}
                  </Typography>
                ))}
              </Stack>
            )}
          </CardContent>
          <CardActions>
            <Button component={RouterLink} to={item.to}>
              Open {item.title.toLowerCase()}
            </Button>
          </CardActions>
        </Card>
      ))}
    </Stack>
  );
}

/** A researcher's latest queries, under the catalog: where their work left off. */
export function RecentQueries() {
  const queries = useQuery({
    queryKey: ['queries', 'recent'],
    queryFn: () => api(queryJobPageSchema, 'GET', '/api/v1/queries?page=1&pageSize=5'),
  });
  if (!queries.data || queries.data.total === 0) return null;
  return (
    <Card variant="outlined" component="section" aria-labelledby="recent-queries">
      <CardContent>
        <Typography variant="h6" component="h2" id="recent-queries" gutterBottom>
          Your recent queries
        </Typography>
        <Stack component="ul" spacing={0.5} sx={{ pl: 2, m: 0 }}>
          {queries.data.queries.map((query) => (
            <li key={query.id}>
              <RouterLink to={`/queries/${query.id}`}>
                {formatDateTime(query.createdAt)}, {query.dataset}
              </RouterLink>
              : {query.status === 'succeeded' ? (query.summary?.keyPoints[0] ?? '') : query.status}
            </li>
          ))}
        </Stack>
      </CardContent>
      <CardActions>
        <Button component={RouterLink} to="/queries">
          All your queries
        </Button>
        <Button component={RouterLink} to="/queries/new">
          New query
        </Button>
      </CardActions>
    </Card>
  );
}

const roleNames: Record<UserRole, string> = {
  researcher: 'researchers',
  steward: 'data stewards',
  admin: 'administrators',
  auditor: 'auditors',
  custodian: 'custodians',
};

/**
 * A page for some roles only: anyone else is told which role it needs, and nothing of the page
 * (its forms, its requests to the server) is shown.
 */
export function RequireRole(props: { roles: UserRole[]; children: React.ReactNode }) {
  const { session } = useSession();
  const role = session?.user.role;
  if (role && props.roles.includes(role)) return <>{props.children}</>;
  const needed = props.roles.map((item) => roleNames[item]);
  return (
    <Stack spacing={2}>
      <Typography variant="h4" component="h1">
        Not for your role
      </Typography>
      <Alert severity="info">
        This page is for {needed.join(' and ')}. You are signed in as{' '}
        {role === 'admin' || role === 'auditor' ? 'an' : 'a'} {role}. An administrator can change
        your role if your work needs it.
      </Alert>
      <div>
        <Button variant="contained" component={RouterLink} to="/">
          Go to your start page
        </Button>
      </div>
    </Stack>
  );
}

/** An address the app has no page for. */
export function NotFoundPage() {
  const location = useLocation();
  return (
    <Stack spacing={2}>
      <Typography variant="h4" component="h1">
        Page not found
      </Typography>
      <Alert severity="warning">
        medlake has no page at <code>{location.pathname}</code>. The link may be mistyped or out of
        date.
      </Alert>
      <Stack direction="row" spacing={1}>
        <Button variant="contained" component={RouterLink} to="/">
          Go to your start page
        </Button>
        <Button component={RouterLink} to="/catalog">
          Catalog
        </Button>
      </Stack>
    </Stack>
  );
}
