import {
  hospitalOverviewSchema,
  hospitalPageSchema,
  stewardHospitalsSchema,
  type HospitalOverview,
} from '@medlake/shared';
import {
  Alert,
  Card,
  CardContent,
  CircularProgress,
  Stack,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Typography,
} from '@mui/material';
import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, messageOf } from '../api.ts';
import { IdAndNameForm } from '../components/id-and-name-form.tsx';
import { useServerPage } from '../components/server-page.tsx';
import { PeopleEditor } from '../components/people-editor.tsx';
import { WideTable } from '../components/wide-table.tsx';

/**
 * The hospitals that deliver data: who uploads for each (its data stewards), how many current
 * releases it has and its latest month. Admins add hospitals and assign stewards here.
 */
export function AdminHospitalsPage() {
  const paging = useServerPage();
  const hospitals = useQuery({
    queryKey: ['admin-hospitals', ...paging.key],
    queryFn: () => api(hospitalPageSchema, 'GET', `/api/v1/admin/hospitals?${paging.query()}`),
    placeholderData: keepPreviousData,
  });
  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Hospitals and stewards
      </Typography>
      <NewHospital />
      <Card variant="outlined" component="section" aria-labelledby="hospitals">
        <CardContent>
          <Typography variant="h6" component="h2" id="hospitals" gutterBottom>
            Hospitals
          </Typography>
          {hospitals.isPending && <CircularProgress aria-label="Loading hospitals" />}
          {hospitals.isError && <Alert severity="error">{messageOf(hospitals.error)}</Alert>}
          {hospitals.data?.total === 0 && (
            <Alert severity="info">No hospital yet. Add the first one above.</Alert>
          )}
          {hospitals.data && hospitals.data.total > 0 && (
            <>
              <WideTable labelledBy="hospitals">
                <TableHead>
                  <TableRow>
                    <TableCell>Hospital</TableCell>
                    <TableCell align="right">Current releases</TableCell>
                    <TableCell>Latest month</TableCell>
                    <TableCell>Data stewards</TableCell>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {hospitals.data.hospitals.map((hospital) => (
                    <HospitalRow key={hospital.id} hospital={hospital} />
                  ))}
                </TableBody>
              </WideTable>
              {paging.pagination(hospitals.data.total)}
            </>
          )}
        </CardContent>
      </Card>
    </Stack>
  );
}

function NewHospital() {
  const client = useQueryClient();
  return (
    <IdAndNameForm
      title="Add a hospital"
      idLabel="Id"
      idHelp="Lower-case letters, digits and dashes; it appears in the lake's paths"
      nameLabel="Name"
      submitLabel="Add"
      create={async (input) => {
        const made = await api(hospitalOverviewSchema, 'POST', '/api/v1/admin/hospitals', input);
        await client.invalidateQueries({ queryKey: ['admin-hospitals'] });
        return made;
      }}
      madeMessage={(made) =>
        `Added ${made.name}. Assign it a data steward below, who can then upload its months.`
      }
    />
  );
}

function HospitalRow({ hospital }: { hospital: HospitalOverview }) {
  const client = useQueryClient();
  return (
    <TableRow>
      <TableCell>
        {hospital.name}
        <Typography variant="body2" color="text.secondary">
          {hospital.id}
        </Typography>
      </TableCell>
      <TableCell align="right">{hospital.currentReleases}</TableCell>
      <TableCell>{hospital.latestMonth ?? 'none yet'}</TableCell>
      <TableCell>
        <PeopleEditor
          people={hospital.stewards}
          empty="No steward: nobody can upload."
          pickerLabel={`Add a steward to ${hospital.name}`}
          addLabel="Assign"
          role="steward"
          change={async ({ userId, present }) => {
            await api(
              stewardHospitalsSchema,
              present ? 'PUT' : 'DELETE',
              `/api/v1/admin/users/${userId}/hospitals/${hospital.id}`,
            );
            await client.invalidateQueries({ queryKey: ['admin-hospitals'] });
          }}
        />
      </TableCell>
    </TableRow>
  );
}
