import { exportReviewListSchema } from '@medlake/shared';
import {
  Alert,
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
import { api, messageOf } from '../api.ts';
import { formatBytes, formatDateTime } from '../format.ts';

type PendingExport = z.infer<typeof exportReviewListSchema>['exports'][number];

/** The airlock: exports that failed an output check, waiting for an admin's decision. */
export function AdminExportsPage() {
  const pending = useQuery({
    queryKey: ['admin-exports'],
    queryFn: () => api(exportReviewListSchema, 'GET', '/api/v1/admin/exports'),
  });
  return (
    <Stack spacing={2}>
      <Typography variant="h4" component="h1">
        Exports to review
      </Typography>
      {pending.isPending && <CircularProgress aria-label="Loading exports" />}
      {pending.isError && <Alert severity="error">{messageOf(pending.error)}</Alert>}
      {pending.data?.exports.length === 0 && (
        <Alert severity="success">No export is waiting for review.</Alert>
      )}
      {pending.data?.exports.map((item) => (
        <Review key={item.id} item={item} />
      ))}
    </Stack>
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
