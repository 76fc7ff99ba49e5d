import {
  projectViewSchema,
  userViewSchema,
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
  MenuItem,
  Stack,
  TextField,
  Typography,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { z } from 'zod';
import { api, messageOf } from '../api.ts';

const projectsSchema = z.object({ projects: z.array(projectViewSchema) });
const usersSchema = z.object({ users: z.array(userViewSchema) });

/** Projects: groups of researchers that a grant can be given to as a whole. */
export function AdminProjectsPage() {
  const projects = useQuery({
    queryKey: ['admin-projects'],
    queryFn: () => api(projectsSchema, 'GET', '/api/v1/admin/projects'),
  });
  const users = useQuery({
    queryKey: ['admin-users'],
    queryFn: () => api(usersSchema, 'GET', '/api/v1/admin/users'),
  });
  if (projects.isPending || users.isPending)
    return <CircularProgress aria-label="Loading projects" />;
  if (projects.isError) return <Alert severity="error">{messageOf(projects.error)}</Alert>;
  if (users.isError) return <Alert severity="error">{messageOf(users.error)}</Alert>;
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
        <ProjectCard key={project.id} project={project} users={users.data.users} />
      ))}
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

function ProjectCard({ project, users }: { project: ProjectView; users: UserView[] }) {
  const client = useQueryClient();
  const [adding, setAdding] = useState('');
  const membership = useMutation({
    mutationFn: (input: { userId: string; member: boolean }) =>
      api(
        projectViewSchema,
        input.member ? 'PUT' : 'DELETE',
        `/api/v1/admin/projects/${project.id}/members/${input.userId}`,
      ),
    onSuccess: () => client.invalidateQueries({ queryKey: ['admin-projects'] }),
  });
  const byId = new Map(users.map((user) => [user.id, user]));
  const candidates = users.filter((user) => !project.members.includes(user.id));
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
          {project.members.map((userId) => (
            <Chip
              key={userId}
              label={byId.get(userId)?.email ?? userId}
              onDelete={() => membership.mutate({ userId, member: false })}
            />
          ))}
        </Stack>
        <Stack direction="row" spacing={2}>
          <TextField
            select
            sx={{ minWidth: 260 }}
            label={`Add a member to ${project.name}`}
            value={adding}
            onChange={(event) => setAdding(event.target.value)}
          >
            {candidates.map((user) => (
              <MenuItem key={user.id} value={user.id}>
                {user.email}
              </MenuItem>
            ))}
          </TextField>
          <Button
            onClick={() => {
              membership.mutate({ userId: adding, member: true });
              setAdding('');
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
