import { queryJobPageSchema, queryJobSchema, savedQueryPageSchema } from '@medlake/shared';
import {
  Alert,
  Button,
  Chip,
  CircularProgress,
  Stack,
  Tab,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Tabs,
  Typography,
} from '@mui/material';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link as RouterLink, useNavigate, useSearchParams } from 'react-router';
import { z } from 'zod';
import { api, messageOf } from '../api.ts';
import { useServerPage } from '../components/server-page.tsx';
import { WideTable } from '../components/wide-table.tsx';

/**
 * The user's queries, newest first, and the saved queries they may use (their own and those
 * shared with their projects); both paged on the server. Each can be run again or copied
 * into the builder.
 */
export function QueryHistoryPage() {
  const [params, setParams] = useSearchParams();
  const tab = params.get('tab') === 'saved' ? 'saved' : 'history';
  return (
    <Stack spacing={2}>
      <Stack direction="row" sx={{ justifyContent: 'space-between', alignItems: 'center' }}>
        <Typography variant="h4" component="h1">
          Queries
        </Typography>
        <Button variant="contained" component={RouterLink} to="/queries/new">
          New query
        </Button>
      </Stack>
      <Tabs
        value={tab}
        onChange={(_event, next: string) => setParams(next === 'saved' ? { tab: 'saved' } : {})}
      >
        <Tab value="history" label="History" />
        <Tab value="saved" label="Saved" />
      </Tabs>
      {tab === 'history' ? <History /> : <Saved />}
    </Stack>
  );
}

/** Runs a spec again: current releases and the user's access as they are now. */
function useRunAgain() {
  const navigate = useNavigate();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (spec: unknown) => api(queryJobSchema, 'POST', '/api/v1/queries', spec),
    onSuccess: async (job) => {
      await client.invalidateQueries({ queryKey: ['queries'] });
      await navigate(`/queries/${job.id}`);
    },
  });
}

function History() {
  const rerun = useRunAgain();
  const paging = useServerPage();
  const queries = useQuery({
    queryKey: ['queries', ...paging.key],
    queryFn: () => api(queryJobPageSchema, 'GET', `/api/v1/queries?${paging.query()}`),
    placeholderData: keepPreviousData,
  });
  if (queries.isPending) return <CircularProgress aria-label="Loading your queries" />;
  if (queries.isError) return <Alert severity="error">{messageOf(queries.error)}</Alert>;
  if (queries.data.total === 0) {
    return <Alert severity="info">You have run no query yet. Start with “New query”.</Alert>;
  }
  return (
    <>
      {rerun.isError && <Alert severity="error">{messageOf(rerun.error)}</Alert>}
      <WideTable label="Your queries">
        <TableHead>
          <TableRow>
            <TableCell>Started</TableCell>
            <TableCell>Dataset</TableCell>
            <TableCell>Status</TableCell>
            <TableCell>Key point</TableCell>
            <TableCell />
          </TableRow>
        </TableHead>
        <TableBody>
          {queries.data.queries.map((query) => (
            <TableRow key={query.id} hover>
              <TableCell>
                <RouterLink to={`/queries/${query.id}`}>
                  {new Date(query.createdAt).toLocaleString()}
                </RouterLink>
              </TableCell>
              <TableCell>{query.dataset}</TableCell>
              <TableCell>
                <Chip
                  size="small"
                  label={query.status}
                  color={
                    query.status === 'succeeded'
                      ? 'success'
                      : query.status === 'failed'
                        ? 'error'
                        : 'default'
                  }
                />
              </TableCell>
              <TableCell sx={{ minWidth: 240 }}>
                {query.summary?.keyPoints[0] ?? query.error?.message ?? ''}
              </TableCell>
              <TableCell sx={{ whiteSpace: 'nowrap' }}>
                <Button
                  size="small"
                  onClick={() => rerun.mutate(query.spec)}
                  disabled={rerun.isPending}
                >
                  Run again
                </Button>
                <Button size="small" component={RouterLink} to={`/queries/new?from=${query.id}`}>
                  Copy
                </Button>
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </WideTable>
      {paging.pagination(queries.data.total)}
    </>
  );
}

function Saved() {
  const client = useQueryClient();
  const rerun = useRunAgain();
  const paging = useServerPage();
  const saved = useQuery({
    queryKey: ['saved-queries', ...paging.key],
    queryFn: () => api(savedQueryPageSchema, 'GET', `/api/v1/saved-queries?${paging.query()}`),
    placeholderData: keepPreviousData,
  });
  const remove = useMutation({
    mutationFn: (id: string) => api(z.null(), 'DELETE', `/api/v1/saved-queries/${id}`),
    onSuccess: () => client.invalidateQueries({ queryKey: ['saved-queries'] }),
  });
  if (saved.isPending) return <CircularProgress aria-label="Loading saved queries" />;
  if (saved.isError) return <Alert severity="error">{messageOf(saved.error)}</Alert>;
  if (saved.data.total === 0) {
    return (
      <Alert severity="info">
        No saved query yet. Save one from the builder or a result; share it with a project and its
        members find it here.
      </Alert>
    );
  }
  return (
    <>
      {(rerun.isError || remove.isError) && (
        <Alert severity="error">{messageOf(rerun.error ?? remove.error)}</Alert>
      )}
      <WideTable label="Saved queries">
        <TableHead>
          <TableRow>
            <TableCell>Name</TableCell>
            <TableCell>Dataset</TableCell>
            <TableCell>Shared with</TableCell>
            <TableCell>By</TableCell>
            <TableCell />
          </TableRow>
        </TableHead>
        <TableBody>
          {saved.data.queries.map((query) => (
            <TableRow key={query.id} hover>
              <TableCell>
                {query.name}
                {query.description && (
                  <Typography variant="body2" color="text.secondary">
                    {query.description}
                  </Typography>
                )}
              </TableCell>
              <TableCell>{query.datasetId}</TableCell>
              <TableCell>{query.projectId ?? 'only you'}</TableCell>
              <TableCell>{query.mine ? 'you' : query.author}</TableCell>
              <TableCell sx={{ whiteSpace: 'nowrap' }}>
                <Button
                  size="small"
                  onClick={() => rerun.mutate(query.spec)}
                  disabled={rerun.isPending}
                  aria-label={`Run: ${query.name}`}
                >
                  Run
                </Button>
                <Button
                  size="small"
                  component={RouterLink}
                  to={`/queries/new?saved=${query.id}`}
                  aria-label={`Open in builder: ${query.name}`}
                >
                  Open in builder
                </Button>
                {query.mine && (
                  <Button
                    size="small"
                    color="error"
                    onClick={() => remove.mutate(query.id)}
                    disabled={remove.isPending}
                    aria-label={`Delete: ${query.name}`}
                  >
                    Delete
                  </Button>
                )}
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </WideTable>
      {paging.pagination(saved.data.total)}
    </>
  );
}
