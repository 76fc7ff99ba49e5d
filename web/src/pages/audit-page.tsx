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
  TablePagination,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { keepPreviousData, useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, messageOf } from '../api.ts';
import { WideTable } from '../components/wide-table.tsx';

/** The audit log for auditors and admins: search, page, verify the chain, export. */
export function AuditPage() {
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [page, setPage] = useState(0);
  const [pageSize, setPageSize] = useState(50);
  const filter = new URLSearchParams({
    ...(actor ? { actor } : {}),
    ...(action ? { action } : {}),
  });
  const entries = useQuery({
    queryKey: ['audit', actor, action, page, pageSize],
    queryFn: () =>
      api(auditPageSchema, 'GET', `/api/v1/audit?${filter}&page=${page + 1}&pageSize=${pageSize}`),
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
            setPage(0);
          }}
        />
        <TextField
          label="Action (starts with)"
          value={action}
          onChange={(event) => {
            setAction(event.target.value);
            setPage(0);
          }}
          helperText="e.g. login, query, grant"
        />
        <Button variant="outlined" onClick={() => verify.mutate()} disabled={verify.isPending}>
          Verify the chain
        </Button>
        <Link href={`/api/v1/audit/export?${filter}`}>Export as CSV</Link>
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
          <TablePagination
            component="div"
            count={entries.data.total}
            page={page}
            onPageChange={(_event, next) => setPage(next)}
            rowsPerPage={pageSize}
            onRowsPerPageChange={(event) => {
              setPageSize(Number(event.target.value));
              setPage(0);
            }}
            rowsPerPageOptions={[50, 200, 500]}
          />
        </>
      )}
    </Stack>
  );
}
