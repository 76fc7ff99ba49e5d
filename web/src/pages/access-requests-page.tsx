import {
  accessRequestPageSchema,
  accessRequestViewSchema,
  type AccessRequestView,
} from '@medlake/shared';
import {
  Alert,
  Button,
  Card,
  CardActions,
  CardContent,
  CircularProgress,
  MenuItem,
  Stack,
  TextField,
  Typography,
} from '@mui/material';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, messageOf } from '../api.ts';
import { useServerPage } from '../components/server-page.tsx';
import { formatDate, formatDateTime } from '../format.ts';

/** The access requests waiting for an admin's decision, oldest concerns first. */
export function AccessRequestsPage() {
  const paging = useServerPage(10);
  const requests = useQuery({
    queryKey: ['admin-access-requests', ...paging.key],
    queryFn: () =>
      api(
        accessRequestPageSchema,
        'GET',
        `/api/v1/admin/access-requests?${paging.query({ status: 'pending' })}`,
      ),
    placeholderData: keepPreviousData,
  });
  return (
    <Stack spacing={2}>
      <Typography variant="h4" component="h1">
        Access requests
      </Typography>
      {requests.isPending && <CircularProgress aria-label="Loading requests" />}
      {requests.isError && <Alert severity="error">{messageOf(requests.error)}</Alert>}
      {requests.data?.requests.length === 0 && (
        <Alert severity="success">No request is waiting for a decision.</Alert>
      )}
      {requests.data?.requests.map((request) => (
        <Decision key={request.id} request={request} />
      ))}
      {requests.data && requests.data.total > 0 && paging.pagination(requests.data.total)}
    </Stack>
  );
}

function Decision({ request }: { request: AccessRequestView }) {
  const client = useQueryClient();
  const [level, setLevel] = useState(request.level);
  const [expires, setExpires] = useState('');
  const [reason, setReason] = useState('');
  const decide = useMutation({
    mutationFn: (approve: boolean) =>
      api(accessRequestViewSchema, 'POST', `/api/v1/admin/access-requests/${request.id}/decision`, {
        approve,
        ...(approve
          ? {
              level,
              ...(expires ? { expiresAt: new Date(`${expires}T23:59:59Z`).toISOString() } : {}),
            }
          : { reason }),
      }),
    onSuccess: () => client.invalidateQueries({ queryKey: ['admin-access-requests'] }),
  });
  return (
    <Card variant="outlined" component="section" aria-label={`Request ${request.id}`}>
      <CardContent>
        <Typography variant="subtitle1" component="h2" gutterBottom>
          {request.userEmail ?? request.userId} asks for {request.level} access to{' '}
          {request.datasetId} ({formatDate(request.createdAt)})
        </Typography>
        <Typography gutterBottom>{request.purpose}</Typography>
        <Typography variant="body2" color="text.secondary">
          Terms of contract version {request.termsVersion} accepted on{' '}
          {formatDateTime(request.termsAcceptedAt)}.
        </Typography>
        {decide.isError && (
          <Alert severity="error" sx={{ mt: 2 }}>
            {messageOf(decide.error)}
          </Alert>
        )}
        <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2} sx={{ mt: 2 }}>
          <TextField
            select
            label="Grant level"
            value={level}
            onChange={(event) => setLevel(event.target.value as typeof level)}
          >
            <MenuItem value="aggregate">Aggregate</MenuItem>
            <MenuItem value="row">Row</MenuItem>
          </TextField>
          <TextField
            label="Last day of access"
            type="date"
            value={expires}
            onChange={(event) => setExpires(event.target.value)}
            slotProps={{ inputLabel: { shrink: true } }}
            helperText="Empty: until revoked"
          />
          <TextField
            sx={{ flex: 1 }}
            label="Reason (for a rejection)"
            value={reason}
            onChange={(event) => setReason(event.target.value)}
          />
        </Stack>
      </CardContent>
      <CardActions>
        <Button variant="contained" onClick={() => decide.mutate(true)} disabled={decide.isPending}>
          Approve
        </Button>
        <Button
          color="error"
          onClick={() => decide.mutate(false)}
          disabled={decide.isPending || !reason.trim()}
        >
          Reject
        </Button>
      </CardActions>
    </Card>
  );
}
