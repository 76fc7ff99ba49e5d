import { queryJobSchema } from '@medlake/shared';
import {
  Alert,
  Button,
  Chip,
  CircularProgress,
  Stack,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Typography,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link as RouterLink, useNavigate } from 'react-router';
import { z } from 'zod';
import { api, messageOf } from '../api.ts';

const listSchema = z.object({ queries: z.array(queryJobSchema) });

/** The user's latest queries, newest first, each opening its result. */
export function QueryHistoryPage() {
  const navigate = useNavigate();
  const client = useQueryClient();
  const queries = useQuery({
    queryKey: ['queries'],
    queryFn: () => api(listSchema, 'GET', '/api/v1/queries'),
  });
  // The same spec again: current releases and the user's access as they are now.
  const rerun = useMutation({
    mutationFn: (spec: unknown) => api(queryJobSchema, 'POST', '/api/v1/queries', spec),
    onSuccess: async (job) => {
      await client.invalidateQueries({ queryKey: ['queries'] });
      await navigate(`/queries/${job.id}`);
    },
  });
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
      {queries.isPending && <CircularProgress aria-label="Loading your queries" />}
      {queries.isError && <Alert severity="error">{messageOf(queries.error)}</Alert>}
      {rerun.isError && <Alert severity="error">{messageOf(rerun.error)}</Alert>}
      {queries.data?.queries.length === 0 && (
        <Alert severity="info">You have run no query yet. Start with “New query”.</Alert>
      )}
      {queries.data && queries.data.queries.length > 0 && (
        <Table size="small" aria-label="Your queries">
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
                <TableCell>{query.summary?.keyPoints[0] ?? query.error?.message ?? ''}</TableCell>
                <TableCell>
                  <Button
                    size="small"
                    onClick={() => rerun.mutate(query.spec)}
                    disabled={rerun.isPending}
                  >
                    Run again
                  </Button>
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
    </Stack>
  );
}
