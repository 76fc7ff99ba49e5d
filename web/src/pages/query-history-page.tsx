import {
  queryJobPageSchema,
  queryJobSchema,
  savedQueryPageSchema,
  savedQueryViewSchema,
  type SavedQueryView,
} from '@medlake/shared';
import {
  Alert,
  Button,
  Chip,
  CircularProgress,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  Stack,
  TextField,
  Tab,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Tabs,
  Typography,
} from '@mui/material';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link as RouterLink, useNavigate, useSearchParams } from 'react-router';
import { z } from 'zod';
import { api, ApiError, messageOf } from '../api.ts';
import { formatDateTime } from '../format.ts';
import { useServerPage } from '../components/server-page.tsx';
import { WideTable } from '../components/wide-table.tsx';

/**
 * The user's queries, newest first, and the saved queries they may use (their own and those
 * shared with their projects); both paged on the server. Each can be run again or copied
 * into the builder.
 */
export function QueryHistoryPage() {
  const [params, setParams] = useSearchParams();
  const tab = params.get('tab') === 'saved' ? 'saved' : 'history';
  return (
    <Stack spacing={2}>
      <Stack direction="row" sx={{ justifyContent: 'space-between', alignItems: 'center' }}>
        <Typography variant="h4" component="h1">
          Queries
        </Typography>
        <Button variant="contained" component={RouterLink} to="/queries/new">
          New query
        </Button>
      </Stack>
      <Tabs
        value={tab}
        onChange={(_event, next: string) => setParams(next === 'saved' ? { tab: 'saved' } : {})}
      >
        <Tab value="history" label="History" />
        <Tab value="saved" label="Saved" />
      </Tabs>
      {tab === 'history' ? <History /> : <Saved />}
    </Stack>
  );
}

/** Runs a spec again: current releases and the user's access as they are now. */
function useRunAgain() {
  const navigate = useNavigate();
  const client = useQueryClient();
  return useMutation({
    mutationFn: (spec: unknown) => api(queryJobSchema, 'POST', '/api/v1/queries', spec),
    onSuccess: async (job) => {
      await client.invalidateQueries({ queryKey: ['queries'] });
      await navigate(`/queries/${job.id}`);
    },
  });
}

function History() {
  const rerun = useRunAgain();
  const paging = useServerPage();
  const queries = useQuery({
    queryKey: ['queries', ...paging.key],
    queryFn: () => api(queryJobPageSchema, 'GET', `/api/v1/queries?${paging.query()}`),
    placeholderData: keepPreviousData,
  });
  if (queries.isPending) return <CircularProgress aria-label="Loading your queries" />;
  if (queries.isError) return <Alert severity="error">{messageOf(queries.error)}</Alert>;
  if (queries.data.total === 0) {
    return <Alert severity="info">You have run no query yet. Start with “New query”.</Alert>;
  }
  return (
    <>
      {rerun.isError && <Alert severity="error">{messageOf(rerun.error)}</Alert>}
      <WideTable label="Your queries">
        <TableHead>
          <TableRow>
            <TableCell>Started</TableCell>
            <TableCell>Dataset</TableCell>
            <TableCell>Status</TableCell>
            <TableCell>Key point</TableCell>
            <TableCell />
          </TableRow>
        </TableHead>
        <TableBody>
          {queries.data.queries.map((query) => (
            <TableRow key={query.id} hover>
              <TableCell>
                <RouterLink to={`/queries/${query.id}`}>
                  {formatDateTime(query.createdAt)}
                </RouterLink>
              </TableCell>
              <TableCell>{query.dataset}</TableCell>
              <TableCell>
                <Chip
                  size="small"
                  label={query.status}
                  color={
                    query.status === 'succeeded'
                      ? 'success'
                      : query.status === 'failed'
                        ? 'error'
                        : 'default'
                  }
                />
              </TableCell>
              <TableCell sx={{ minWidth: 240 }}>
                {query.summary?.keyPoints[0] ?? query.error?.message ?? ''}
              </TableCell>
              <TableCell sx={{ whiteSpace: 'nowrap' }}>
                <Button
                  size="small"
                  onClick={() => rerun.mutate(query.spec)}
                  disabled={rerun.isPending}
                >
                  Run again
                </Button>
                <Button size="small" component={RouterLink} to={`/queries/new?from=${query.id}`}>
                  Copy
                </Button>
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </WideTable>
      {paging.pagination(queries.data.total)}
    </>
  );
}

function Saved() {
  const client = useQueryClient();
  const rerun = useRunAgain();
  const paging = useServerPage();
  const saved = useQuery({
    queryKey: ['saved-queries', ...paging.key],
    queryFn: () => api(savedQueryPageSchema, 'GET', `/api/v1/saved-queries?${paging.query()}`),
    placeholderData: keepPreviousData,
  });
  const [renaming, setRenaming] = useState<SavedQueryView>();
  const [deleting, setDeleting] = useState<SavedQueryView>();
  const remove = useMutation({
    mutationFn: (id: string) => api(z.null(), 'DELETE', `/api/v1/saved-queries/${id}`),
    onSuccess: async () => {
      setDeleting(undefined);
      await client.invalidateQueries({ queryKey: ['saved-queries'] });
    },
  });
  if (saved.isPending) return <CircularProgress aria-label="Loading saved queries" />;
  if (saved.isError) return <Alert severity="error">{messageOf(saved.error)}</Alert>;
  if (saved.data.total === 0) {
    return (
      <Alert severity="info">
        No saved query yet. Save one from the builder or a result; share it with a project and its
        members find it here.
      </Alert>
    );
  }
  return (
    <>
      {(rerun.isError || remove.isError) && (
        <Alert severity="error">{messageOf(rerun.error ?? remove.error)}</Alert>
      )}
      <WideTable label="Saved queries">
        <TableHead>
          <TableRow>
            <TableCell>Name</TableCell>
            <TableCell>Dataset</TableCell>
            <TableCell>Shared with</TableCell>
            <TableCell>By</TableCell>
            <TableCell>Saved</TableCell>
            <TableCell />
          </TableRow>
        </TableHead>
        <TableBody>
          {saved.data.queries.map((query) => (
            <TableRow key={query.id} hover>
              <TableCell>
                {query.name}
                {query.description && (
                  <Typography variant="body2" color="text.secondary">
                    {query.description}
                  </Typography>
                )}
              </TableCell>
              <TableCell>{query.datasetId}</TableCell>
              <TableCell>{query.projectId ?? 'only you'}</TableCell>
              <TableCell>{query.mine ? 'you' : query.author}</TableCell>
              <TableCell sx={{ whiteSpace: 'nowrap' }}>{formatDateTime(query.createdAt)}</TableCell>
              <TableCell sx={{ whiteSpace: 'nowrap' }}>
                <Button
                  size="small"
                  onClick={() => rerun.mutate(query.spec)}
                  disabled={rerun.isPending}
                  aria-label={`Run: ${query.name}`}
                >
                  Run
                </Button>
                <Button
                  size="small"
                  component={RouterLink}
                  to={`/queries/new?saved=${query.id}`}
                  aria-label={`Open in builder: ${query.name}`}
                >
                  Open in builder
                </Button>
                {query.mine && (
                  <>
                    <Button
                      size="small"
                      onClick={() => setRenaming(query)}
                      aria-label={`Rename: ${query.name}`}
                    >
                      Rename
                    </Button>
                    <Button
                      size="small"
                      color="error"
                      onClick={() => setDeleting(query)}
                      aria-label={`Delete: ${query.name}`}
                    >
                      Delete
                    </Button>
                  </>
                )}
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </WideTable>
      {paging.pagination(saved.data.total)}
      {renaming && <RenameDialog saved={renaming} onClose={() => setRenaming(undefined)} />}
      <Dialog open={deleting !== undefined} onClose={() => setDeleting(undefined)}>
        <DialogTitle>Delete “{deleting?.name}”?</DialogTitle>
        <DialogContent>
          <DialogContentText>
            {deleting?.projectId ? `Members of ${deleting.projectId} will no longer find it. ` : ''}
            The queries run from it stay in their owners' history.
          </DialogContentText>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setDeleting(undefined)}>Cancel</Button>
          <Button
            color="error"
            variant="contained"
            disabled={remove.isPending}
            onClick={() => deleting && remove.mutate(deleting.id)}
          >
            Delete
          </Button>
        </DialogActions>
      </Dialog>
    </>
  );
}

/** A new name and description for a saved query of one's own; the server's problems at the fields. */
function RenameDialog({ saved, onClose }: { saved: SavedQueryView; onClose: () => void }) {
  const client = useQueryClient();
  const [name, setName] = useState(saved.name);
  const [description, setDescription] = useState(saved.description);
  const rename = useMutation({
    mutationFn: () =>
      api(savedQueryViewSchema, 'PATCH', `/api/v1/saved-queries/${saved.id}`, {
        name,
        description,
      }),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ['saved-queries'] });
      onClose();
    },
  });
  const error = rename.error instanceof ApiError ? rename.error : undefined;
  const nameError = error?.detailFor('name');
  const descriptionError = error?.detailFor('description');
  return (
    <Dialog open onClose={onClose} fullWidth maxWidth="sm">
      <form
        noValidate
        onSubmit={(event) => {
          event.preventDefault();
          rename.mutate();
        }}
      >
        <DialogTitle>Rename “{saved.name}”</DialogTitle>
        <DialogContent>
          <Stack spacing={2} sx={{ pt: 1 }}>
            <TextField
              label="Name"
              value={name}
              required
              onChange={(event) => setName(event.target.value)}
              error={Boolean(nameError)}
              helperText={nameError ?? `${name.length}/200 characters`}
            />
            <TextField
              label="Description"
              value={description}
              multiline
              minRows={2}
              onChange={(event) => setDescription(event.target.value)}
              error={Boolean(descriptionError)}
              helperText={descriptionError}
            />
            {rename.isError && !nameError && !descriptionError && (
              <Alert severity="error">{messageOf(rename.error)}</Alert>
            )}
          </Stack>
        </DialogContent>
        <DialogActions>
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="contained" disabled={rename.isPending || !name.trim()}>
            Rename
          </Button>
        </DialogActions>
      </form>
    </Dialog>
  );
}
