import {
  datasetListSchema,
  releasePageSchema,
  uploadPageSchema,
  type UploadJob,
  type UploadResult,
} from '@medlake/shared';
import {
  Alert,
  Box,
  Button,
  Card,
  CardContent,
  Chip,
  CircularProgress,
  LinearProgress,
  MenuItem,
  Stack,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { formatBytes, formatDateTime } from '../../format.ts';
import { api, fieldErrors, messageOf } from '../../api.ts';
import { sendInParts } from './send-in-parts.ts';
import { useServerPage } from '../../components/server-page.tsx';
import { EarlierUploadReport, UploadReport } from './upload-report.tsx';
import { WideTable } from '../../components/wide-table.tsx';

/** A steward's uploads: send a month's CSV, read its report, see what came before. */
export function UploadsPage() {
  const paging = useServerPage(10);
  const [chosen, setChosen] = useState<string>();
  const uploads = useQuery({
    queryKey: ['uploads', ...paging.key],
    queryFn: () => api(uploadPageSchema, 'GET', `/api/v1/uploads?${paging.query()}`),
    placeholderData: keepPreviousData,
  });
  if (uploads.isPending) return <CircularProgress aria-label="Loading uploads" />;
  if (uploads.isError) return <Alert severity="error">{messageOf(uploads.error)}</Alert>;
  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Uploads
      </Typography>
      {uploads.data.hospitals.length === 0 ? (
        <Alert severity="info">
          You are not a data steward of any hospital yet; an administrator assigns you.
        </Alert>
      ) : (
        <UploadForm hospitals={uploads.data.hospitals} />
      )}
      <UploadList
        uploads={uploads.data.uploads}
        pagination={paging.pagination(uploads.data.total)}
        onChoose={setChosen}
      />
      {chosen && <EarlierUploadReport key={chosen} uploadId={chosen} />}
      {uploads.data.hospitals.length > 0 && <ReleaseHistory hospitals={uploads.data.hospitals} />}
    </Stack>
  );
}

function UploadForm({ hospitals }: { hospitals: string[] }) {
  const client = useQueryClient();
  const datasets = useQuery({
    queryKey: ['datasets'],
    queryFn: () => api(datasetListSchema, 'GET', '/api/v1/datasets'),
  });
  const [dataset, setDataset] = useState('');
  const [hospital, setHospital] = useState(hospitals[0] ?? '');
  const [month, setMonth] = useState('');
  const [file, setFile] = useState<File>();
  const [dragging, setDragging] = useState(false);
  const [sent, setSent] = useState<number>();
  const [result, setResult] = useState<UploadResult>();
  const [error, setError] = useState<unknown>();
  const chosenDataset = dataset || datasets.data?.datasets[0]?.id || '';
  const errors = fieldErrors<string>(error, ['month']);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!file) return;
    setError(undefined);
    setResult(undefined);
    setSent(0);
    try {
      setResult(await sendInParts(file, { dataset: chosenDataset, hospital, month }, setSent));
      await client.invalidateQueries({ queryKey: ['uploads'] });
      await client.invalidateQueries({ queryKey: ['releases'] });
    } catch (caught) {
      setError(caught);
    } finally {
      setSent(undefined);
    }
  };

  return (
    <Card variant="outlined" component="section" aria-labelledby="new-upload">
      <CardContent>
        <Typography variant="h6" component="h2" id="new-upload" gutterBottom>
          Upload a month
        </Typography>
        <Stack component="form" spacing={2} onSubmit={submit} noValidate>
          <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2}>
            <TextField
              select
              sx={{ flex: 1 }}
              label="Dataset"
              value={chosenDataset}
              onChange={(event) => setDataset(event.target.value)}
            >
              {(datasets.data?.datasets ?? []).map((item) => (
                <MenuItem key={item.id} value={item.id}>
                  {item.title}
                </MenuItem>
              ))}
            </TextField>
            <TextField
              select
              sx={{ flex: 1 }}
              label="Hospital"
              value={hospital}
              onChange={(event) => setHospital(event.target.value)}
            >
              {hospitals.map((item) => (
                <MenuItem key={item} value={item}>
                  {item}
                </MenuItem>
              ))}
            </TextField>
            <TextField
              sx={{ flex: 1 }}
              label="Month"
              placeholder="2024-01"
              value={month}
              onChange={(event) => setMonth(event.target.value)}
              {...errors.at('month', 'The month the file covers, YYYY-MM')}
              required
            />
          </Stack>
          <Box
            onDragOver={(event) => {
              event.preventDefault();
              setDragging(true);
            }}
            onDragLeave={() => setDragging(false)}
            onDrop={(event) => {
              event.preventDefault();
              setDragging(false);
              const dropped = event.dataTransfer.files[0];
              if (dropped) setFile(dropped);
            }}
            sx={{
              border: 2,
              borderStyle: 'dashed',
              borderColor: dragging ? 'primary.main' : 'divider',
              borderRadius: 1,
              p: 3,
              textAlign: 'center',
            }}
          >
            <Typography gutterBottom>
              {file
                ? `${file.name} (${formatBytes(file.size)})`
                : 'Drop the CSV file here, of any size: it is sent in parts, and a broken connection resumes where it stopped.'}
            </Typography>
            <Button variant="outlined" component="label">
              {file ? 'Choose another file' : 'Choose the CSV file'}
              <input
                type="file"
                accept=".csv,text/csv"
                hidden
                aria-label="CSV file"
                onChange={(event) => setFile(event.target.files?.[0])}
              />
            </Button>
          </Box>
          {sent !== undefined && file && (
            <LinearProgress
              variant="determinate"
              value={(100 * sent) / Math.max(1, file.size)}
              aria-label="Upload progress"
            />
          )}
          {errors.general && <Alert severity="error">{errors.general}</Alert>}
          {result && <UploadReport result={result} />}
          <div>
            <Button
              type="submit"
              variant="contained"
              disabled={!file || !month || sent !== undefined}
            >
              Upload
            </Button>
          </div>
        </Stack>
      </CardContent>
    </Card>
  );
}

function UploadList(props: {
  uploads: UploadJob[];
  pagination: React.ReactNode;
  onChoose: (id: string) => void;
}) {
  const uploads = props.uploads;
  return (
    <Card variant="outlined" component="section" aria-labelledby="upload-history">
      <CardContent>
        <Typography variant="h6" component="h2" id="upload-history" gutterBottom>
          Earlier uploads
        </Typography>
        {uploads.length === 0 ? (
          <Typography color="text.secondary">No uploads yet.</Typography>
        ) : (
          <WideTable labelledBy="upload-history">
            <TableHead>
              <TableRow>
                <TableCell>Started</TableCell>
                <TableCell>Hospital</TableCell>
                <TableCell>Month</TableCell>
                <TableCell>File</TableCell>
                <TableCell>Outcome</TableCell>
                <TableCell />
              </TableRow>
            </TableHead>
            <TableBody>
              {uploads.map((upload) => (
                <TableRow key={upload.id}>
                  <TableCell>{formatDateTime(upload.startedAt)}</TableCell>
                  <TableCell>{upload.hospital}</TableCell>
                  <TableCell>{upload.month}</TableCell>
                  <TableCell>{upload.fileName}</TableCell>
                  <TableCell>
                    <Chip
                      size="small"
                      label={outcomeOf(upload)}
                      color={
                        upload.status === 'succeeded'
                          ? 'success'
                          : upload.status === 'failed'
                            ? 'error'
                            : 'default'
                      }
                    />
                  </TableCell>
                  <TableCell>
                    <Button
                      size="small"
                      onClick={() => props.onChoose(upload.id)}
                      aria-label={`Report of ${upload.fileName} for ${upload.hospital} ${upload.month}`}
                    >
                      Report
                    </Button>
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </WideTable>
        )}
        {uploads.length > 0 && props.pagination}
      </CardContent>
    </Card>
  );
}

/** Each month's releases of a hospital, and which one queries read now. */
function ReleaseHistory({ hospitals }: { hospitals: string[] }) {
  const [hospital, setHospital] = useState(hospitals[0] ?? '');
  const paging = useServerPage();
  const releases = useQuery({
    queryKey: ['releases', hospital, ...paging.key],
    queryFn: () => api(releasePageSchema, 'GET', `/api/v1/releases?${paging.query({ hospital })}`),
  });
  return (
    <Card variant="outlined" component="section" aria-labelledby="release-history">
      <CardContent>
        <Stack direction="row" spacing={2} sx={{ alignItems: 'center', mb: 2 }}>
          <Typography variant="h6" component="h2" id="release-history">
            Releases
          </Typography>
          <TextField
            select
            size="small"
            label="Hospital"
            value={hospital}
            onChange={(event) => {
              setHospital(event.target.value);
              paging.reset();
            }}
          >
            {hospitals.map((item) => (
              <MenuItem key={item} value={item}>
                {item}
              </MenuItem>
            ))}
          </TextField>
        </Stack>
        {releases.isError && <Alert severity="error">{messageOf(releases.error)}</Alert>}
        {releases.data && releases.data.releases.length === 0 && (
          <Typography color="text.secondary">No release yet.</Typography>
        )}
        {releases.data && releases.data.releases.length > 0 && (
          <>
            <WideTable labelledBy="release-history">
              <TableHead>
                <TableRow>
                  <TableCell>Month</TableCell>
                  <TableCell>Dataset</TableCell>
                  <TableCell align="right">Rows</TableCell>
                  <TableCell>Published</TableCell>
                  <TableCell>Read by queries</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {releases.data.releases.map((release) => (
                  <TableRow key={release.id}>
                    <TableCell>{release.month}</TableCell>
                    <TableCell>{release.dataset}</TableCell>
                    <TableCell align="right">{release.rows.toLocaleString()}</TableCell>
                    <TableCell>{formatDateTime(release.publishedAt)}</TableCell>
                    <TableCell>
                      {release.current ? (
                        <Chip size="small" color="success" label="current" />
                      ) : (
                        'replaced'
                      )}
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </WideTable>
            {paging.pagination(releases.data.total)}
          </>
        )}
      </CardContent>
    </Card>
  );
}

function outcomeOf(upload: UploadJob): string {
  if (upload.status === 'running') return 'running';
  const status = (upload.result as { status?: string } | null)?.status;
  if (status === 'published') return 'published';
  if (status === 'unchanged') return 'unchanged';
  return 'rejected or failed';
}
