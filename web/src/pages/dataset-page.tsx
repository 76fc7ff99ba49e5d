import { datasetDictionarySchema } from '@medlake/shared';
import {
  Alert,
  Button,
  Card,
  CardContent,
  Chip,
  CircularProgress,
  Stack,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link as RouterLink, useParams } from 'react-router';
import { useServerPage } from '../components/server-page.tsx';
import { api, messageOf } from '../api.ts';
import { WideTable } from '../components/wide-table.tsx';
import { DeidentificationCard } from './deidentification-card.tsx';

/**
 * A dataset's page: what it holds, how each column is de-identified, which hospitals and
 * months it covers, and its codes with names, units and (disclosure-controlled) counts,
 * searched and paged on the server.
 */
export function DatasetPage() {
  const { id = '' } = useParams();
  const [search, setSearch] = useState('');
  const paging = useServerPage(25, [25, 100, 500]);
  const dictionary = useQuery({
    queryKey: ['dictionary-page', id, search, ...paging.key],
    queryFn: () =>
      api(
        datasetDictionarySchema,
        'GET',
        `/api/v1/datasets/${id}/dictionary?${paging.query({ search })}`,
      ),
    placeholderData: keepPreviousData,
  });
  if (dictionary.isPending) return <CircularProgress aria-label="Loading the dataset" />;
  if (dictionary.isError) return <Alert severity="error">{messageOf(dictionary.error)}</Alert>;
  const data = dictionary.data;
  return (
    <Stack spacing={3}>
      <Stack direction="row" sx={{ justifyContent: 'space-between', alignItems: 'center' }}>
        <Typography variant="h4" component="h1">
          {data.title}
        </Typography>
        <Button variant="contained" component={RouterLink} to={`/queries/new?dataset=${data.id}`}>
          New query
        </Button>
      </Stack>
      <Typography color="text.secondary">{data.description}</Typography>
      <Stack direction="row" spacing={1} sx={{ flexWrap: 'wrap', gap: 1 }}>
        <Chip label={`${data.releases} releases`} />
        <Chip label={`Hospitals: ${data.hospitals.join(', ') || 'none yet'}`} />
        <Chip
          label={`Months: ${data.months.length > 0 ? `${data.months[0]} to ${data.months.at(-1)}` : 'none yet'}`}
        />
        <Chip label={`Groups under ${data.threshold} patients are hidden`} />
      </Stack>
      <Card variant="outlined" component="section" aria-labelledby="columns">
        <CardContent>
          <Typography variant="h6" component="h2" id="columns" gutterBottom>
            Columns
          </Typography>
          <WideTable labelledBy="columns">
            <TableHead>
              <TableRow>
                <TableCell>Column</TableCell>
                <TableCell>Type</TableCell>
                <TableCell>How it is de-identified</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {data.columns.map((column) => (
                <TableRow key={column.name}>
                  <TableCell>{column.name}</TableCell>
                  <TableCell>{column.type}</TableCell>
                  <TableCell>{column.treatment}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </WideTable>
        </CardContent>
      </Card>
      {data.deidentification && <DeidentificationCard assessment={data.deidentification} />}
      <Card variant="outlined" component="section" aria-labelledby="codes">
        <CardContent>
          <Typography variant="h6" component="h2" id="codes" gutterBottom>
            Tests and codes
          </Typography>
          <TextField
            label="Search codes and names"
            value={search}
            onChange={(event) => {
              setSearch(event.target.value);
              paging.reset();
            }}
            sx={{ mb: 2 }}
          />
          <WideTable labelledBy="codes">
            <TableHead>
              <TableRow>
                <TableCell>Code</TableCell>
                <TableCell>Name</TableCell>
                <TableCell>Unit</TableCell>
                <TableCell align="right">Patients</TableCell>
                <TableCell align="right">Rows</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {data.codes.map((entry) => (
                <TableRow key={entry.code}>
                  <TableCell>{entry.code}</TableCell>
                  <TableCell>{entry.label ?? '—'}</TableCell>
                  <TableCell>{entry.unit ?? '—'}</TableCell>
                  <TableCell align="right">{entry.patients.toLocaleString()}</TableCell>
                  <TableCell align="right">{entry.rows.toLocaleString()}</TableCell>
                </TableRow>
              ))}
              {data.codes.length === 0 && (
                <TableRow>
                  <TableCell colSpan={5}>No code matches “{search}”.</TableCell>
                </TableRow>
              )}
            </TableBody>
          </WideTable>
          {paging.pagination(data.codesMatching)}
        </CardContent>
      </Card>
    </Stack>
  );
}
