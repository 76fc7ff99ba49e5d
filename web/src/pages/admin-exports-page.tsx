import { exportReviewListSchema, resultReviewListSchema } from '@medlake/shared';
import {
  Alert,
  Box,
  Button,
  Card,
  CardActions,
  CardContent,
  CircularProgress,
  List,
  ListItem,
  ListItemText,
  Stack,
  TextField,
  Typography,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { z } from 'zod';
import { api, fieldErrors, messageOf } from '../api.ts';
import { formatBytes, formatDateTime } from '../format.ts';

type PendingExport = z.infer<typeof exportReviewListSchema>['exports'][number];

type HeldResult = z.infer<typeof resultReviewListSchema>['results'][number];

/**
 * The airlock: query results held as a whole because they failed an output check, and exports
 * made before results were reviewed as a whole, each waiting for an admin's decision.
 */
export function AdminExportsPage() {
  const pending = useQuery({
    queryKey: ['admin-exports'],
    queryFn: () => api(exportReviewListSchema, 'GET', '/api/v1/admin/exports'),
  });
  const held = useQuery({
    queryKey: ['admin-results'],
    queryFn: () => api(resultReviewListSchema, 'GET', '/api/v1/admin/results'),
  });
  const nothing = pending.data?.exports.length === 0 && held.data?.results.length === 0;
  return (
    <Stack spacing={2}>
      <Typography variant="h4" component="h1">
        Held for review
      </Typography>
      {(pending.isPending || held.isPending) && (
        <CircularProgress aria-label="Loading the airlock" />
      )}
      {pending.isError && <Alert severity="error">{messageOf(pending.error)}</Alert>}
      {held.isError && <Alert severity="error">{messageOf(held.error)}</Alert>}
      {nothing && <Alert severity="success">Nothing is waiting for review.</Alert>}
      {held.data?.results.map((item) => (
        <HeldResultReview key={item.queryId} item={item} />
      ))}
      {pending.data?.exports.map((item) => (
        <Review key={item.id} item={item} />
      ))}
    </Stack>
  );
}

/** A result held whole: nothing of it reaches its owner until an admin approves it. */
function HeldResultReview({ item }: { item: HeldResult }) {
  const client = useQueryClient();
  const [reason, setReason] = useState('');
  const decide = useMutation({
    mutationFn: (approve: boolean) =>
      api(z.null(), 'POST', `/api/v1/admin/results/${item.queryId}/review`, { approve, reason }),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ['admin-results'] });
      await client.invalidateQueries({ queryKey: ['admin-exports'] });
    },
  });
  const errors = fieldErrors<string>(decide.error, ['reason']);
  return (
    <Card variant="outlined" component="section" aria-label={`Result of query ${item.queryId}`}>
      <CardContent>
        <Typography variant="subtitle1" component="h2" gutterBottom>
          {item.userEmail} ran a query on {item.dataset} with {item.accessLevel} access
          {item.finishedAt ? ` (${formatDateTime(item.finishedAt)})` : ''}: its result is held
        </Typography>
        <List dense aria-label="Output checks">
          {item.report.checks.map((check) => (
            <ListItem key={check.check} disableGutters>
              <ListItemText
                primary={`${check.passed ? 'Passed' : 'Failed'}: ${check.check.replaceAll('_', ' ')}`}
                secondary={check.detail}
              />
            </ListItem>
          ))}
        </List>
        <Box component="details" sx={{ mb: 1 }}>
          <summary>The query</summary>
          <Box component="pre" sx={{ whiteSpace: 'pre-wrap', fontSize: 13, m: 0 }}>
            {JSON.stringify(item.spec, null, 2)}
          </Box>
        </Box>
        {errors.general && <Alert severity="error">{errors.general}</Alert>}
        <TextField
          fullWidth
          sx={{ mt: 1 }}
          label="Reason (recorded, shown in the audit log)"
          value={reason}
          onChange={(event) => setReason(event.target.value)}
          {...errors.at('reason')}
        />
      </CardContent>
      <CardActions>
        <Button
          variant="contained"
          onClick={() => decide.mutate(true)}
          disabled={decide.isPending || reason.trim().length < 5}
        >
          Approve
        </Button>
        <Button
          color="error"
          onClick={() => decide.mutate(false)}
          disabled={decide.isPending || reason.trim().length < 5}
        >
          Reject
        </Button>
      </CardActions>
    </Card>
  );
}

function Review({ item }: { item: PendingExport }) {
  const client = useQueryClient();
  const [reason, setReason] = useState('');
  const decide = useMutation({
    mutationFn: (approve: boolean) =>
      api(z.null(), 'POST', `/api/v1/admin/exports/${item.id}/review`, { approve, reason }),
    onSuccess: () => client.invalidateQueries({ queryKey: ['admin-exports'] }),
  });
  return (
    <Card variant="outlined" component="section" aria-label={`Export ${item.fileName}`}>
      <CardContent>
        <Typography variant="subtitle1" component="h2" gutterBottom>
          {item.userEmail} asks to download {item.fileName} ({formatBytes(item.bytes)},{' '}
          {formatDateTime(item.createdAt)})
        </Typography>
        <List dense aria-label="Output checks">
          {item.report.checks.map((check) => (
            <ListItem key={check.check} disableGutters>
              <ListItemText
                primary={`${check.passed ? 'Passed' : 'Failed'}: ${check.check.replaceAll('_', ' ')}`}
                secondary={check.detail}
              />
            </ListItem>
          ))}
        </List>
        {decide.isError && <Alert severity="error">{messageOf(decide.error)}</Alert>}
        <TextField
          fullWidth
          sx={{ mt: 1 }}
          label="Reason (recorded, shown in the audit log)"
          value={reason}
          onChange={(event) => setReason(event.target.value)}
        />
      </CardContent>
      <CardActions>
        <Button
          variant="contained"
          onClick={() => decide.mutate(true)}
          disabled={decide.isPending || reason.trim().length < 5}
        >
          Approve
        </Button>
        <Button
          color="error"
          onClick={() => decide.mutate(false)}
          disabled={decide.isPending || reason.trim().length < 5}
        >
          Reject
        </Button>
      </CardActions>
    </Card>
  );
}
