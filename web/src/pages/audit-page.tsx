import { auditPageSchema, auditVerificationSchema } from '@medlake/shared';
import {
  Alert,
  Button,
  CircularProgress,
  Link,
  Stack,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { keepPreviousData, useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useServerPage } from '../components/server-page.tsx';
import { api, messageOf } from '../api.ts';
import { WideTable } from '../components/wide-table.tsx';

/** The audit log for auditors and admins: search, page, verify the chain, export. */
export function AuditPage() {
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const paging = useServerPage(50, [50, 200, 500]);
  const filter: Record<string, string> = {
    ...(actor ? { actor } : {}),
    ...(action ? { action } : {}),
  };
  const entries = useQuery({
    queryKey: ['audit', actor, action, ...paging.key],
    queryFn: () => api(auditPageSchema, 'GET', `/api/v1/audit?${paging.query(filter)}`),
    placeholderData: keepPreviousData,
  });
  const verify = useMutation({
    mutationFn: () => api(auditVerificationSchema, 'POST', '/api/v1/audit/verify'),
  });

  return (
    <Stack spacing={2}>
      <Typography variant="h4" component="h1">
        Audit log
      </Typography>
      <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2} sx={{ alignItems: 'center' }}>
        <TextField
          label="Who (e-mail contains)"
          value={actor}
          onChange={(event) => {
            setActor(event.target.value);
            paging.reset();
          }}
        />
        <TextField
          label="Action (starts with)"
          value={action}
          onChange={(event) => {
            setAction(event.target.value);
            paging.reset();
          }}
          helperText="e.g. login, query, grant"
        />
        <Button variant="outlined" onClick={() => verify.mutate()} disabled={verify.isPending}>
          Verify the chain
        </Button>
        <Link href={`/api/v1/audit/export?${new URLSearchParams(filter)}`}>Export as CSV</Link>
      </Stack>
      {verify.data?.ok === true && (
        <Alert severity="success">
          The audit log is intact: {verify.data.entries} entries
          {verify.data.head && `, the last #${verify.data.head.seq}`}.
        </Alert>
      )}
      {verify.data?.ok === false && (
        <Alert severity="error">
          The audit log is broken at entry #{verify.data.firstBad}: {verify.data.problem}.
        </Alert>
      )}
      {verify.isError && <Alert severity="error">{messageOf(verify.error)}</Alert>}
      {entries.isPending && <CircularProgress aria-label="Loading the audit log" />}
      {entries.isError && <Alert severity="error">{messageOf(entries.error)}</Alert>}
      {entries.data && (
        <>
          <WideTable label="Audit entries">
            <TableHead>
              <TableRow>
                <TableCell>#</TableCell>
                <TableCell>When</TableCell>
                <TableCell>Who</TableCell>
                <TableCell>Action</TableCell>
                <TableCell>About</TableCell>
                <TableCell>Outcome</TableCell>
                <TableCell>From</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {entries.data.entries.map((entry) => (
                <TableRow key={entry.seq}>
                  <TableCell>{entry.seq}</TableCell>
                  <TableCell>{new Date(entry.at).toLocaleString()}</TableCell>
                  <TableCell>{entry.actor ?? '—'}</TableCell>
                  <TableCell>{entry.action}</TableCell>
                  <TableCell>{entry.target ?? '—'}</TableCell>
                  <TableCell>{entry.outcome}</TableCell>
                  <TableCell>{entry.source}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </WideTable>
          {paging.pagination(entries.data.total)}
        </>
      )}
    </Stack>
  );
}
