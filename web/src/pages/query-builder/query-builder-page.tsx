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
  type SavedQueryView,
} from '@medlake/shared';
import {
  Alert,
  Autocomplete,
  Box,
  Button,
  Card,
  CardContent,
  CircularProgress,
  MenuItem,
  Stack,
  Tab,
  Tabs,
  TextField,
  ToggleButton,
  ToggleButtonGroup,
  Typography,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useMemo, useState, type ReactNode } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import { api, ApiError, messageOf } from '../../api.ts';
import { SaveQueryButton } from '../../components/save-query-dialog.tsx';
import {
  allowedColumns,
  buildSpec,
  columnMeasures,
  columnsOf,
  describe,
  emptyForm,
  fieldForPath,
  filterOpLabels,
  filterOpsFor,
  formOf,
  formProblems,
  isDateType,
  isNumericType,
  measureLabels,
  newCriterion,
  newFilter,
  newGroup,
  newMeasure,
  outputNames,
  rowOnlyMeasures,
  specPath,
  type AccessLevel,
  type BuilderForm,
  type Bucket,
  type ColumnInfo,
  type CriterionRow,
  type FieldProblems,
  type FilterOp,
  type FilterRow,
  type GroupRow,
  type MeasureFn,
  type MeasureRow,
} from './builder-form.ts';
import { CodePicker } from './code-picker.tsx';

/**
 * The query builder. It starts empty, or from an earlier query (`?from=<query id>`) or a saved
 * one (`?saved=<id>`): "copy into the builder". The form says everything the query spec can
 * for the user's access level; the JSON tab edits the same query as text.
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
    queryFn: async (): Promise<{ spec: unknown; saved?: SavedQueryView }> => {
      if (from) return { spec: (await api(queryJobSchema, 'GET', `/api/v1/queries/${from}`)).spec };
      const found = await api(savedQueryViewSchema, 'GET', `/api/v1/saved-queries/${saved}`);
      return { spec: found.spec, saved: found };
    },
    enabled: Boolean(from ?? saved),
  });
  const usable = datasets.data?.datasets.filter((dataset) => dataset.access) ?? [];
  const copied =
    source.data === undefined ? undefined : querySpecSchema.safeParse(source.data.spec);
  const datasetId = copied?.data?.dataset ?? params.get('dataset') ?? usable[0]?.id ?? '';
  const dictionary = useQuery({
    queryKey: ['dictionary-outline', datasetId],
    queryFn: () =>
      api(datasetDictionarySchema, 'GET', `/api/v1/datasets/${datasetId}/dictionary?pageSize=1`),
    enabled: Boolean(datasetId) && usable.some((dataset) => dataset.id === datasetId),
  });

  if (datasets.isPending || source.isLoading) {
    return (
      <Stack spacing={3}>
        <Typography variant="h4" component="h1">
          {from || saved ? 'Copy of a query' : 'New query'}
        </Typography>
        <CircularProgress aria-label="Loading the query builder" />
      </Stack>
    );
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
  if (usable.length === 0) {
    return (
      <Alert severity="info">
        You have access to no dataset yet. Request access in the catalog; an administrator decides.
      </Alert>
    );
  }
  if (!usable.some((dataset) => dataset.id === datasetId)) {
    return (
      <Alert severity="warning">
        You have no access to the dataset {datasetId} this query reads. Request access in the
        catalog.
      </Alert>
    );
  }
  if (dictionary.isError) return <Alert severity="error">{messageOf(dictionary.error)}</Alert>;
  if (!dictionary.data) {
    return (
      <Stack spacing={3}>
        <Typography variant="h4" component="h1">
          {from || saved ? 'Copy of a query' : 'New query'}
        </Typography>
        <CircularProgress aria-label="Loading the dataset's columns" />
      </Stack>
    );
  }
  return (
    <Builder
      key={`${from}-${saved}`}
      datasets={usable}
      initialDataset={datasetId}
      initialColumns={columnsOf(dictionary.data.columns)}
      copied={copied?.success ? copied.data : undefined}
      saved={source.data?.saved}
    />
  );
}

/** The problems of the last attempt to run or save, by field, and those no field holds. */
type Attempt = { fields: FieldProblems; general: string[] };

function Builder(props: {
  datasets: DatasetListing[];
  initialDataset: string;
  initialColumns: ColumnInfo[];
  copied?: QuerySpec;
  saved?: SavedQueryView;
}) {
  const navigate = useNavigate();
  const client = useQueryClient();
  const copiedForm = props.copied && formOf(props.copied, props.initialColumns);
  const [mode, setMode] = useState<'form' | 'json'>(props.copied && !copiedForm ? 'json' : 'form');
  const [form, setForm] = useState<BuilderForm>(
    copiedForm || emptyForm(props.copied?.dataset ?? props.initialDataset),
  );
  const [json, setJson] = useState(props.copied ? JSON.stringify(props.copied, null, 2) : '');
  const [notice, setNotice] = useState('');
  const [attempted, setAttempted] = useState(false);
  const [server, setServer] = useState<Attempt>({ fields: {}, general: [] });

  const dictionary = useQuery({
    queryKey: ['dictionary-outline', form.dataset],
    queryFn: () =>
      api(datasetDictionarySchema, 'GET', `/api/v1/datasets/${form.dataset}/dictionary?pageSize=1`),
  });
  const columns = useMemo(
    () => (dictionary.data ? columnsOf(dictionary.data.columns) : props.initialColumns),
    [dictionary.data, props.initialColumns],
  );
  const access: AccessLevel =
    props.datasets.find((dataset) => dataset.id === form.dataset)?.access ?? 'aggregate';
  const allowed = useMemo(() => allowedColumns(columns, access), [columns, access]);
  const built = useMemo(() => buildSpec(form, columns), [form, columns]);
  const local = useMemo(() => formProblems(form, columns), [form, columns]);

  const change = (part: Partial<BuilderForm>) => {
    setForm((current) => ({ ...current, ...part }));
    setServer({ fields: {}, general: [] });
  };
  const problems: FieldProblems = { ...(attempted ? local : {}), ...server.fields };
  const field = (key: string, helper?: ReactNode) => ({
    error: Boolean(problems[key]),
    helperText: problems[key] ?? helper,
  });

  /** The spec to run or save, or undefined after marking what is wrong. */
  const specToSend = (): unknown => {
    setNotice('');
    setServer({ fields: {}, general: [] });
    if (mode === 'json') {
      try {
        return JSON.parse(json) as unknown;
      } catch (error) {
        setServer({
          fields: {},
          general: [`The JSON does not parse: ${(error as Error).message}`],
        });
        return undefined;
      }
    }
    setAttempted(true);
    if (Object.keys(local).length > 0) return undefined;
    // The shared schema checks what the server will: its words, at the fields.
    const parsed = querySpecSchema.safeParse(built.spec);
    if (!parsed.success) {
      showProblems(
        parsed.error.issues.map((issue) => ({
          path: specPath(issue.path),
          message: issue.message,
        })),
      );
      return undefined;
    }
    return built.spec;
  };

  /** The server's (or the schema's) problems, each at the field it names when there is one. */
  const showProblems = (
    details: ReadonlyArray<{ path: string; message: string }>,
    message?: string,
  ) => {
    const fields: FieldProblems = {};
    const general: string[] = [];
    for (const detail of details) {
      const key = mode === 'form' ? fieldForPath(built, detail.path) : undefined;
      if (key && !fields[key]) fields[key] = detail.message;
      else general.push(`${detail.path}: ${detail.message}`);
    }
    if (details.length === 0 && message) general.push(message);
    setServer({ fields, general });
  };
  const showError = (error: unknown) => {
    if (error instanceof ApiError && error.details.length > 0) {
      showProblems(error.details, error.message);
    } else {
      setServer({ fields: {}, general: [messageOf(error)] });
    }
  };

  // On a dataset that answers with noise, what the query would cost of the privacy budget.
  const costSpec =
    mode === 'form' ? (Object.keys(local).length === 0 ? built.spec : undefined) : safeJson(json);
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
    onError: showError,
  });
  const switchMode = (next: 'form' | 'json') => {
    setNotice('');
    setServer({ fields: {}, general: [] });
    if (next === 'json') {
      setJson(JSON.stringify(built.spec, null, 2));
      setMode('json');
      return;
    }
    let parsedJson: unknown;
    try {
      parsedJson = JSON.parse(json);
    } catch (error) {
      setNotice(`The JSON does not parse: ${(error as Error).message}`);
      return;
    }
    const parsed = querySpecSchema.safeParse(parsedJson);
    if (!parsed.success) {
      setNotice(
        `The query is not valid, so the form cannot show it: ${parsed.error.issues
          .map((issue) => `${issue.path.join('.') || '(spec)'}: ${issue.message}`)
          .join('; ')}`,
      );
      return;
    }
    const back = formOf(parsed.data, columns);
    if (!back) {
      setNotice(
        'The form cannot show all of this query (it holds a part only JSON says: nested and/or/not filters, names given with "as", several sort columns or chosen releases); keep editing it as JSON.',
      );
      return;
    }
    setForm(back);
    setMode('form');
  };
  const sendable = mode === 'json' ? safeJson(json) : built.spec;
  const problemCount = Object.keys(problems).length;

  return (
    <Stack spacing={3}>
      <Stack
        component="form"
        id="query-builder"
        noValidate
        spacing={3}
        aria-labelledby="builder-heading"
        onSubmit={(event) => {
          event.preventDefault();
          const spec = specToSend();
          if (spec !== undefined) run.mutate(spec);
        }}
      >
        <Typography variant="h4" component="h1" id="builder-heading">
          {props.saved
            ? `Saved query: ${props.saved.name}`
            : props.copied
              ? 'Copy of a query'
              : 'New query'}
        </Typography>
        <Tabs
          value={mode}
          onChange={(_event, next: 'form' | 'json') => switchMode(next)}
          aria-label="Edit the query as"
        >
          <Tab value="form" label="Form" />
          <Tab value="json" label="JSON" />
        </Tabs>
        {notice && <Alert severity="warning">{notice}</Alert>}
        {mode === 'json' ? (
          <TextField
            label="Query spec (JSON)"
            multiline
            minRows={14}
            value={json}
            onChange={(event) => {
              setJson(event.target.value);
              setServer({ fields: {}, general: [] });
            }}
            helperText="Every filter, cohort, grouping and measure of docs/query-spec.md"
            slotProps={{ htmlInput: { spellCheck: false, style: { fontFamily: 'monospace' } } }}
          />
        ) : (
          <FormSections
            form={form}
            setForm={(next) => {
              setForm(next);
              setServer({ fields: {}, general: [] });
            }}
            change={change}
            field={field}
            datasets={props.datasets}
            columns={allowed}
            allColumns={columns}
            access={access}
            hospitals={dictionary.data?.hospitals ?? []}
            months={dictionary.data?.months ?? []}
          />
        )}
        {mode === 'form' && (
          <Alert severity="info" icon={false} aria-label="The query in words">
            {describe(form, columns)}
          </Alert>
        )}
        {(problemCount > 0 || server.general.length > 0) && (
          <Alert severity="error" role="alert" aria-label="Problems in the query">
            {problemCount > 0 &&
              `${problemCount === 1 ? 'One field needs' : `${problemCount} fields need`} attention: see the messages marked in red.`}
            {server.general.map((line) => (
              <Box key={line}>{line}</Box>
            ))}
          </Alert>
        )}
        {cost.data?.noisy && (
          <Alert
            severity={cost.data.spent + cost.data.cost > cost.data.budget ? 'warning' : 'info'}
          >
            Answers on this dataset carry noise for privacy.{' '}
            {cost.data.repeat
              ? 'You were given this answer before: you will get the same one, at no cost.'
              : `This query costs ε ${cost.data.cost} of your budget: ε ${cost.data.spent} of ${cost.data.budget} spent in the last ${cost.data.windowDays} days.`}
          </Alert>
        )}
      </Stack>
      {/* The save dialog is outside the builder's form: its own submit never runs the query. */}
      <Stack direction="row" spacing={2}>
        <Button
          type="submit"
          form="query-builder"
          variant="contained"
          size="large"
          disabled={run.isPending || !dictionary.data}
        >
          {run.isPending ? 'Running…' : 'Run query'}
        </Button>
        <SaveQueryButton
          spec={sendable}
          disabled={!dictionary.data}
          beforeOpen={() => specToSend() !== undefined}
          onSpecError={showError}
          existing={props.saved?.mine ? props.saved : undefined}
        />
      </Stack>
    </Stack>
  );
}

type FieldProps = (key: string, helper?: ReactNode) => { error: boolean; helperText: ReactNode };

function FormSections(props: {
  form: BuilderForm;
  setForm: (form: BuilderForm) => void;
  change: (part: Partial<BuilderForm>) => void;
  field: FieldProps;
  datasets: DatasetListing[];
  columns: ColumnInfo[];
  allColumns: ColumnInfo[];
  access: AccessLevel;
  hospitals: string[];
  months: string[];
}) {
  const { form, change, field, columns } = props;
  const filterable = columns.filter(
    (column) => !['code', 'hospital', 'month'].includes(column.name),
  );
  const numeric = columns.filter((column) => isNumericType(column.type));
  const update = <K extends 'filters' | 'criteria' | 'groups' | 'measures'>(
    key: K,
    index: number,
    part: Partial<BuilderForm[K][number]>,
  ) =>
    change({
      [key]: (form[key] as Array<BuilderForm[K][number]>).map((item, i) =>
        i === index ? { ...item, ...part } : item,
      ),
    } as Partial<BuilderForm>);
  const remove = (key: 'filters' | 'criteria' | 'groups' | 'measures', index: number) =>
    change({ [key]: (form[key] as unknown[]).filter((_item, i) => i !== index) });

  return (
    <Stack spacing={2}>
      <Section title="Data" id="section-data">
        <TextField
          select
          label="Dataset"
          value={form.dataset}
          onChange={(event) => props.setForm(emptyForm(event.target.value))}
          helperText={`Your access: ${props.access === 'row' ? 'row level' : 'aggregate (counts and statistics of groups large enough to share)'}`}
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
          value={form.codes}
          onChange={(codes) => change({ codes })}
          {...field('codes', 'Type to search by code or name. Empty: every test')}
        />
        <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2}>
          <Autocomplete
            sx={{ flex: 2 }}
            multiple
            options={props.hospitals}
            value={form.hospitals}
            onChange={(_event, hospitals) => change({ hospitals })}
            renderInput={(input) => (
              <TextField
                {...input}
                label="Hospitals"
                {...field('hospitals', 'Empty: every hospital')}
              />
            )}
          />
          <MonthField
            label="Delivered from"
            months={props.months}
            value={form.monthFrom}
            onChange={(monthFrom) => change({ monthFrom })}
            {...field('monthFrom')}
          />
          <MonthField
            label="Delivered to"
            months={props.months}
            value={form.monthTo}
            onChange={(monthTo) => change({ monthTo })}
            {...field('monthTo')}
          />
        </Stack>
      </Section>

      <Section title="Filters" id="section-filters">
        {form.filters.length === 0 && (
          <Typography color="text.secondary">
            No other filter: every row of the tests, hospitals and months above.
          </Typography>
        )}
        {form.filters.map((filter, i) => (
          <FilterEditor
            key={i}
            index={i}
            filter={filter}
            columns={filterable}
            field={field}
            onChange={(part) => update('filters', i, part)}
            onRemove={() => remove('filters', i)}
          />
        ))}
        <div>
          <Button onClick={() => change({ filters: [...form.filters, newFilter()] })}>
            Add a filter
          </Button>
        </div>
      </Section>

      <Section title="Cohort" id="section-cohort">
        {form.criteria.length === 0 ? (
          <Typography color="text.secondary">
            Every patient. Add a criterion to keep only the patients who had (or never had) a test,
            with a value in a range.
          </Typography>
        ) : (
          form.criteria.length > 1 && (
            <TextField
              select
              label="Patients must meet"
              value={form.cohortMatch}
              onChange={(event) => change({ cohortMatch: event.target.value as 'all' | 'any' })}
              sx={{ maxWidth: 320 }}
            >
              <MenuItem value="all">every criterion</MenuItem>
              <MenuItem value="any">at least one criterion</MenuItem>
            </TextField>
          )
        )}
        {form.criteria.map((criterion, i) => (
          <CriterionEditor
            key={i}
            index={i}
            dataset={form.dataset}
            criterion={criterion}
            field={field}
            onChange={(part) => update('criteria', i, part)}
            onRemove={() => remove('criteria', i)}
          />
        ))}
        <div>
          <Button onClick={() => change({ criteria: [...form.criteria, newCriterion()] })}>
            Add a cohort criterion
          </Button>
        </div>
      </Section>

      {props.access === 'row' && (
        <Section title="Output" id="section-output">
          <ToggleButtonGroup
            exclusive
            value={form.output}
            onChange={(_event, output: 'aggregate' | 'rows' | null) => output && change({ output })}
            aria-label="Output"
            size="small"
          >
            <ToggleButton value="aggregate">Counts and statistics</ToggleButton>
            <ToggleButton value="rows">Rows</ToggleButton>
          </ToggleButtonGroup>
        </Section>
      )}

      {form.output === 'rows' ? (
        <Section title="Columns" id="section-columns">
          <Autocomplete
            multiple
            options={columns.map((column) => column.name)}
            value={form.select}
            onChange={(_event, select) => change({ select })}
            renderInput={(input) => (
              <TextField {...input} label="Columns to show" {...field('select')} />
            )}
          />
        </Section>
      ) : (
        <>
          <Section title="Group by" id="section-groups">
            {problemsAt(field, 'groups')}
            {form.groups.length === 0 && (
              <Typography color="text.secondary">No grouping: one total.</Typography>
            )}
            {form.groups.map((group, i) => (
              <GroupEditor
                key={i}
                index={i}
                group={group}
                columns={columns}
                field={field}
                onChange={(part) => update('groups', i, part)}
                onRemove={() => remove('groups', i)}
              />
            ))}
            {form.groups.length < 6 && (
              <div>
                <Button onClick={() => change({ groups: [...form.groups, newGroup()] })}>
                  Add a grouping
                </Button>
              </div>
            )}
          </Section>
          <Section title="Measures" id="section-measures">
            {problemsAt(field, 'measures')}
            {form.measures.map((measure, i) => (
              <MeasureEditor
                key={i}
                index={i}
                measure={measure}
                numeric={numeric}
                access={props.access}
                field={field}
                onChange={(part) => update('measures', i, part)}
                onRemove={() => remove('measures', i)}
              />
            ))}
            <div>
              <Button
                onClick={() =>
                  change({
                    measures: [
                      ...form.measures,
                      newMeasure(
                        form.measures.some((m) => m.fn === 'mean') ? 'percentile' : 'mean',
                        numeric.find((c) => c.name === 'value')?.name ?? numeric[0]?.name ?? '',
                      ),
                    ],
                  })
                }
              >
                Add a measure
              </Button>
            </div>
          </Section>
        </>
      )}

      <Section title="Order and limit" id="section-order">
        <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2}>
          <TextField
            select
            sx={{ flex: 2 }}
            label="Order by"
            value={outputNames(form, props.allColumns).includes(form.orderBy) ? form.orderBy : ''}
            onChange={(event) => change({ orderBy: event.target.value })}
            {...field('orderBy', 'The result page can be sorted too')}
          >
            <MenuItem value="">As the engine gives it</MenuItem>
            {outputNames(form, props.allColumns).map((name) => (
              <MenuItem key={name} value={name}>
                {name}
              </MenuItem>
            ))}
          </TextField>
          <TextField
            select
            sx={{ flex: 1 }}
            label="Direction"
            value={form.direction}
            onChange={(event) => change({ direction: event.target.value as 'asc' | 'desc' })}
          >
            <MenuItem value="asc">Ascending</MenuItem>
            <MenuItem value="desc">Descending</MenuItem>
          </TextField>
          <TextField
            sx={{ flex: 1 }}
            label="Limit"
            inputMode="numeric"
            value={form.limit}
            onChange={(event) => change({ limit: event.target.value })}
            {...field('limit', 'Empty: every row')}
          />
        </Stack>
      </Section>
    </Stack>
  );
}

function problemsAt(field: FieldProps, key: string) {
  const { error, helperText } = field(key);
  return error ? <Alert severity="error">{helperText}</Alert> : null;
}

function Section(props: { title: string; id: string; children: ReactNode }) {
  return (
    <Card variant="outlined" component="section" aria-labelledby={props.id}>
      <CardContent>
        <Typography variant="h6" component="h2" id={props.id} gutterBottom>
          {props.title}
        </Typography>
        <Stack spacing={2}>{props.children}</Stack>
      </CardContent>
    </Card>
  );
}

function RemoveButton(props: { label: string; onClick: () => void }) {
  return (
    <Button
      color="error"
      onClick={props.onClick}
      aria-label={props.label}
      sx={{ alignSelf: { xs: 'flex-start', sm: 'center' } }}
    >
      Remove
    </Button>
  );
}

function FilterEditor(props: {
  index: number;
  filter: FilterRow;
  columns: ColumnInfo[];
  field: FieldProps;
  onChange: (part: Partial<FilterRow>) => void;
  onRemove: () => void;
}) {
  const { filter, field } = props;
  const n = props.index + 1;
  const key = `filters.${props.index}`;
  const type = props.columns.find((column) => column.name === filter.column)?.type ?? 'varchar';
  const ops = filterOpsFor(type);
  return (
    <Stack
      direction={{ xs: 'column', sm: 'row' }}
      spacing={2}
      sx={{ alignItems: { xs: 'stretch', sm: 'flex-start' } }}
    >
      <TextField
        select
        sx={{ flex: 1, minWidth: 160 }}
        label={`Filter ${n} column`}
        value={filter.column}
        onChange={(event) => {
          const next = props.columns.find((column) => column.name === event.target.value);
          props.onChange({
            column: event.target.value,
            op: filterOpsFor(next?.type ?? 'varchar')[0],
            values: [],
            min: '',
            max: '',
          });
        }}
        {...field(`${key}.column`)}
      >
        {props.columns.map((column) => (
          <MenuItem key={column.name} value={column.name}>
            {column.name}
          </MenuItem>
        ))}
      </TextField>
      <TextField
        select
        sx={{ flex: 1, minWidth: 160 }}
        label={`Filter ${n} condition`}
        value={ops.includes(filter.op) ? filter.op : ops[0]}
        onChange={(event) => props.onChange({ op: event.target.value as FilterOp })}
      >
        {ops.map((op) => (
          <MenuItem key={op} value={op}>
            {filterOpLabels[op]}
          </MenuItem>
        ))}
      </TextField>
      {(filter.op === 'in' || filter.op === 'not_in') && (
        <Autocomplete
          sx={{ flex: 2, minWidth: 200 }}
          multiple
          freeSolo
          options={[]}
          value={filter.values}
          onChange={(_event, values) => props.onChange({ values: values as string[] })}
          renderInput={(input) => (
            <TextField
              {...input}
              label={`Filter ${n} values`}
              {...field(`${key}.values`, 'Type a value and press Enter')}
            />
          )}
        />
      )}
      {filter.op === 'starts_with' && (
        <TextField
          sx={{ flex: 2 }}
          label={`Filter ${n} text`}
          value={filter.values[0] ?? ''}
          onChange={(event) => props.onChange({ values: [event.target.value] })}
          {...field(`${key}.values`)}
        />
      )}
      {(filter.op === 'between' || filter.op === 'date_range') && (
        <>
          <TextField
            sx={{ flex: 1 }}
            label={`Filter ${n} from`}
            type={filter.op === 'date_range' ? 'date' : 'text'}
            inputMode={filter.op === 'between' ? 'decimal' : undefined}
            value={filter.min}
            onChange={(event) => props.onChange({ min: event.target.value })}
            slotProps={{ inputLabel: { shrink: true } }}
            {...field(`${key}.min`, 'Inclusive')}
          />
          <TextField
            sx={{ flex: 1 }}
            label={`Filter ${n} to`}
            type={filter.op === 'date_range' ? 'date' : 'text'}
            inputMode={filter.op === 'between' ? 'decimal' : undefined}
            value={filter.max}
            onChange={(event) => props.onChange({ max: event.target.value })}
            slotProps={{ inputLabel: { shrink: true } }}
            {...field(`${key}.max`, 'Inclusive')}
          />
        </>
      )}
      <RemoveButton label={`Remove filter ${n}`} onClick={props.onRemove} />
    </Stack>
  );
}

function CriterionEditor(props: {
  index: number;
  dataset: string;
  criterion: CriterionRow;
  field: FieldProps;
  onChange: (part: Partial<CriterionRow>) => void;
  onRemove: () => void;
}) {
  const { criterion, field } = props;
  const n = props.index + 1;
  const key = `criteria.${props.index}`;
  return (
    <Box
      role="group"
      aria-label={`Cohort criterion ${n}`}
      sx={{ borderLeft: 3, borderColor: 'divider', pl: 2 }}
    >
      <Stack spacing={2}>
        <Stack
          direction={{ xs: 'column', sm: 'row' }}
          spacing={2}
          sx={{ alignItems: { xs: 'stretch', sm: 'flex-start' } }}
        >
          <TextField
            select
            sx={{ minWidth: 150 }}
            label={`Criterion ${n}`}
            value={criterion.exclude ? 'never' : 'had'}
            onChange={(event) => props.onChange({ exclude: event.target.value === 'never' })}
          >
            <MenuItem value="had">had</MenuItem>
            <MenuItem value="never">never had</MenuItem>
          </TextField>
          <CodePicker
            dataset={props.dataset}
            multiple={false}
            label={`Cohort test ${n}`}
            value={criterion.code}
            onChange={(code) => props.onChange({ code })}
            {...field(`${key}.code`)}
          />
          <RemoveButton label={`Remove cohort criterion ${n}`} onClick={props.onRemove} />
        </Stack>
        <Stack
          direction={{ xs: 'column', sm: 'row' }}
          spacing={2}
          sx={{ alignItems: { xs: 'stretch', sm: 'flex-start' } }}
        >
          <TextField
            label={`Criterion ${n} value from`}
            inputMode="decimal"
            value={criterion.min}
            onChange={(event) => props.onChange({ min: event.target.value })}
            {...field(`${key}.min`, 'Inclusive; empty: any value')}
          />
          <TextField
            label={`Criterion ${n} value to`}
            inputMode="decimal"
            value={criterion.max}
            onChange={(event) => props.onChange({ max: event.target.value })}
            {...field(`${key}.max`, 'Inclusive')}
          />
          <TextField
            label={`Criterion ${n} at least`}
            inputMode="numeric"
            value={criterion.minRows}
            onChange={(event) => props.onChange({ minRows: event.target.value })}
            {...field(`${key}.minRows`, 'times')}
          />
          <TextField
            label={`Criterion ${n} from date`}
            type="date"
            value={criterion.from}
            onChange={(event) => props.onChange({ from: event.target.value })}
            slotProps={{ inputLabel: { shrink: true } }}
            {...field(`${key}.from`)}
          />
          <TextField
            label={`Criterion ${n} to date`}
            type="date"
            value={criterion.to}
            onChange={(event) => props.onChange({ to: event.target.value })}
            slotProps={{ inputLabel: { shrink: true } }}
            {...field(`${key}.to`)}
          />
        </Stack>
      </Stack>
    </Box>
  );
}

function GroupEditor(props: {
  index: number;
  group: GroupRow;
  columns: ColumnInfo[];
  field: FieldProps;
  onChange: (part: Partial<GroupRow>) => void;
  onRemove: () => void;
}) {
  const { group, field } = props;
  const n = props.index + 1;
  const key = `groups.${props.index}`;
  const type = props.columns.find((column) => column.name === group.column)?.type ?? '';
  return (
    <Stack
      direction={{ xs: 'column', sm: 'row' }}
      spacing={2}
      sx={{ alignItems: { xs: 'stretch', sm: 'flex-start' } }}
    >
      <TextField
        select
        sx={{ flex: 1, minWidth: 180 }}
        label={`Group ${n}`}
        value={props.columns.some((column) => column.name === group.column) ? group.column : ''}
        onChange={(event) => props.onChange({ column: event.target.value })}
        {...field(`${key}.column`)}
      >
        {props.columns.map((column) => (
          <MenuItem key={column.name} value={column.name}>
            {column.name === 'month'
              ? 'month (of delivery)'
              : column.name === 'hospital'
                ? 'hospital'
                : column.name}
          </MenuItem>
        ))}
      </TextField>
      {isDateType(type) && (
        <TextField
          select
          sx={{ flex: 1 }}
          label={`Time bucket (group ${n})`}
          value={group.bucket}
          onChange={(event) => props.onChange({ bucket: event.target.value as Bucket })}
          {...field(`${key}.bucket`)}
        >
          {timeBuckets.map((item) => (
            <MenuItem key={item} value={item}>
              {item}
            </MenuItem>
          ))}
        </TextField>
      )}
      {isNumericType(type) && (
        <TextField
          select
          sx={{ flex: 1 }}
          label={`Split (group ${n})`}
          value={group.split}
          onChange={(event) => props.onChange({ split: event.target.value as GroupRow['split'] })}
        >
          <MenuItem value="value">each value</MenuItem>
          <MenuItem value="bin">bins of equal width</MenuItem>
          <MenuItem value="bands">bands (for ages)</MenuItem>
        </TextField>
      )}
      {isNumericType(type) && group.split === 'bin' && (
        <TextField
          sx={{ flex: 1 }}
          label={`Bin width (group ${n})`}
          inputMode="decimal"
          value={group.binWidth}
          onChange={(event) => props.onChange({ binWidth: event.target.value })}
          {...field(`${key}.binWidth`)}
        />
      )}
      {isNumericType(type) && group.split === 'bands' && (
        <TextField
          sx={{ flex: 1 }}
          label={`Bands from (group ${n})`}
          value={group.bands}
          onChange={(event) => props.onChange({ bands: event.target.value })}
          {...field(`${key}.bands`, '18, 45, 65 gives 0–17, 18–44, 45–64, 65+')}
        />
      )}
      <RemoveButton label={`Remove group ${n}`} onClick={props.onRemove} />
    </Stack>
  );
}

function MeasureEditor(props: {
  index: number;
  measure: MeasureRow;
  numeric: ColumnInfo[];
  access: AccessLevel;
  field: FieldProps;
  onChange: (part: Partial<MeasureRow>) => void;
  onRemove: () => void;
}) {
  const { measure, field } = props;
  const n = props.index + 1;
  const key = `measures.${props.index}`;
  const fns = (Object.keys(measureLabels) as MeasureFn[]).filter(
    (fn) => props.access === 'row' || !rowOnlyMeasures.has(fn),
  );
  return (
    <Stack
      direction={{ xs: 'column', sm: 'row' }}
      spacing={2}
      sx={{ alignItems: { xs: 'stretch', sm: 'flex-start' } }}
    >
      <TextField
        select
        sx={{ flex: 2, minWidth: 200 }}
        label={`Measure ${n}`}
        value={measure.fn}
        onChange={(event) => props.onChange({ fn: event.target.value as MeasureFn })}
        {...field(
          `${key}.fn`,
          props.access === 'aggregate' && n === 1
            ? 'Minimum and maximum need row access: use a percentile'
            : undefined,
        )}
      >
        {fns.map((fn) => (
          <MenuItem key={fn} value={fn}>
            {measureLabels[fn]}
          </MenuItem>
        ))}
      </TextField>
      {columnMeasures.has(measure.fn) && (
        <TextField
          select
          sx={{ flex: 1, minWidth: 120 }}
          label={`Of column (measure ${n})`}
          value={
            props.numeric.some((column) => column.name === measure.column) ? measure.column : ''
          }
          onChange={(event) => props.onChange({ column: event.target.value })}
          {...field(`${key}.column`)}
        >
          {props.numeric.map((column) => (
            <MenuItem key={column.name} value={column.name}>
              {column.name}
            </MenuItem>
          ))}
        </TextField>
      )}
      {measure.fn === 'percentile' && (
        <TextField
          sx={{ flex: 1 }}
          label={`Percentile (measure ${n})`}
          inputMode="decimal"
          value={measure.percent}
          onChange={(event) => props.onChange({ percent: event.target.value })}
          {...field(`${key}.percent`, '50 is the median')}
        />
      )}
      {measure.fn === 'histogram' && (
        <TextField
          sx={{ flex: 1 }}
          label={`Bin width (measure ${n})`}
          inputMode="decimal"
          value={measure.binWidth}
          onChange={(event) => props.onChange({ binWidth: event.target.value })}
          {...field(`${key}.binWidth`, 'Pick one test, so that the values share a unit')}
        />
      )}
      <RemoveButton label={`Remove measure ${n}`} onClick={props.onRemove} />
    </Stack>
  );
}

function MonthField(props: {
  label: string;
  months: string[];
  value: string;
  onChange: (month: string) => void;
  error: boolean;
  helperText: ReactNode;
}) {
  return (
    <TextField
      select
      sx={{ flex: 1 }}
      label={props.label}
      value={props.months.includes(props.value) ? props.value : ''}
      onChange={(event) => props.onChange(event.target.value)}
      error={props.error}
      helperText={props.helperText}
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
