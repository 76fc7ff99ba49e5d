import { auditPageSchema, auditVerificationSchema, type AuditEntryView } from '@medlake/shared';
import {
  Alert,
  Box,
  Button,
  CircularProgress,
  Drawer,
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
import { formatDateTime } from '../format.ts';

/** The audit log for auditors and admins: search, page, verify the chain, export. */
export function AuditPage() {
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [open, setOpen] = useState<AuditEntryView | null>(null);
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
          {verify.data.head && `, the last #${verify.data.head.seq}`}; it matches{' '}
          {verify.data.checkpoints ?? 0} signed checkpoint(s) kept outside the server's home.
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
                <TableRow key={entry.seq} hover>
                  <TableCell>
                    <Button
                      size="small"
                      onClick={() => setOpen(entry)}
                      aria-label={`Entry ${entry.seq}: every field`}
                    >
                      {entry.seq}
                    </Button>
                  </TableCell>
                  <TableCell>{formatDateTime(entry.at)}</TableCell>
                  <TableCell>{entry.actorNow ?? entry.actor ?? '—'}</TableCell>
                  <TableCell>{entry.action}</TableCell>
                  <TableCell>{entry.targetLabel ?? entry.target ?? '—'}</TableCell>
                  <TableCell>{entry.outcome}</TableCell>
                  <TableCell>{entry.source}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </WideTable>
          {paging.pagination(entries.data.total)}
        </>
      )}
      <Drawer anchor="right" open={open !== null} onClose={() => setOpen(null)}>
        {open && <EntryDetails entry={open} onClose={() => setOpen(null)} />}
      </Drawer>
    </Stack>
  );
}

/** Every field of one entry, names beside the ids they stand for. */
function EntryDetails({ entry, onClose }: { entry: AuditEntryView; onClose: () => void }) {
  const named = (id: string | null) => {
    if (!id) return '—';
    const name = entry.names?.[id];
    return name ? `${name} (${id})` : id;
  };
  const fields: Array<[string, string]> = [
    ['When', formatDateTime(entry.at)],
    ['Who', entry.actorNow ?? entry.actor ?? '—'],
    ['Name at the time', entry.actor ?? '—'],
    ['User id', entry.actorId ?? '—'],
    ['Action', entry.action],
    ['About', entry.targetLabel ? `${entry.targetLabel} (${entry.target})` : named(entry.target)],
    ['Outcome', entry.outcome],
    ['From', entry.source],
    ['Hash', entry.hash],
  ];
  return (
    <Box
      component="section"
      aria-labelledby="entry-title"
      sx={{ width: { xs: '100vw', sm: 480 }, p: 3 }}
    >
      <Stack direction="row" sx={{ justifyContent: 'space-between', alignItems: 'center' }}>
        <Typography variant="h6" component="h2" id="entry-title">
          Entry #{entry.seq}
        </Typography>
        <Button onClick={onClose}>Close</Button>
      </Stack>
      <Box component="dl" sx={{ m: 0 }}>
        {fields.map(([label, value]) => (
          <Box key={label} sx={{ mb: 1 }}>
            <Typography component="dt" variant="caption" color="text.secondary">
              {label}
            </Typography>
            <Typography component="dd" sx={{ m: 0, overflowWrap: 'anywhere' }}>
              {value}
            </Typography>
          </Box>
        ))}
        <Typography component="dt" variant="caption" color="text.secondary">
          Details
        </Typography>
        <Box component="dd" sx={{ m: 0 }}>
          {Object.keys(entry.details).length === 0 && <Typography>—</Typography>}
          {Object.entries(entry.details).map(([key, value]) => (
            <Typography key={key} sx={{ overflowWrap: 'anywhere' }}>
              <strong>{key}</strong>:{' '}
              {typeof value === 'string' ? named(value) : JSON.stringify(value)}
            </Typography>
          ))}
        </Box>
      </Box>
    </Box>
  );
}
