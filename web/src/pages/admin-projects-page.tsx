import {
  projectPageSchema,
  projectViewSchema,
  type ProjectView,
  type UserView,
} from '@medlake/shared';
import {
  Alert,
  Button,
  Card,
  CardContent,
  Chip,
  CircularProgress,
  Stack,
  TextField,
  Typography,
} from '@mui/material';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, messageOf } from '../api.ts';
import { useServerPage } from '../components/server-page.tsx';
import { UserPicker } from '../components/user-picker.tsx';

/** Projects: groups of researchers that a grant can be given to as a whole. */
export function AdminProjectsPage() {
  const paging = useServerPage(10);
  const projects = useQuery({
    queryKey: ['admin-projects', ...paging.key],
    queryFn: () => api(projectPageSchema, 'GET', `/api/v1/admin/projects?${paging.query()}`),
    placeholderData: keepPreviousData,
  });
  if (projects.isPending) return <CircularProgress aria-label="Loading projects" />;
  if (projects.isError) return <Alert severity="error">{messageOf(projects.error)}</Alert>;
  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Projects
      </Typography>
      <Typography color="text.secondary">
        A grant given to a project holds for each of its members while they are one. Grant a project
        access on the users and grants page.
      </Typography>
      <NewProject />
      {projects.data.projects.length === 0 && <Alert severity="info">No project yet.</Alert>}
      {projects.data.projects.map((project) => (
        <ProjectCard key={project.id} project={project} />
      ))}
      {projects.data.total > 0 && paging.pagination(projects.data.total)}
    </Stack>
  );
}

function NewProject() {
  const client = useQueryClient();
  const [id, setId] = useState('');
  const [name, setName] = useState('');
  const make = useMutation({
    mutationFn: () => api(projectViewSchema, 'POST', '/api/v1/admin/projects', { id, name }),
    onSuccess: async () => {
      setId('');
      setName('');
      await client.invalidateQueries({ queryKey: ['admin-projects'] });
    },
  });
  return (
    <Card variant="outlined" component="section" aria-labelledby="new-project">
      <CardContent>
        <Typography variant="h6" component="h2" id="new-project" gutterBottom>
          New project
        </Typography>
        <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2}>
          <TextField
            label="Project id"
            value={id}
            onChange={(event) => setId(event.target.value)}
            helperText="Lower-case words joined by dashes, e.g. diabetes-2026"
          />
          <TextField
            label="Project name"
            value={name}
            onChange={(event) => setName(event.target.value)}
          />
          <div>
            <Button
              variant="contained"
              onClick={() => make.mutate()}
              disabled={!id || !name || make.isPending}
            >
              Make project
            </Button>
          </div>
        </Stack>
        {make.isError && (
          <Alert severity="error" sx={{ mt: 2 }}>
            {messageOf(make.error)}
          </Alert>
        )}
      </CardContent>
    </Card>
  );
}

function ProjectCard({ project }: { project: ProjectView }) {
  const client = useQueryClient();
  const [adding, setAdding] = useState<UserView | null>(null);
  const membership = useMutation({
    mutationFn: (input: { userId: string; member: boolean }) =>
      api(
        projectViewSchema,
        input.member ? 'PUT' : 'DELETE',
        `/api/v1/admin/projects/${project.id}/members/${input.userId}`,
      ),
    onSuccess: () => client.invalidateQueries({ queryKey: ['admin-projects'] }),
  });
  return (
    <Card variant="outlined" component="section" aria-labelledby={`project-${project.id}`}>
      <CardContent>
        <Typography variant="h6" component="h2" id={`project-${project.id}`} gutterBottom>
          {project.name}{' '}
          <Typography component="span" color="text.secondary">
            ({project.id})
          </Typography>
        </Typography>
        <Stack direction="row" spacing={1} sx={{ flexWrap: 'wrap', gap: 1, mb: 2 }}>
          {project.members.length === 0 && (
            <Typography color="text.secondary">No member yet.</Typography>
          )}
          {project.members.map((member) => (
            <Chip
              key={member.userId}
              label={member.email}
              onDelete={() => membership.mutate({ userId: member.userId, member: false })}
            />
          ))}
        </Stack>
        <Stack direction="row" spacing={2}>
          <UserPicker
            label={`Add a member to ${project.name}`}
            value={adding}
            onChange={setAdding}
          />
          <Button
            onClick={() => {
              if (adding) membership.mutate({ userId: adding.id, member: true });
              setAdding(null);
            }}
            disabled={!adding || membership.isPending}
          >
            Add
          </Button>
        </Stack>
        {membership.isError && (
          <Alert severity="error" sx={{ mt: 2 }}>
            {messageOf(membership.error)}
          </Alert>
        )}
      </CardContent>
    </Card>
  );
}
