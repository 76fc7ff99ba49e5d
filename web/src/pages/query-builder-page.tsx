import { datasetListingSchema, queryJobSchema, type QuerySpec } from '@medlake/shared';
import {
  Alert,
  Autocomplete,
  Button,
  Card,
  CardContent,
  Checkbox,
  CircularProgress,
  FormControlLabel,
  MenuItem,
  Stack,
  TextField,
  Typography,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import { z } from 'zod';
import { api, messageOf } from '../api.ts';

const listSchema = z.object({ datasets: z.array(datasetListingSchema) });
const dictionarySchema = z.object({
  columns: z.array(z.object({ name: z.string(), type: z.string(), treatment: z.string() })),
  codes: z.array(z.object({ code: z.string(), label: z.string().nullable() })),
});
const buckets = ['day', 'week', 'month', 'quarter', 'year'] as const;
type Bucket = (typeof buckets)[number];
type CodeOption = { code: string; label: string | null };

/**
 * Builds a query spec from a form: which codes, an optional cohort ("patients who had code X
 * with a value in a range"), what to group by (a column, or a date by time bucket) and what to
 * measure. The query is also shown in words; running it opens its result.
 */
export function QueryBuilderPage() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const client = useQueryClient();
  const datasets = useQuery({
    queryKey: ['datasets'],
    queryFn: () => api(listSchema, 'GET', '/api/v1/datasets'),
  });
  const usable = datasets.data?.datasets.filter((dataset) => dataset.access) ?? [];
  const [datasetId, setDatasetId] = useState(params.get('dataset') ?? '');
  const dataset = datasetId || usable[0]?.id || '';
  const dictionary = useQuery({
    queryKey: ['dictionary', dataset],
    queryFn: () => api(dictionarySchema, 'GET', `/api/v1/datasets/${dataset}/dictionary`),
    enabled: Boolean(dataset),
  });

  const [codes, setCodes] = useState<CodeOption[]>([]);
  const [withCohort, setWithCohort] = useState(false);
  const [cohortCode, setCohortCode] = useState<CodeOption | null>(null);
  const [cohortMin, setCohortMin] = useState('');
  const [cohortMax, setCohortMax] = useState('');
  const [groupColumn, setGroupColumn] = useState('');
  const [bucket, setBucket] = useState<Bucket>('month');
  const [measure, setMeasure] = useState<'count' | 'patients' | 'mean'>('patients');

  const columns = dictionary.data?.columns ?? [];
  const group = columns.find((column) => column.name === groupColumn);
  const isDate = group?.type === 'date' || group?.type === 'timestamp';
  const spec: QuerySpec = {
    dataset,
    ...(codes.length > 0 ? { where: { op: 'code', codes: codes.map((item) => item.code) } } : {}),
    ...(withCohort && cohortCode
      ? {
          cohort: {
            criteria: [
              {
                where: {
                  and: [
                    { column: 'code', op: 'eq', value: cohortCode.code },
                    ...(cohortMin || cohortMax
                      ? [
                          {
                            column: 'value',
                            op: 'between' as const,
                            ...(cohortMin ? { min: Number(cohortMin) } : {}),
                            ...(cohortMax ? { max: Number(cohortMax) } : {}),
                          },
                        ]
                      : []),
                  ],
                },
              },
            ],
          },
        }
      : {}),
    groupBy: group ? [isDate ? { column: group.name, bucket } : { column: group.name }] : [],
    measures: [
      measure === 'mean' ? { fn: 'mean', column: 'value' } : { fn: measure },
      ...(measure === 'patients' ? [] : [{ fn: 'patients' as const }]),
    ],
    orderBy: [],
  } as QuerySpec;

  const run = useMutation({
    mutationFn: () => api(queryJobSchema, 'POST', '/api/v1/queries?wait=25', spec),
    onSuccess: async (job) => {
      await client.invalidateQueries({ queryKey: ['queries'] });
      await navigate(`/queries/${job.id}`);
    },
  });

  if (datasets.isPending) return <CircularProgress aria-label="Loading datasets" />;
  if (usable.length === 0) {
    return (
      <Alert severity="info">
        You have access to no dataset yet. Request access in the catalog; an administrator decides.
      </Alert>
    );
  }
  const codeOptions = dictionary.data?.codes ?? [];
  const codeLabel = (option: CodeOption) =>
    option.label ? `${option.code} ${option.label}` : option.code;

  return (
    <Stack
      spacing={3}
      component="form"
      onSubmit={(event) => {
        event.preventDefault();
        run.mutate();
      }}
    >
      <Typography variant="h4" component="h1">
        New query
      </Typography>
      <Card variant="outlined">
        <CardContent>
          <Stack spacing={2}>
            <TextField
              select
              label="Dataset"
              value={dataset}
              onChange={(event) => setDatasetId(event.target.value)}
            >
              {usable.map((item) => (
                <MenuItem key={item.id} value={item.id}>
                  {item.title}
                </MenuItem>
              ))}
            </TextField>
            <Autocomplete
              multiple
              options={codeOptions}
              getOptionLabel={codeLabel}
              isOptionEqualToValue={(a, b) => a.code === b.code}
              value={codes}
              onChange={(_event, value) => setCodes(value)}
              renderInput={(input) => (
                <TextField {...input} label="Tests (codes)" helperText="Empty: every test" />
              )}
            />
            <FormControlLabel
              control={
                <Checkbox
                  checked={withCohort}
                  onChange={(event) => setWithCohort(event.target.checked)}
                />
              }
              label="Only patients who had a test with a value in a range"
            />
            {withCohort && (
              <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2}>
                <Autocomplete
                  sx={{ flex: 2 }}
                  options={codeOptions}
                  getOptionLabel={codeLabel}
                  isOptionEqualToValue={(a, b) => a.code === b.code}
                  value={cohortCode}
                  onChange={(_event, value) => setCohortCode(value)}
                  renderInput={(input) => <TextField {...input} label="Cohort test" />}
                />
                <TextField
                  label="From value"
                  type="number"
                  value={cohortMin}
                  onChange={(event) => setCohortMin(event.target.value)}
                />
                <TextField
                  label="To value"
                  type="number"
                  value={cohortMax}
                  onChange={(event) => setCohortMax(event.target.value)}
                />
              </Stack>
            )}
            <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2}>
              <TextField
                select
                sx={{ flex: 1 }}
                label="Group by"
                value={groupColumn}
                onChange={(event) => setGroupColumn(event.target.value)}
              >
                <MenuItem value="">Nothing (one total)</MenuItem>
                {columns.map((column) => (
                  <MenuItem key={column.name} value={column.name}>
                    {column.name}
                  </MenuItem>
                ))}
              </TextField>
              {isDate && (
                <TextField
                  select
                  sx={{ flex: 1 }}
                  label="Time bucket"
                  value={bucket}
                  onChange={(event) => setBucket(event.target.value as Bucket)}
                >
                  {buckets.map((item) => (
                    <MenuItem key={item} value={item}>
                      {item}
                    </MenuItem>
                  ))}
                </TextField>
              )}
              <TextField
                select
                sx={{ flex: 1 }}
                label="Measure"
                value={measure}
                onChange={(event) => setMeasure(event.target.value as typeof measure)}
              >
                <MenuItem value="patients">Patients</MenuItem>
                <MenuItem value="count">Rows</MenuItem>
                <MenuItem value="mean">Mean value</MenuItem>
              </TextField>
            </Stack>
          </Stack>
        </CardContent>
      </Card>
      <Alert severity="info" icon={false} aria-label="The query in words">
        {describe(spec, codes, withCohort ? cohortCode : null, cohortMin, cohortMax)}
      </Alert>
      {run.isError && <Alert severity="error">{messageOf(run.error)}</Alert>}
      <div>
        <Button type="submit" variant="contained" size="large" disabled={run.isPending}>
          {run.isPending ? 'Running…' : 'Run query'}
        </Button>
      </div>
    </Stack>
  );
}

/** The query in one sentence, so that what runs is what the researcher meant. */
function describe(
  spec: QuerySpec,
  codes: CodeOption[],
  cohortCode: CodeOption | null,
  min: string,
  max: string,
): string {
  const measured = spec.measures
    .map((item) =>
      item.fn === 'mean' ? 'the mean value' : item.fn === 'count' ? 'rows' : 'patients',
    )
    .join(' and ');
  const tests =
    codes.length > 0 ? `of ${codes.map((item) => item.code).join(', ')}` : 'of every test';
  const cohort = cohortCode
    ? ` among patients who had ${cohortCode.code}${min || max ? ` with a value ${min ? `from ${min}` : ''}${min && max ? ' ' : ''}${max ? `to ${max}` : ''}` : ''}`
    : '';
  const groups = spec.groupBy
    .map((item) =>
      'bucket' in item && item.bucket ? `${item.column} by ${item.bucket}` : item.column,
    )
    .join(', ');
  return `Count ${measured} ${tests}${cohort}${groups ? `, per ${groups}` : ''}, in ${spec.dataset}.`;
}
