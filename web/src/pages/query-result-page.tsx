import {
  exportLinkSchema,
  histogramBinSchema,
  queryJobSchema,
  resultPageSchema,
  type ExportLink,
  type HistogramBin,
  type QueryJobView,
} from '@medlake/shared';
import {
  Alert,
  Button,
  Card,
  CardContent,
  Chip,
  CircularProgress,
  LinearProgress,
  Link,
  MenuItem,
  Stack,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TableSortLabel,
  TextField,
  Typography,
} from '@mui/material';
import { BarChart } from '@mui/x-charts/BarChart';
import { LineChart } from '@mui/x-charts/LineChart';
import { keepPreviousData, useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link as RouterLink, useParams } from 'react-router';
import { SaveQueryButton } from '../components/save-query-dialog.tsx';
import { formatBytes } from '../format.ts';
import { api, messageOf } from '../api.ts';
import { useServerPage } from '../components/server-page.tsx';
import { WideTable } from '../components/wide-table.tsx';

/**
 * One query: its progress while it runs (with cancel), then the key points first, a chart
 * that fits the result, the table paged and sorted on the server, and exports.
 */
export function QueryResultPage() {
  const { id = '' } = useParams();
  const job = useQuery({
    queryKey: ['query', id],
    queryFn: () => api(queryJobSchema, 'GET', `/api/v1/queries/${id}?wait=10`),
    refetchInterval: (query) =>
      query.state.data && ['queued', 'running'].includes(query.state.data.status) ? 500 : false,
  });
  const cancel = useMutation({
    mutationFn: () => api(queryJobSchema, 'DELETE', `/api/v1/queries/${id}`),
    onSuccess: () => job.refetch(),
  });

  if (job.isPending) return <CircularProgress aria-label="Loading the query" />;
  if (job.isError) return <Alert severity="error">{messageOf(job.error)}</Alert>;
  const data = job.data;
  return (
    <Stack spacing={3}>
      <Stack
        direction={{ xs: 'column', sm: 'row' }}
        spacing={2}
        sx={{ justifyContent: 'space-between', alignItems: { sm: 'center' } }}
      >
        <Typography variant="h4" component="h1">
          Query on {data.dataset}
        </Typography>
        <Stack direction="row" spacing={1}>
          <Button component={RouterLink} to={`/queries/new?from=${data.id}`}>
            Copy into builder
          </Button>
          <SaveQueryButton spec={data.spec} />
        </Stack>
      </Stack>
      {(data.status === 'queued' || data.status === 'running') && (
        <Card variant="outlined">
          <CardContent>
            <Typography gutterBottom>
              {data.status === 'queued' ? 'Waiting for its turn…' : 'Running…'}
            </Typography>
            <LinearProgress
              variant={data.progress ? 'determinate' : 'indeterminate'}
              value={data.progress?.percent ?? 0}
              aria-label="Query progress"
            />
            <Button sx={{ mt: 2 }} onClick={() => cancel.mutate()} disabled={cancel.isPending}>
              Cancel the query
            </Button>
          </CardContent>
        </Card>
      )}
      {data.status === 'failed' && (
        <Alert severity="error">
          The query failed: {data.error?.message}. Change the query and run it again.
        </Alert>
      )}
      {data.status === 'cancelled' && <Alert severity="info">The query was cancelled.</Alert>}
      {data.status === 'succeeded' && data.summary && <Result job={data} />}
    </Stack>
  );
}

function Result({ job }: { job: QueryJobView }) {
  const summary = job.summary!;
  return (
    <>
      <Card variant="outlined" component="section" aria-labelledby="key-points">
        <CardContent>
          <Typography variant="h6" component="h2" id="key-points" gutterBottom>
            Key points
          </Typography>
          <Stack component="ul" spacing={0.5} sx={{ pl: 2, m: 0 }}>
            {summary.keyPoints.map((point) => (
              <Typography component="li" key={point}>
                {point}
              </Typography>
            ))}
          </Stack>
          <Stack direction="row" spacing={1} sx={{ mt: 2 }}>
            <Chip size="small" label={`${summary.accessLevel} access`} />
            {summary.withheldGroups > 0 && (
              <Chip
                size="small"
                color="warning"
                label={`${summary.withheldGroups.toLocaleString('en-US')} ${summary.withheldGroups === 1 ? 'group' : 'groups'} of fewer than ${summary.threshold} patients left out`}
              />
            )}
            {summary.suppressedGroups > 0 && (
              <Chip
                size="small"
                color="warning"
                label={`${summary.suppressedGroups} ${summary.suppressedGroups === 1 ? 'group' : 'groups'} suppressed`}
              />
            )}
          </Stack>
        </CardContent>
      </Card>
      <ResultChart job={job} />
      <ResultTable job={job} />
      <Exports job={job} />
    </>
  );
}

/** Groups a chart shows at most; a result with more is a table, not a picture. */
const maxChartGroups = 500;

/**
 * A chart when the result has one group column and a counted or averaged measure: a line over
 * time for time buckets, bars otherwise. Suppressed groups have no number to draw; the caption
 * says so.
 */
function ResultChart({ job }: { job: QueryJobView }) {
  const histogram = job.summary!.columns.find((column) => column.type === 'histogram');
  return histogram ? (
    <HistogramChart job={job} column={histogram.name} />
  ) : (
    <GroupChart job={job} />
  );
}

function GroupChart({ job }: { job: QueryJobView }) {
  const columns = job.summary!.columns;
  const groups = columns.filter((column) => column.kind === 'group');
  const group = groups.length === 1 ? groups[0] : undefined;
  const measure = columns.find(
    (column) =>
      column.kind === 'measure' && ['count', 'patients', 'mean'].includes(column.fn ?? ''),
  );
  const drawable = Boolean(group && measure) && job.summary!.rowCount <= maxChartGroups;
  const page = useQuery({
    queryKey: ['query-chart', job.id],
    queryFn: () =>
      api(
        resultPageSchema,
        'GET',
        `/api/v1/queries/${job.id}/results?pageSize=${maxChartGroups}&sort=${group!.name}&direction=asc`,
      ),
    enabled: drawable,
  });
  if (!drawable || !page.data || !group || !measure) return null;
  const points = page.data.rows
    .filter((row) => typeof row[measure.name] === 'number')
    .map((row) => ({ label: String(row[group.name] ?? '—'), value: row[measure.name] as number }));
  if (points.length < 2) return null;
  const overTime = group.type === 'date' || group.type === 'timestamp';
  const title = `${measure.name} by ${group.name}`;
  return (
    <Card variant="outlined" component="figure" sx={{ m: 0 }} aria-label={title}>
      <CardContent>
        <Typography variant="h6" component="figcaption" gutterBottom>
          {title}
          {points.length < page.data.rows.length &&
            ` (${page.data.rows.length - points.length} suppressed ${page.data.rows.length - points.length === 1 ? 'group is' : 'groups are'} not drawn)`}
        </Typography>
        {overTime ? (
          <LineChart
            height={280}
            xAxis={[{ scaleType: 'point', data: points.map((point) => point.label) }]}
            series={[{ data: points.map((point) => point.value), label: measure.name }]}
          />
        ) : (
          <BarChart
            height={280}
            xAxis={[{ scaleType: 'band', data: points.map((point) => point.label) }]}
            series={[{ data: points.map((point) => point.value), label: measure.name }]}
          />
        )}
      </CardContent>
    </Card>
  );
}

/**
 * A histogram’s bins as bars: of the one total, or of the group chosen. Hidden bins ("suppressed")
 * have no height to draw; the caption counts them.
 */
function HistogramChart({ job, column }: { job: QueryJobView; column: string }) {
  const groups = job.summary!.columns.filter((item) => item.kind === 'group');
  const [chosen, setChosen] = useState(0);
  const page = useQuery({
    queryKey: ['query-chart', job.id],
    queryFn: () =>
      api(resultPageSchema, 'GET', `/api/v1/queries/${job.id}/results?pageSize=${maxChartGroups}`),
  });
  if (!page.data) return null;
  const rows = page.data.rows.filter((row) => Array.isArray(row[column]));
  const row = rows[chosen] ?? rows[0];
  if (!row) return null;
  const bins = histogramBinSchema.array().parse(row[column]);
  const drawn = bins.filter((bin) => typeof bin.count === 'number');
  const groupName = (item: Record<string, unknown>) =>
    groups.map((group) => String(item[group.name] ?? '—')).join(', ');
  const title = `Histogram of ${column.replace(/_histogram$/, '')}${groups.length > 0 ? ` for ${groupName(row)}` : ''}`;
  return (
    <Card variant="outlined" component="figure" sx={{ m: 0 }} aria-label={title}>
      <CardContent>
        <Typography variant="h6" component="figcaption" gutterBottom>
          {title}
          {drawn.length < bins.length &&
            ` (${bins.length - drawn.length} suppressed ${bins.length - drawn.length === 1 ? 'bin is' : 'bins are'} not drawn)`}
        </Typography>
        {groups.length > 0 && rows.length > 1 && (
          <TextField
            select
            size="small"
            label="Group"
            value={String(Math.min(chosen, rows.length - 1))}
            onChange={(event) => setChosen(Number(event.target.value))}
          >
            {rows.map((item, index) => (
              <MenuItem key={index} value={String(index)}>
                {groupName(item)}
              </MenuItem>
            ))}
          </TextField>
        )}
        <BarChart
          height={280}
          xAxis={[
            { scaleType: 'band', data: drawn.map((bin) => String(bin.bin)), label: 'bin from' },
          ]}
          series={[{ data: drawn.map((bin) => bin.count as number), label: 'rows' }]}
        />
      </CardContent>
    </Card>
  );
}

function ResultTable({ job }: { job: QueryJobView }) {
  const paging = useServerPage(25, [25, 100, 500]);
  const [sort, setSort] = useState<{ column: string; direction: 'asc' | 'desc' }>();
  const rows = useQuery({
    queryKey: ['query-results', job.id, ...paging.key, sort?.column, sort?.direction],
    queryFn: () => {
      const query = paging.query(sort ? { sort: sort.column, direction: sort.direction } : {});
      return api(resultPageSchema, 'GET', `/api/v1/queries/${job.id}/results?${query}`);
    },
    placeholderData: keepPreviousData,
  });
  const columns = job.summary!.columns;
  const toggle = (column: string) =>
    setSort((current) =>
      current?.column === column && current.direction === 'asc'
        ? { column, direction: 'desc' }
        : { column, direction: 'asc' },
    );
  return (
    <Card variant="outlined" component="section" aria-labelledby="result-table">
      <CardContent>
        <Typography variant="h6" component="h2" id="result-table" gutterBottom>
          Result
        </Typography>
        {rows.isError && <Alert severity="error">{messageOf(rows.error)}</Alert>}
        <WideTable labelledBy="result-table">
          <TableHead>
            <TableRow>
              {columns.map((column) => (
                <TableCell key={column.name} align={column.kind === 'measure' ? 'right' : 'left'}>
                  <TableSortLabel
                    active={sort?.column === column.name}
                    direction={sort?.column === column.name ? sort.direction : 'asc'}
                    onClick={() => toggle(column.name)}
                  >
                    {column.name}
                  </TableSortLabel>
                </TableCell>
              ))}
            </TableRow>
          </TableHead>
          <TableBody>
            {(rows.data?.rows ?? []).map((row, index) => (
              <TableRow key={index}>
                {columns.map((column) => (
                  <TableCell key={column.name} align={column.kind === 'measure' ? 'right' : 'left'}>
                    {formatCell(row[column.name])}
                  </TableCell>
                ))}
              </TableRow>
            ))}
            {rows.data?.rows.length === 0 && (
              <TableRow>
                <TableCell colSpan={columns.length}>No rows matched.</TableCell>
              </TableRow>
            )}
          </TableBody>
        </WideTable>
        {paging.pagination(rows.data?.totalRows ?? job.summary!.rowCount)}
      </CardContent>
    </Card>
  );
}

function Exports({ job }: { job: QueryJobView }) {
  const [links, setLinks] = useState<ExportLink[]>([]);
  const make = useMutation({
    mutationFn: (format: 'csv' | 'parquet') =>
      api(exportLinkSchema, 'POST', `/api/v1/queries/${job.id}/exports`, { format }),
    onSuccess: (link) =>
      setLinks((current) => [link, ...current.filter((item) => item.format !== link.format)]),
  });
  return (
    <Card variant="outlined" component="section" aria-labelledby="exports">
      <CardContent>
        <Typography variant="h6" component="h2" id="exports" gutterBottom>
          Download
        </Typography>
        <Stack direction="row" spacing={1}>
          <Button variant="outlined" onClick={() => make.mutate('csv')} disabled={make.isPending}>
            Export CSV
          </Button>
          <Button
            variant="outlined"
            onClick={() => make.mutate('parquet')}
            disabled={make.isPending}
          >
            Export Parquet
          </Button>
        </Stack>
        {make.isError && (
          <Alert severity="error" sx={{ mt: 2 }}>
            {messageOf(make.error)}
          </Alert>
        )}
        <Stack spacing={1} sx={{ mt: 2 }}>
          {links.map((link) =>
            link.url && link.expiresAt ? (
              <Typography key={link.exportId}>
                <Link href={link.url} download={link.fileName}>
                  {link.fileName}
                </Link>{' '}
                ({formatBytes(link.bytes)}), link works until{' '}
                {new Date(link.expiresAt).toLocaleTimeString()} while you keep access to the dataset
              </Typography>
            ) : (
              <Alert key={link.exportId} severity={link.review === 'rejected' ? 'error' : 'info'}>
                {link.review === 'rejected'
                  ? `${link.fileName} was not approved for download.`
                  : `${link.fileName} waits for an administrator's review: ${link.report.checks
                      .filter((check) => !check.passed)
                      .map((check) => check.detail)
                      .join(' ')} Export it again once it is approved.`}
              </Alert>
            ),
          )}
        </Stack>
      </CardContent>
    </Card>
  );
}

function formatCell(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (Array.isArray(value)) {
    return (value as HistogramBin[])
      .map((bin) => `${bin.bin}: ${formatCell(bin.count)}`)
      .join(', ');
  }
  if (typeof value === 'number') {
    return Number.isInteger(value)
      ? value.toLocaleString()
      : value.toLocaleString(undefined, { maximumFractionDigits: 3 });
  }
  return String(value);
}
