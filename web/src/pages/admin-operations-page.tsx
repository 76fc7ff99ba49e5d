import { queryJobSchema, runningWorkSchema, storageUsageSchema } from '@medlake/shared';
import {
  Alert,
  Button,
  Card,
  CardContent,
  CircularProgress,
  LinearProgress,
  Stack,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Typography,
} from '@mui/material';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, messageOf } from '../api.ts';
import { useServerPage } from '../components/server-page.tsx';
import { formatBytes, formatDateTime } from '../format.ts';
import { WideTable } from '../components/wide-table.tsx';

/** What the platform is doing and holding: queries and ingests under way, storage used. */
export function AdminOperationsPage() {
  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Running work and storage
      </Typography>
      <RunningWork />
      <Storage />
    </Stack>
  );
}

function RunningWork() {
  const client = useQueryClient();
  const paging = useServerPage();
  const work = useQuery({
    queryKey: ['admin-jobs', ...paging.key],
    queryFn: () => api(runningWorkSchema, 'GET', `/api/v1/admin/jobs?${paging.query()}`),
    placeholderData: keepPreviousData,
    refetchInterval: 2000,
  });
  const stop = useMutation({
    mutationFn: (id: string) => api(queryJobSchema, 'DELETE', `/api/v1/admin/queries/${id}`),
    onSuccess: () => client.invalidateQueries({ queryKey: ['admin-jobs'] }),
  });
  return (
    <Card variant="outlined" component="section" aria-labelledby="running-work">
      <CardContent>
        <Typography variant="h6" component="h2" id="running-work" gutterBottom>
          Work under way
        </Typography>
        {work.isPending && <CircularProgress aria-label="Loading the work under way" />}
        {work.isError && <Alert severity="error">{messageOf(work.error)}</Alert>}
        {stop.isError && <Alert severity="error">{messageOf(stop.error)}</Alert>}
        {work.data && (
          <Stack spacing={2}>
            <Typography>
              {work.data.total === 0
                ? 'No query is queued or running.'
                : `${work.data.total} ${work.data.total === 1 ? 'query' : 'queries'} queued or running, oldest first.`}
            </Typography>
            {work.data.total > 0 && (
              <>
                <WideTable label="Queries queued or running">
                  <TableHead>
                    <TableRow>
                      <TableCell>Submitted</TableCell>
                      <TableCell>User</TableCell>
                      <TableCell>Dataset</TableCell>
                      <TableCell>Status</TableCell>
                      <TableCell sx={{ minWidth: 120 }}>Progress</TableCell>
                      <TableCell />
                    </TableRow>
                  </TableHead>
                  <TableBody>
                    {work.data.queries.map((query) => (
                      <TableRow key={query.id}>
                        <TableCell>{formatDateTime(query.createdAt)}</TableCell>
                        <TableCell>{query.user}</TableCell>
                        <TableCell>{query.dataset}</TableCell>
                        <TableCell>{query.status}</TableCell>
                        <TableCell>
                          {query.percent === null ? (
                            '—'
                          ) : (
                            <LinearProgress
                              variant="determinate"
                              value={query.percent}
                              aria-label={`Progress of ${query.user}'s query`}
                            />
                          )}
                        </TableCell>
                        <TableCell>
                          <Button
                            size="small"
                            color="error"
                            onClick={() => stop.mutate(query.id)}
                            disabled={stop.isPending}
                            aria-label={`Stop ${query.user}'s query`}
                          >
                            Stop
                          </Button>
                        </TableCell>
                      </TableRow>
                    ))}
                  </TableBody>
                </WideTable>
                {paging.pagination(work.data.total)}
              </>
            )}
            <Typography>
              {work.data.ingests.length === 0
                ? 'No upload is being ingested.'
                : `Ingesting: ${work.data.ingests
                    .map((ingest) => `${ingest.hospital} ${ingest.month} (${ingest.dataset})`)
                    .join(', ')}.`}
            </Typography>
          </Stack>
        )}
      </CardContent>
    </Card>
  );
}

function Storage() {
  const usage = useQuery({
    queryKey: ['admin-storage'],
    queryFn: () => api(storageUsageSchema, 'GET', '/api/v1/admin/storage'),
  });
  return (
    <Card variant="outlined" component="section" aria-labelledby="storage">
      <CardContent>
        <Stack
          direction="row"
          sx={{ justifyContent: 'space-between', alignItems: 'center', mb: 1 }}
        >
          <Typography variant="h6" component="h2" id="storage">
            Storage
          </Typography>
          <Button onClick={() => void usage.refetch()} disabled={usage.isFetching}>
            Measure again
          </Button>
        </Stack>
        {usage.isPending && <CircularProgress aria-label="Measuring storage" />}
        {usage.isError && <Alert severity="error">{messageOf(usage.error)}</Alert>}
        {usage.data && (
          <Stack spacing={2}>
            <WideTable label="Storage zones">
              <TableHead>
                <TableRow>
                  <TableCell>Zone ({usage.data.storage})</TableCell>
                  <TableCell align="right">Objects</TableCell>
                  <TableCell align="right">Size</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {usage.data.zones.map((zone) => (
                  <TableRow key={zone.zone}>
                    <TableCell>{zoneNames[zone.zone]}</TableCell>
                    <TableCell align="right">{zone.objects.toLocaleString()}</TableCell>
                    <TableCell align="right">{formatBytes(zone.bytes)}</TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </WideTable>
            <WideTable label="Datasets in the lake">
              <TableHead>
                <TableRow>
                  <TableCell>Dataset</TableCell>
                  <TableCell align="right">Current releases</TableCell>
                  <TableCell align="right">Rows</TableCell>
                  <TableCell align="right">Delivered as CSV</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {usage.data.datasets.map((dataset) => (
                  <TableRow key={dataset.id}>
                    <TableCell>{dataset.title}</TableCell>
                    <TableCell align="right">{dataset.currentReleases}</TableCell>
                    <TableCell align="right">{dataset.rows.toLocaleString()}</TableCell>
                    <TableCell align="right">{formatBytes(dataset.sourceBytes)}</TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </WideTable>
          </Stack>
        )}
      </CardContent>
    </Card>
  );
}

const zoneNames = {
  landing: 'Landing (uploads being ingested)',
  lake: 'Lake (de-identified Parquet)',
  results: 'Results (query results and exports)',
} as const;
