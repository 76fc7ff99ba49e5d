import { suspiciousActivitySchema } from '@medlake/shared';
import {
  Alert,
  CircularProgress,
  Stack,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, messageOf } from '../api.ts';
import { WideTable } from '../components/wide-table.tsx';
import { formatDateTime } from '../format.ts';

/**
 * For auditors and admins: who was refused, asked for objects that are not theirs or sent
 * specs the API refused, summed per user (or address) over a period; the busiest first.
 */
export function SuspiciousActivityPage() {
  const [days, setDays] = useState(7);
  const activity = useQuery({
    queryKey: ['suspicious', days],
    queryFn: () =>
      api(
        suspiciousActivitySchema,
        'GET',
        `/api/v1/audit/suspicious?from=${new Date(Date.now() - days * 86_400_000).toISOString()}`,
      ),
  });
  const suspects = activity.data?.suspects ?? [];
  return (
    <Stack spacing={2}>
      <Typography variant="h4" component="h1">
        Suspicious activity
      </Typography>
      <Typography color="text.secondary">
        Requests refused, answered &quot;not found&quot; for an object (another user&apos;s query, a
        guessed id) or refused as invalid input, counted per user or address in windows of a few
        minutes. A few are ordinary mistakes; many, or many kinds, deserve a look in the audit log.
      </Typography>
      <TextField
        type="number"
        label="Over the last days"
        value={days}
        onChange={(event) => setDays(Math.min(366, Math.max(1, Number(event.target.value) || 1)))}
        sx={{ maxWidth: 200 }}
      />
      {activity.isPending && <CircularProgress aria-label="Loading suspicious activity" />}
      {activity.isError && <Alert severity="error">{messageOf(activity.error)}</Alert>}
      {activity.isSuccess && suspects.length === 0 && (
        <Alert severity="success">Nothing suspicious in this period.</Alert>
      )}
      {suspects.length > 0 && (
        <WideTable label="Who probed, the most first">
          <TableHead>
            <TableRow>
              <TableCell>Who</TableCell>
              <TableCell align="right">Refused</TableCell>
              <TableCell align="right">Not found</TableCell>
              <TableCell align="right">Invalid</TableCell>
              <TableCell align="right">Total</TableCell>
              <TableCell>From</TableCell>
              <TableCell>Last seen</TableCell>
              <TableCell>Routes tried most</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {suspects.map((suspect) => (
              <TableRow key={suspect.userId ?? suspect.who}>
                <TableCell>{suspect.who}</TableCell>
                <TableCell align="right">{suspect.refused}</TableCell>
                <TableCell align="right">{suspect.notFound}</TableCell>
                <TableCell align="right">{suspect.invalid}</TableCell>
                <TableCell align="right">{suspect.total}</TableCell>
                <TableCell>{suspect.sources.join(', ')}</TableCell>
                <TableCell>{formatDateTime(suspect.lastAt)}</TableCell>
                <TableCell>
                  {Object.entries(suspect.routes)
                    .slice(0, 3)
                    .map(([route, n]) => `${route} ×${n}`)
                    .join('; ')}
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </WideTable>
      )}
    </Stack>
  );
}
