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
  Typography,
} from '@mui/material';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, messageOf } from '../api.ts';
import { IdAndNameForm } from '../components/id-and-name-form.tsx';
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
  return (
    <IdAndNameForm
      title="New project"
      idLabel="Project id"
      idHelp="Lower-case words joined by dashes, e.g. diabetes-2026"
      nameLabel="Project name"
      submitLabel="Make project"
      create={async (input) => {
        const made = await api(projectViewSchema, 'POST', '/api/v1/admin/projects', input);
        await client.invalidateQueries({ queryKey: ['admin-projects'] });
        return made;
      }}
    />
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
