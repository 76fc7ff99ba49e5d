import { projectListSchema, savedQueryViewSchema } from '@medlake/shared';
import {
  Alert,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  MenuItem,
  Stack,
  TextField,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, messageOf } from '../api.ts';

/**
 * Saves a query spec under a name, for oneself or shared with one of one's projects, whose
 * members then find it under "Saved" and can run it or open it in the builder.
 */
export function SaveQueryButton({ spec, disabled }: { spec: unknown; disabled?: boolean }) {
  const client = useQueryClient();
  const [open, setOpen] = useState(false);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [projectId, setProjectId] = useState('');
  const projects = useQuery({
    queryKey: ['my-projects'],
    queryFn: () => api(projectListSchema, 'GET', '/api/v1/me/projects'),
    enabled: open,
  });
  const save = useMutation({
    mutationFn: () =>
      api(savedQueryViewSchema, 'POST', '/api/v1/saved-queries', {
        name,
        description,
        spec,
        ...(projectId ? { projectId } : {}),
      }),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ['saved-queries'] });
    },
  });
  const close = () => {
    setOpen(false);
    save.reset();
  };
  return (
    <>
      <Button variant="outlined" onClick={() => setOpen(true)} disabled={disabled}>
        Save query
      </Button>
      <Dialog open={open} onClose={close} fullWidth maxWidth="sm">
        <form
          onSubmit={(event) => {
            event.preventDefault();
            save.mutate();
          }}
        >
          <DialogTitle>Save the query</DialogTitle>
          <DialogContent>
            <Stack spacing={2} sx={{ pt: 1 }}>
              {save.isSuccess ? (
                <Alert severity="success">
                  Saved as “{save.data.name}”
                  {save.data.projectId ? `, shared with ${save.data.projectId}` : ''}. Find it under
                  Queries, Saved.
                </Alert>
              ) : (
                <>
                  <TextField
                    label="Name"
                    value={name}
                    required
                    onChange={(event) => setName(event.target.value)}
                  />
                  <TextField
                    label="Description"
                    value={description}
                    multiline
                    minRows={2}
                    onChange={(event) => setDescription(event.target.value)}
                  />
                  <TextField
                    select
                    label="Share with"
                    value={projectId}
                    onChange={(event) => setProjectId(event.target.value)}
                    helperText={
                      projects.data?.projects.length === 0
                        ? 'You are in no project; an administrator adds members'
                        : 'Members of the project can run it and open it in the builder'
                    }
                  >
                    <MenuItem value="">Only me</MenuItem>
                    {projects.data?.projects.map((project) => (
                      <MenuItem key={project.id} value={project.id}>
                        {project.name}
                      </MenuItem>
                    ))}
                  </TextField>
                </>
              )}
              {save.isError && <Alert severity="error">{messageOf(save.error)}</Alert>}
            </Stack>
          </DialogContent>
          <DialogActions>
            <Button onClick={close}>{save.isSuccess ? 'Close' : 'Cancel'}</Button>
            {!save.isSuccess && (
              <Button type="submit" variant="contained" disabled={save.isPending || !name.trim()}>
                Save
              </Button>
            )}
          </DialogActions>
        </form>
      </Dialog>
    </>
  );
}
