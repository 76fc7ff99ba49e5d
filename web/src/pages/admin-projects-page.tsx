import { projectPageSchema, projectViewSchema, type ProjectView } from '@medlake/shared';
import { Alert, Card, CardContent, CircularProgress, Stack, Typography } from '@mui/material';
import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, messageOf } from '../api.ts';
import { IdAndNameForm } from '../components/id-and-name-form.tsx';
import { useServerPage } from '../components/server-page.tsx';
import { PeopleEditor } from '../components/people-editor.tsx';

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
  return (
    <Card variant="outlined" component="section" aria-labelledby={`project-${project.id}`}>
      <CardContent>
        <Typography variant="h6" component="h2" id={`project-${project.id}`} gutterBottom>
          {project.name}{' '}
          <Typography component="span" color="text.secondary">
            ({project.id})
          </Typography>
        </Typography>
        <PeopleEditor
          people={project.members}
          empty="No member yet."
          pickerLabel={`Add a member to ${project.name}`}
          addLabel="Add"
          change={async ({ userId, present }) => {
            await api(
              projectViewSchema,
              present ? 'PUT' : 'DELETE',
              `/api/v1/admin/projects/${project.id}/members/${userId}`,
            );
            await client.invalidateQueries({ queryKey: ['admin-projects'] });
          }}
        />
      </CardContent>
    </Card>
  );
}
