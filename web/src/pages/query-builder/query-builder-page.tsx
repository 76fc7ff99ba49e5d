import {
  datasetDictionarySchema,
  datasetListSchema,
  queryCostSchema,
  queryJobSchema,
  querySpecSchema,
  savedQueryViewSchema,
  timeBuckets,
  type DatasetListing,
  type QuerySpec,
} from '@medlake/shared';
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
  Tab,
  Tabs,
  TextField,
  Typography,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import { api, messageOf } from '../../api.ts';
import { SaveQueryButton } from '../../components/save-query-dialog.tsx';
import {
  describe,
  emptyForm,
  formOf,
  specOf,
  type BuilderForm,
  type Bucket,
  type MeasureChoice,
} from './builder-form.ts';
import { CodePicker } from './code-picker.tsx';

/**
 * The query builder. It starts empty, or from an earlier query (`?from=<query id>`) or a saved
 * one (`?saved=<id>`): "copy into the builder". The form covers the common questions; the
 * JSON tab edits anything the query spec can say.
 */
export function QueryBuilderPage() {
  const [params] = useSearchParams();
  const from = params.get('from');
  const saved = params.get('saved');
  const datasets = useQuery({
    queryKey: ['datasets'],
    queryFn: () => api(datasetListSchema, 'GET', '/api/v1/datasets'),
  });
  const source = useQuery({
    queryKey: ['builder-source', from, saved],
    queryFn: async (): Promise<unknown> =>
      from
        ? (await api(queryJobSchema, 'GET', `/api/v1/queries/${from}`)).spec
        : (await api(savedQueryViewSchema, 'GET', `/api/v1/saved-queries/${saved}`)).spec,
    enabled: Boolean(from ?? saved),
  });

  if (datasets.isPending || source.isLoading) {
    return <CircularProgress aria-label="Loading the query builder" />;
  }
  if (datasets.isError) return <Alert severity="error">{messageOf(datasets.error)}</Alert>;
  if (source.isError) {
    return (
      <Alert severity="error">
        The query to copy could not be read: {messageOf(source.error)}. Start a new one from
        Queries.
      </Alert>
    );
  }
  const usable = datasets.data.datasets.filter((dataset) => dataset.access);
  if (usable.length === 0) {
    return (
      <Alert severity="info">
        You have access to no dataset yet. Request access in the catalog; an administrator decides.
      </Alert>
    );
  }
  const copied = source.data === undefined ? undefined : querySpecSchema.safeParse(source.data);
  return (
    <Builder
      key={`${from}-${saved}`}
      datasets={usable}
      initialDataset={params.get('dataset') ?? usable[0]!.id}
      copied={copied?.success ? copied.data : undefined}
    />
  );
}

function Builder(props: {
  datasets: DatasetListing[];
  initialDataset: string;
  copied?: QuerySpec;
}) {
  const navigate = useNavigate();
  const client = useQueryClient();
  const copiedForm = props.copied && formOf(props.copied);
  const [mode, setMode] = useState<'form' | 'json'>(props.copied && !copiedForm ? 'json' : 'form');
  const [form, setForm] = useState<BuilderForm>(
    copiedForm || emptyForm(props.copied?.dataset ?? props.initialDataset),
  );
  const [json, setJson] = useState(props.copied ? JSON.stringify(props.copied, null, 2) : '');
  const [jsonProblem, setJsonProblem] = useState('');
  const change = (part: Partial<BuilderForm>) => setForm((current) => ({ ...current, ...part }));

  // One page of one code is enough here: the columns, hospitals and months come with it.
  const dictionary = useQuery({
    queryKey: ['dictionary-outline', form.dataset],
    queryFn: () =>
      api(datasetDictionarySchema, 'GET', `/api/v1/datasets/${form.dataset}/dictionary?pageSize=1`),
  });
  const columns = dictionary.data?.columns ?? [];
  const dateColumns = useMemo(
    () =>
      new Set(
        (dictionary.data?.columns ?? [])
          .filter((column) => column.type === 'date' || column.type === 'timestamp')
          .map((column) => column.name),
      ),
    [dictionary.data],
  );

  /** The spec to run or save: the form's, or the JSON as typed (the server checks it). */
  const currentSpec = (): unknown => {
    if (mode === 'form') return specOf(form, dateColumns);
    try {
      return JSON.parse(json) as unknown;
    } catch (error) {
      setJsonProblem(`The JSON does not parse: ${(error as Error).message}`);
      return undefined;
    }
  };
  // On a dataset that answers with noise, what the query would cost of the privacy budget.
  const costSpec = mode === 'form' ? specOf(form, dateColumns) : safeJson(json);
  const cost = useQuery({
    queryKey: ['query-cost', JSON.stringify(costSpec)],
    queryFn: () => api(queryCostSchema, 'POST', '/api/v1/queries/cost', costSpec),
    enabled: Boolean(dictionary.data) && costSpec !== undefined,
    retry: false,
  });
  const run = useMutation({
    mutationFn: (spec: unknown) => api(queryJobSchema, 'POST', '/api/v1/queries?wait=25', spec),
    onSuccess: async (job) => {
      await client.invalidateQueries({ queryKey: ['queries'] });
      await navigate(`/queries/${job.id}`);
    },
  });
  const switchMode = (next: 'form' | 'json') => {
    setJsonProblem('');
    if (next === 'json') {
      setJson(JSON.stringify(specOf(form, dateColumns), null, 2));
      setMode('json');
      return;
    }
    const parsed = querySpecSchema.safeParse(currentSpec());
    const back = parsed.success ? formOf(parsed.data) : null;
    if (!back) {
      setJsonProblem(
        'The form cannot show all of this query (it holds more than one grouping, measure or cohort criterion, or other conditions); keep editing it as JSON.',
      );
      return;
    }
    setForm(back);
    setMode('form');
  };

  return (
    <Stack
      spacing={3}
      component="form"
      onSubmit={(event) => {
        event.preventDefault();
        setJsonProblem('');
        const spec = currentSpec();
        if (spec !== undefined) run.mutate(spec);
      }}
    >
      <Typography variant="h4" component="h1">
        {props.copied ? 'Copy of a query' : 'New query'}
      </Typography>
      <Tabs value={mode} onChange={(_event, next: 'form' | 'json') => switchMode(next)}>
        <Tab value="form" label="Form" />
        <Tab value="json" label="JSON" />
      </Tabs>
      {jsonProblem && <Alert severity="warning">{jsonProblem}</Alert>}
      {mode === 'json' ? (
        <TextField
          label="Query spec (JSON)"
          multiline
          minRows={14}
          value={json}
          onChange={(event) => setJson(event.target.value)}
          helperText="Every filter, cohort, grouping and measure of docs/query-spec.md"
          slotProps={{ htmlInput: { spellCheck: false, style: { fontFamily: 'monospace' } } }}
        />
      ) : (
        <Card variant="outlined">
          <CardContent>
            <Stack spacing={2}>
              <TextField
                select
                label="Dataset"
                value={form.dataset}
                onChange={(event) => setForm(emptyForm(event.target.value))}
              >
                {props.datasets.map((item) => (
                  <MenuItem key={item.id} value={item.id}>
                    {item.title}
                  </MenuItem>
                ))}
              </TextField>
              <CodePicker
                dataset={form.dataset}
                multiple
                label="Tests (codes)"
                helperText="Type to search by code or name. Empty: every test"
                value={form.codes}
                onChange={(codes) => change({ codes })}
              />
              <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2}>
                <Autocomplete
                  sx={{ flex: 2 }}
                  multiple
                  options={dictionary.data?.hospitals ?? []}
                  value={form.hospitals}
                  onChange={(_event, hospitals) => change({ hospitals })}
                  renderInput={(input) => (
                    <TextField {...input} label="Hospitals" helperText="Empty: every hospital" />
                  )}
                />
                <MonthField
                  label="Delivered from"
                  months={dictionary.data?.months ?? []}
                  value={form.monthFrom}
                  onChange={(monthFrom) => change({ monthFrom })}
                />
                <MonthField
                  label="Delivered to"
                  months={dictionary.data?.months ?? []}
                  value={form.monthTo}
                  onChange={(monthTo) => change({ monthTo })}
                />
              </Stack>
              <FormControlLabel
                control={
                  <Checkbox
                    checked={form.cohort !== null}
                    onChange={(event) =>
                      change({
                        cohort: event.target.checked ? { code: null, min: '', max: '' } : null,
                      })
                    }
                  />
                }
                label="Only patients who had a test with a value in a range"
              />
              {form.cohort && (
                <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2}>
                  <CodePicker
                    dataset={form.dataset}
                    multiple={false}
                    label="Cohort test"
                    value={form.cohort.code}
                    onChange={(code) => change({ cohort: { ...form.cohort!, code } })}
                  />
                  <TextField
                    label="From value"
                    type="number"
                    value={form.cohort.min}
                    onChange={(event) =>
                      change({ cohort: { ...form.cohort!, min: event.target.value } })
                    }
                  />
                  <TextField
                    label="To value"
                    type="number"
                    value={form.cohort.max}
                    onChange={(event) =>
                      change({ cohort: { ...form.cohort!, max: event.target.value } })
                    }
                  />
                </Stack>
              )}
              <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2}>
                <TextField
                  select
                  sx={{ flex: 1 }}
                  label="Group by"
                  value={columns.length > 0 ? form.groupColumn : ''}
                  onChange={(event) => change({ groupColumn: event.target.value })}
                >
                  <MenuItem value="">Nothing (one total)</MenuItem>
                  {columns.map((column) => (
                    <MenuItem key={column.name} value={column.name}>
                      {column.name}
                    </MenuItem>
                  ))}
                </TextField>
                {dateColumns.has(form.groupColumn) && (
                  <TextField
                    select
                    sx={{ flex: 1 }}
                    label="Time bucket"
                    value={form.bucket}
                    onChange={(event) => change({ bucket: event.target.value as Bucket })}
                  >
                    {timeBuckets.map((item) => (
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
                  value={form.measure}
                  onChange={(event) => change({ measure: event.target.value as MeasureChoice })}
                >
                  <MenuItem value="patients">Patients</MenuItem>
                  <MenuItem value="count">Rows</MenuItem>
                  <MenuItem value="mean">Mean value</MenuItem>
                  <MenuItem value="histogram">Distribution of values (histogram)</MenuItem>
                </TextField>
                {form.measure === 'histogram' && (
                  <TextField
                    sx={{ flex: 1 }}
                    label="Bin width"
                    type="number"
                    value={form.binWidth}
                    onChange={(event) => change({ binWidth: event.target.value })}
                    helperText="Pick one test, so that the values share a unit"
                  />
                )}
              </Stack>
            </Stack>
          </CardContent>
        </Card>
      )}
      {mode === 'form' && (
        <Alert severity="info" icon={false} aria-label="The query in words">
          {describe(form, dateColumns)}
        </Alert>
      )}
      {cost.data?.noisy && (
        <Alert severity={cost.data.spent + cost.data.cost > cost.data.budget ? 'warning' : 'info'}>
          Answers on this dataset carry noise for privacy.{' '}
          {cost.data.repeat
            ? 'You were given this answer before: you will get the same one, at no cost.'
            : `This query costs ε ${cost.data.cost} of your budget: ε ${cost.data.spent} of ${cost.data.budget} spent in the last ${cost.data.windowDays} days.`}
        </Alert>
      )}
      {run.isError && <Alert severity="error">{messageOf(run.error)}</Alert>}
      <Stack direction="row" spacing={2}>
        <Button
          type="submit"
          variant="contained"
          size="large"
          disabled={run.isPending || !dictionary.data}
        >
          {run.isPending ? 'Running…' : 'Run query'}
        </Button>
        <SaveQueryButton
          spec={mode === 'form' ? specOf(form, dateColumns) : safeJson(json)}
          disabled={!dictionary.data}
        />
      </Stack>
    </Stack>
  );
}

function MonthField(props: {
  label: string;
  months: string[];
  value: string;
  onChange: (month: string) => void;
}) {
  return (
    <TextField
      select
      sx={{ flex: 1 }}
      label={props.label}
      value={props.months.includes(props.value) ? props.value : ''}
      onChange={(event) => props.onChange(event.target.value)}
    >
      <MenuItem value="">Any month</MenuItem>
      {props.months.map((month) => (
        <MenuItem key={month} value={month}>
          {month}
        </MenuItem>
      ))}
    </TextField>
  );
}

/** The JSON as typed, or the text itself when it does not parse (the server then says why). */
function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
