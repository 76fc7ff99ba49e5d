import {
  accessRequestListSchema,
  accessRequestViewSchema,
  datasetListSchema,
  type DatasetListing,
} from '@medlake/shared';
import {
  Alert,
  Button,
  Card,
  CardActions,
  CardContent,
  Checkbox,
  Chip,
  CircularProgress,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  FormControlLabel,
  MenuItem,
  Stack,
  TextField,
  Typography,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link as RouterLink } from 'react-router';
import { api, ApiError, messageOf } from '../api.ts';
import { useSession } from '../session.tsx';
import { RecentQueries } from './home-pages.tsx';

/** The datasets there are, with the user's access to each, and access requests for the rest. */
export function CatalogPage({ recent = false }: { recent?: boolean }) {
  const readOnly = useSession().session?.user.role === 'auditor';
  const datasets = useQuery({
    queryKey: ['datasets'],
    queryFn: () => api(datasetListSchema, 'GET', '/api/v1/datasets'),
  });
  const requests = useQuery({
    queryKey: ['access-requests'],
    queryFn: () => api(accessRequestListSchema, 'GET', '/api/v1/access-requests'),
  });
  const [requesting, setRequesting] = useState<DatasetListing>();

  if (datasets.isPending) return <CircularProgress aria-label="Loading the catalog" />;
  if (datasets.isError) {
    return (
      <Alert
        severity="error"
        action={<Button onClick={() => datasets.refetch()}>Try again</Button>}
      >
        {messageOf(datasets.error)}
      </Alert>
    );
  }
  const list = datasets.data.datasets;
  return (
    <Stack spacing={2}>
      <Typography variant="h4" component="h1">
        Catalog
      </Typography>
      {list.length === 0 && (
        <Alert severity="info">
          There are no datasets yet. They appear here once a data steward has uploaded one.
        </Alert>
      )}
      {list.map((dataset) => {
        const latest = requests.data?.requests.find((item) => item.datasetId === dataset.id);
        return (
          <Card
            key={dataset.id}
            variant="outlined"
            component="section"
            aria-labelledby={`ds-${dataset.id}`}
          >
            <CardContent>
              <Stack direction="row" spacing={1} sx={{ alignItems: 'center', mb: 1 }}>
                <Typography variant="h6" component="h2" id={`ds-${dataset.id}`}>
                  {dataset.title}
                </Typography>
                <Chip
                  size="small"
                  color={dataset.access ? 'success' : 'default'}
                  label={
                    dataset.access === 'row'
                      ? 'Row access'
                      : dataset.access === 'aggregate'
                        ? 'Aggregate access'
                        : 'No access'
                  }
                />
              </Stack>
              <Typography color="text.secondary">{dataset.description}</Typography>
              {!dataset.access && latest && (
                <Alert severity={latest.status === 'rejected' ? 'warning' : 'info'} sx={{ mt: 2 }}>
                  {latest.status === 'pending' &&
                    'Your request for access is waiting for an administrator.'}
                  {latest.status === 'rejected' &&
                    `Your request was turned down: ${latest.decisionReason ?? 'no reason given'}.`}
                  {latest.status === 'approved' && 'Your request was approved.'}
                </Alert>
              )}
            </CardContent>
            {dataset.access && (
              <CardActions>
                <Button component={RouterLink} to={`/datasets/${dataset.id}`}>
                  Dictionary
                </Button>
                <Button component={RouterLink} to={`/queries/new?dataset=${dataset.id}`}>
                  New query
                </Button>
              </CardActions>
            )}
            {/* The auditor reads and asks for nothing: the log they check records no act of theirs. */}
            {!dataset.access && latest?.status !== 'pending' && !readOnly && (
              <CardActions>
                <Button onClick={() => setRequesting(dataset)}>Request access</Button>
              </CardActions>
            )}
          </Card>
        );
      })}
      {requesting && (
        <RequestAccessDialog dataset={requesting} onClose={() => setRequesting(undefined)} />
      )}
      {recent && <RecentQueries />}
    </Stack>
  );
}

function RequestAccessDialog({
  dataset,
  onClose,
}: {
  dataset: DatasetListing;
  onClose: () => void;
}) {
  const client = useQueryClient();
  const [purpose, setPurpose] = useState('');
  const [level, setLevel] = useState<'aggregate' | 'row'>('aggregate');
  const [acceptTerms, setAcceptTerms] = useState(false);
  const send = useMutation({
    mutationFn: () =>
      api(accessRequestViewSchema, 'POST', '/api/v1/access-requests', {
        datasetId: dataset.id,
        purpose,
        level,
        acceptTerms,
      }),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ['access-requests'] });
      onClose();
    },
  });
  const fieldError = (path: string) =>
    send.error instanceof ApiError ? send.error.detailFor(path) : undefined;

  return (
    <Dialog open onClose={onClose} fullWidth maxWidth="sm" aria-labelledby="request-title">
      <DialogTitle id="request-title">Request access to {dataset.title}</DialogTitle>
      <DialogContent>
        <Stack spacing={2} sx={{ pt: 1 }}>
          {send.isError && !fieldError('purpose') && !fieldError('acceptTerms') && (
            <Alert severity="error">{messageOf(send.error)}</Alert>
          )}
          <TextField
            label="What you will use it for"
            multiline
            minRows={3}
            value={purpose}
            onChange={(event) => setPurpose(event.target.value)}
            error={Boolean(fieldError('purpose'))}
            helperText={fieldError('purpose') ?? 'The research question, in a sentence or two'}
            required
          />
          <TextField
            select
            label="Access you need"
            value={level}
            onChange={(event) => setLevel(event.target.value as 'aggregate' | 'row')}
            helperText="Aggregate: counts and statistics, small groups hidden. Row: the records too."
          >
            <MenuItem value="aggregate">Aggregate</MenuItem>
            <MenuItem value="row">Row</MenuItem>
          </TextField>
          <Typography variant="subtitle2" component="h3">
            Data-use terms
          </Typography>
          <Typography variant="body2" color="text.secondary">
            {dataset.dataUseTerms}
          </Typography>
          <FormControlLabel
            control={
              <Checkbox
                checked={acceptTerms}
                onChange={(event) => setAcceptTerms(event.target.checked)}
              />
            }
            label="I accept the data-use terms"
          />
        </Stack>
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Cancel</Button>
        <Button
          variant="contained"
          onClick={() => send.mutate()}
          disabled={!acceptTerms || send.isPending}
        >
          Send request
        </Button>
      </DialogActions>
    </Dialog>
  );
}
