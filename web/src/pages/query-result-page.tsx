import {
  exportLinkSchema,
  histogramBinSchema,
  queryJobSchema,
  resultPageSchema,
  type ExportLink,
  type QueryJobView,
  type timeBuckets,
} from '@medlake/shared';
import {
  Alert,
  Box,
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
  TablePagination,
  TableSortLabel,
  TextField,
  ToggleButton,
  ToggleButtonGroup,
  Typography,
} from '@mui/material';
import { BarChart } from '@mui/x-charts/BarChart';
import { LineChart } from '@mui/x-charts/LineChart';
import { keepPreviousData, useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link as RouterLink, useParams, useSearchParams } from 'react-router';
import { SaveQueryButton } from '../components/save-query-dialog.tsx';
import { formatBytes, formatDateTime, formatTime } from '../format.ts';
import { api, messageOf } from '../api.ts';
import { WideTable } from '../components/wide-table.tsx';
import {
  bucketsOf,
  chartData,
  chartPlan,
  defaultSort,
  formatBucket,
  formatCell,
  formatNumber,
  type ChartPlan,
} from './result-shape.ts';

type Bucket = (typeof timeBuckets)[number];

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
        <div>
          <Typography variant="h4" component="h1">
            Query on {data.dataset}
          </Typography>
          <Typography color="text.secondary">
            Asked {formatDateTime(data.createdAt)}
            {data.finishedAt && `, finished ${formatDateTime(data.finishedAt)}`}
          </Typography>
        </div>
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
      {data.review?.state === 'pending' && (
        <Alert severity="info">
          Held for an administrator’s review: {data.review.message} Nothing of the result is shown
          until then; come back later.
        </Alert>
      )}
      {data.review?.state === 'rejected' && (
        <Alert severity="error">
          An administrator did not approve this result: {data.review.message}
        </Alert>
      )}
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
      <ResultView job={job} />
      <Exports job={job} />
    </>
  );
}

/** Groups a chart reads at most; a result with more is drawn in part, the table has it all. */
const maxChartGroups = 500;

/** The table's page, page size, sort and view, in the URL: a link or a reload keeps them. */
function useResultParams(job: QueryJobView) {
  const [params, setParams] = useSearchParams();
  const buckets = bucketsOf(job.spec);
  const fallback = defaultSort(job.summary!.columns, buckets);
  const columns = new Set(job.summary!.columns.map((column) => column.name));
  const sortParam = params.get('sort');
  const sort =
    sortParam && columns.has(sortParam)
      ? { column: sortParam, direction: params.get('direction') === 'desc' ? 'desc' : 'asc' }
      : fallback;
  const pageSize = [10, 25, 100, 500].includes(Number(params.get('pageSize')))
    ? Number(params.get('pageSize'))
    : 25;
  const page = Math.max(1, Math.floor(Number(params.get('page')) || 1));
  const view = params.get('view') === 'table' ? 'table' : 'chart';
  const set = (changes: Record<string, string | undefined>) =>
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        for (const [key, value] of Object.entries(changes)) {
          if (value === undefined) next.delete(key);
          else next.set(key, value);
        }
        return next;
      },
      { replace: false },
    );
  return {
    buckets,
    sort: sort as { column: string; direction: 'asc' | 'desc' } | undefined,
    page,
    pageSize,
    view: view as 'chart' | 'table',
    set,
  };
}

/** A result's view: a chart that fits its shape, or the table; the switch is in the URL. */
function ResultView({ job }: { job: QueryJobView }) {
  const state = useResultParams(job);
  return (
    <Card variant="outlined" component="section" aria-labelledby="result-heading">
      <CardContent>
        <Stack
          direction={{ xs: 'column', sm: 'row' }}
          spacing={1}
          sx={{ justifyContent: 'space-between', alignItems: { sm: 'center' }, mb: 1 }}
        >
          <Typography variant="h6" component="h2" id="result-heading">
            Result
          </Typography>
          <ToggleButtonGroup
            exclusive
            size="small"
            value={state.view}
            aria-label="Show the result as"
            onChange={(_event, view: 'chart' | 'table' | null) =>
              view && state.set({ view: view === 'chart' ? undefined : 'table' })
            }
          >
            <ToggleButton value="chart">Chart</ToggleButton>
            <ToggleButton value="table">Table</ToggleButton>
          </ToggleButtonGroup>
        </Stack>
        {state.view === 'chart' ? (
          <ResultChart job={job} buckets={state.buckets} />
        ) : (
          <ResultTable job={job} state={state} />
        )}
      </CardContent>
    </Card>
  );
}

function ResultChart({ job, buckets }: { job: QueryJobView; buckets: Map<string, Bucket> }) {
  const summary = job.summary!;
  const plan = chartPlan(summary.kind, summary.columns, buckets);
  const sortBy = plan.kind === 'lines' || plan.kind === 'bars' ? plan.x : undefined;
  const page = useQuery({
    queryKey: ['query-chart', job.id],
    queryFn: () =>
      api(
        resultPageSchema,
        'GET',
        `/api/v1/queries/${job.id}/results?pageSize=${maxChartGroups}${sortBy ? `&sort=${sortBy}&direction=asc` : ''}`,
      ),
    enabled: plan.kind !== 'none',
  });
  if (plan.kind === 'none')
    return <Alert severity="info">{plan.reason} Switch to the table.</Alert>;
  if (page.isPending) return <CircularProgress aria-label="Loading the chart" />;
  if (page.isError) return <Alert severity="error">{messageOf(page.error)}</Alert>;
  const rows = page.data.rows;
  const partial =
    page.data.totalRows > rows.length
      ? ` The chart draws the first ${rows.length.toLocaleString()} of ${page.data.totalRows.toLocaleString()} rows; the table has them all.`
      : '';
  if (plan.kind === 'histogram')
    return <HistogramChart job={job} column={plan.column} rows={rows} />;
  if (plan.kind === 'totals') {
    const row = rows[0] ?? {};
    return (
      <Box component="figure" aria-label="The totals" sx={{ m: 0 }}>
        <Stack direction="row" sx={{ flexWrap: 'wrap', gap: 2 }}>
          {plan.measures.map((measure) => (
            <Card key={measure} variant="outlined" sx={{ minWidth: 160 }}>
              <CardContent>
                <Typography variant="body2" color="text.secondary">
                  {measure}
                </Typography>
                <Typography variant="h4" component="p">
                  {formatCell(row[measure])}
                </Typography>
              </CardContent>
            </Card>
          ))}
        </Stack>
      </Box>
    );
  }
  return <GroupChart plan={plan} rows={rows} buckets={buckets} partial={partial} />;
}

function GroupChart(props: {
  plan: Extract<ChartPlan, { kind: 'lines' | 'bars' }>;
  rows: Array<Record<string, unknown>>;
  buckets: Map<string, Bucket>;
  partial: string;
}) {
  const { plan, buckets } = props;
  const [measure, setMeasure] = useState(plan.measures[0]!);
  const label = (column: string, value: unknown) => {
    const bucket = buckets.get(column);
    return bucket ? formatBucket(value, bucket) : value === null ? '—' : formatCell(value);
  };
  const data = chartData(props.rows, plan, measure, label);
  const by = [plan.x, ...plan.seriesBy].join(' and ');
  const title = `${measure} by ${by}`;
  const notes = [
    data.missing > 0 &&
      `${data.missing} ${data.missing === 1 ? 'point has' : 'points have'} no number to draw (too few patients, or suppressed).`,
    data.hiddenSeries > 0 && `The ${data.hiddenSeries} smallest series are left out of the chart.`,
    props.partial,
  ].filter(Boolean);
  const series = data.series.map((item) => ({
    label: item.label,
    data: item.data,
    valueFormatter: (value: number | null) => (value === null ? '—' : formatNumber(value)),
    ...(plan.kind === 'lines'
      ? { connectNulls: false, showMark: data.x.length <= 60, curve: 'linear' as const }
      : {}),
  }));
  return (
    <Box component="figure" sx={{ m: 0 }} aria-label={title}>
      <Stack
        direction={{ xs: 'column', sm: 'row' }}
        spacing={2}
        sx={{ justifyContent: 'space-between' }}
      >
        <Typography component="figcaption" variant="subtitle1" sx={{ fontWeight: 600 }}>
          {title}
          {plan.seriesBy.length > 0 &&
            `: one ${plan.kind === 'lines' ? 'line' : 'bar'} per ${plan.seriesBy.join(' and ')}`}
        </Typography>
        {plan.measures.length > 1 && (
          <TextField
            select
            size="small"
            label="Measure shown"
            value={measure}
            onChange={(event) => setMeasure(event.target.value)}
            sx={{ minWidth: 200 }}
          >
            {plan.measures.map((name) => (
              <MenuItem key={name} value={name}>
                {name}
              </MenuItem>
            ))}
          </TextField>
        )}
      </Stack>
      {plan.kind === 'lines' ? (
        <LineChart
          height={320}
          skipAnimation
          xAxis={[{ scaleType: 'point', data: data.x, label: plan.x }]}
          series={series}
        />
      ) : (
        <BarChart
          height={320}
          skipAnimation
          xAxis={[{ scaleType: 'band', data: data.x, label: plan.x }]}
          series={series}
        />
      )}
      {notes.length > 0 && (
        <Typography variant="body2" color="text.secondary">
          {notes.join(' ')}
        </Typography>
      )}
    </Box>
  );
}

/**
 * A histogram’s bins as bars: of the one total, or of the group chosen. Hidden bins ("suppressed")
 * have no height to draw; the caption counts them.
 */
function HistogramChart(props: {
  job: QueryJobView;
  column: string;
  rows: Array<Record<string, unknown>>;
}) {
  const { column } = props;
  const groups = props.job.summary!.columns.filter((item) => item.kind === 'group');
  const [chosen, setChosen] = useState(0);
  const rows = props.rows.filter((row) => Array.isArray(row[column]));
  const row = rows[chosen] ?? rows[0];
  if (!row)
    return (
      <Alert severity="info">
        No bin to draw: every group was suppressed or left out (the key points say why).
      </Alert>
    );
  const bins = histogramBinSchema.array().parse(row[column]);
  const drawn = bins.filter((bin) => typeof bin.count === 'number');
  const groupName = (item: Record<string, unknown>) =>
    groups.map((group) => String(item[group.name] ?? '—')).join(', ');
  const title = `Histogram of ${column.replace(/_histogram$/, '')}${groups.length > 0 ? ` for ${groupName(row)}` : ''}`;
  return (
    <Box component="figure" sx={{ m: 0 }} aria-label={title}>
      <Typography component="figcaption" variant="subtitle1" sx={{ fontWeight: 600 }} gutterBottom>
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
        skipAnimation
        xAxis={[
          {
            scaleType: 'band',
            data: drawn.map((bin) => formatNumber(bin.bin)),
            label: 'bin from',
          },
        ]}
        series={[{ data: drawn.map((bin) => bin.count as number), label: 'rows' }]}
      />
    </Box>
  );
}

function ResultTable({
  job,
  state,
}: {
  job: QueryJobView;
  state: ReturnType<typeof useResultParams>;
}) {
  const { sort, page, pageSize, buckets } = state;
  const rows = useQuery({
    queryKey: ['query-results', job.id, page, pageSize, sort?.column, sort?.direction],
    queryFn: () => {
      const query = new URLSearchParams({
        page: String(page),
        pageSize: String(pageSize),
        ...(sort ? { sort: sort.column, direction: sort.direction } : {}),
      });
      return api(resultPageSchema, 'GET', `/api/v1/queries/${job.id}/results?${query}`);
    },
    placeholderData: keepPreviousData,
  });
  const columns = job.summary!.columns;
  // A new sort starts at the first page.
  const toggle = (column: string) =>
    state.set({
      sort: column,
      direction: sort?.column === column && sort.direction === 'asc' ? 'desc' : 'asc',
      page: undefined,
    });
  const show = (column: string, value: unknown) => {
    const bucket = buckets.get(column);
    return bucket ? formatBucket(value, bucket) : formatCell(value);
  };
  return (
    <>
      {rows.isError && <Alert severity="error">{messageOf(rows.error)}</Alert>}
      <WideTable labelledBy="result-heading">
        <TableHead>
          <TableRow>
            {columns.map((column) => (
              <TableCell
                key={column.name}
                align={column.kind === 'measure' ? 'right' : 'left'}
                sortDirection={sort?.column === column.name ? sort.direction : false}
              >
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
                <TableCell
                  key={column.name}
                  align={column.kind === 'measure' ? 'right' : 'left'}
                  sx={column.kind === 'measure' ? { fontVariantNumeric: 'tabular-nums' } : {}}
                >
                  {show(column.name, row[column.name])}
                </TableCell>
              ))}
            </TableRow>
          ))}
          {rows.data?.rows.length === 0 && (
            <TableRow>
              <TableCell colSpan={columns.length}>
                {page > 1 ? 'No rows on this page: go back to the first.' : 'No rows matched.'}
              </TableCell>
            </TableRow>
          )}
        </TableBody>
      </WideTable>
      <TablePagination
        component="div"
        count={rows.data?.totalRows ?? job.summary!.rowCount}
        page={page - 1}
        rowsPerPage={pageSize}
        rowsPerPageOptions={[10, 25, 100, 500]}
        onPageChange={(_event, next) =>
          state.set({ page: next === 0 ? undefined : String(next + 1) })
        }
        onRowsPerPageChange={(event) =>
          state.set({ pageSize: String(event.target.value), page: undefined })
        }
      />
    </>
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
                ({formatBytes(link.bytes)}), link works until {formatTime(link.expiresAt)} while you
                keep access to the dataset
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
