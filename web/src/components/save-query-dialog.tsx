import { projectListSchema, savedQueryViewSchema, type SavedQueryView } from '@medlake/shared';
import {
  Alert,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  FormControlLabel,
  MenuItem,
  Radio,
  RadioGroup,
  Stack,
  TextField,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, ApiError, messageOf } from '../api.ts';

const nameLimit = 200;
const ownFields = ['name', 'description', 'projectId'];

/**
 * Saves a query spec under a name, for oneself or shared with one of one's projects, whose
 * members then find it under "Saved" and can run it or open it in the builder. Saving never
 * runs the query. A problem with the name shows at the name; a problem with the query goes to
 * `onSpecError`, which marks the builder's fields.
 */
export function SaveQueryButton(props: {
  spec: unknown;
  disabled?: boolean;
  /** Checks the query first; false keeps the dialog closed (the problems are shown). */
  beforeOpen?: () => boolean;
  onSpecError?: (error: unknown) => void;
  /** A saved query of the user's own that the builder holds: offered to update in place. */
  existing?: SavedQueryView;
}) {
  const client = useQueryClient();
  const [open, setOpen] = useState(false);
  const [name, setName] = useState(props.existing?.name ?? '');
  const [description, setDescription] = useState(props.existing?.description ?? '');
  const [projectId, setProjectId] = useState(props.existing?.projectId ?? '');
  const [target, setTarget] = useState<'update' | 'new'>(props.existing ? 'update' : 'new');
  const projects = useQuery({
    queryKey: ['my-projects'],
    queryFn: () => api(projectListSchema, 'GET', '/api/v1/me/projects'),
    enabled: open,
  });
  const save = useMutation({
    mutationFn: () =>
      props.existing && target === 'update'
        ? api(savedQueryViewSchema, 'PATCH', `/api/v1/saved-queries/${props.existing.id}`, {
            name,
            description,
            spec: props.spec,
            projectId: projectId || null,
          })
        : api(savedQueryViewSchema, 'POST', '/api/v1/saved-queries', {
            name,
            description,
            spec: props.spec,
            ...(projectId ? { projectId } : {}),
          }),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ['saved-queries'] });
    },
    onError: (error) => {
      if (props.onSpecError && error instanceof ApiError && specProblem(error)) {
        props.onSpecError(error);
      }
    },
  });
  const close = () => {
    setOpen(false);
    save.reset();
  };
  const error = save.error instanceof ApiError ? save.error : undefined;
  const fieldError = (path: string) => error?.detailFor(path);
  const generalError =
    save.isError &&
    !ownFields.some((path) => fieldError(path)) &&
    (error && specProblem(error)
      ? `The query cannot be saved as it is: ${error.message}. ${props.onSpecError ? 'The fields with problems are marked in the form.' : ''}`
      : messageOf(save.error));
  return (
    <>
      <Button
        variant="outlined"
        size="large"
        onClick={() => {
          if (!props.beforeOpen || props.beforeOpen()) setOpen(true);
        }}
        disabled={props.disabled}
      >
        Save query
      </Button>
      <Dialog open={open} onClose={close} fullWidth maxWidth="sm">
        <form
          noValidate
          onSubmit={(event) => {
            event.preventDefault();
            // React passes events up through portals: the builder's own form must not hear it.
            event.stopPropagation();
            save.mutate();
          }}
        >
          <DialogTitle>Save the query</DialogTitle>
          <DialogContent>
            <Stack spacing={2} sx={{ pt: 1 }}>
              {save.isSuccess ? (
                <Alert severity="success">
                  Saved as “{save.data.name}”
                  {save.data.projectId ? `, shared with ${save.data.projectId}` : ''}. It has not
                  run; find it under Queries, Saved.
                </Alert>
              ) : (
                <>
                  {props.existing && (
                    <RadioGroup
                      aria-label="Where to save"
                      value={target}
                      onChange={(event) => setTarget(event.target.value as 'update' | 'new')}
                    >
                      <FormControlLabel
                        value="update"
                        control={<Radio />}
                        label={`Replace “${props.existing.name}”`}
                      />
                      <FormControlLabel
                        value="new"
                        control={<Radio />}
                        label="Save as a new query"
                      />
                    </RadioGroup>
                  )}
                  <TextField
                    label="Name"
                    value={name}
                    required
                    onChange={(event) => setName(event.target.value)}
                    error={Boolean(fieldError('name')) || name.length > nameLimit}
                    helperText={
                      fieldError('name') ??
                      (name.length > nameLimit
                        ? `${name.length.toLocaleString()} characters: at most ${nameLimit}`
                        : `${name.length}/${nameLimit} characters`)
                    }
                  />
                  <TextField
                    label="Description"
                    value={description}
                    multiline
                    minRows={2}
                    onChange={(event) => setDescription(event.target.value)}
                    error={Boolean(fieldError('description'))}
                    helperText={fieldError('description')}
                  />
                  <TextField
                    select
                    label="Share with"
                    value={projectId}
                    onChange={(event) => setProjectId(event.target.value)}
                    error={Boolean(fieldError('projectId'))}
                    helperText={
                      fieldError('projectId') ??
                      (projects.data?.projects.length === 0
                        ? 'You are in no project; an administrator adds members'
                        : 'Members of the project can run it and open it in the builder')
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
              {generalError && <Alert severity="error">{generalError}</Alert>}
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

/** Whether the server's problem is with the query (a spec path) rather than the name. */
function specProblem(error: ApiError): boolean {
  if (error.details.length === 0)
    return error.status === 403 && error.code !== 'not_project_member';
  return error.details.some((detail) => !ownFields.includes(detail.path.replace(/^\//, '')));
}
