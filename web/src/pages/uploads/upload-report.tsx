import {
  releasePreviewSchema,
  uploadDetailsSchema,
  type IngestProblem,
  type QualityReport,
  type UploadResult,
} from '@medlake/shared';
import {
  Alert,
  Button,
  Card,
  CardContent,
  CircularProgress,
  Stack,
  Table,
  TableBody,
  TableCell,
  TableContainer,
  TableHead,
  TableRow,
  Typography,
} from '@mui/material';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, messageOf } from '../../api.ts';

/** What became of an upload just sent: published, the same file again, or its problems. */
export function UploadReport({ result }: { result: UploadResult }) {
  if (result.status === 'unchanged') {
    return (
      <Alert severity="info">This file was uploaded before; the release stays as it is.</Alert>
    );
  }
  if (result.status === 'published') {
    return (
      <Stack spacing={2}>
        <Alert severity="success">
          Published: {result.rows.toLocaleString()} rows
          {result.rejectedRows > 0 && `, ${result.rejectedRows} rows left out`}.
        </Alert>
        <QualitySummary quality={result.quality} />
        <ReleasePreview uploadId={result.jobId} />
      </Stack>
    );
  }
  return <Problems {...result} />;
}

/** An earlier upload's report, read from the server. */
export function EarlierUploadReport({ uploadId }: { uploadId: string }) {
  const details = useQuery({
    queryKey: ['upload', uploadId],
    queryFn: () => api(uploadDetailsSchema, 'GET', `/api/v1/uploads/${uploadId}`),
  });
  if (details.isPending) return <CircularProgress aria-label="Loading the report" />;
  if (details.isError) return <Alert severity="error">{messageOf(details.error)}</Alert>;
  const upload = details.data;
  const failure = upload.error as {
    message?: string;
    problems?: IngestProblem[];
    problemCount?: number;
  } | null;
  return (
    <Card variant="outlined" component="section" aria-labelledby="upload-report">
      <CardContent>
        <Typography variant="h6" component="h2" id="upload-report" gutterBottom>
          {upload.fileName}: {upload.hospital}, {upload.month}
        </Typography>
        {upload.status === 'running' && <Alert severity="info">Still being ingested.</Alert>}
        {upload.status === 'failed' &&
          (failure?.problems ? (
            <Problems
              fileName={upload.fileName}
              problems={failure.problems}
              problemCount={failure.problemCount ?? failure.problems.length}
            />
          ) : (
            <Alert severity="error">
              Not published: {failure?.message ?? 'the ingest failed'}. Upload the file again.
            </Alert>
          ))}
        {upload.quality && (
          <Stack spacing={2}>
            <QualitySummary quality={upload.quality} />
            <ReleasePreview uploadId={upload.id} />
          </Stack>
        )}
      </CardContent>
    </Card>
  );
}

function Problems(props: { fileName: string; problemCount: number; problems: IngestProblem[] }) {
  return (
    <Alert severity="error">
      <Typography gutterBottom>
        {props.fileName} was not published: {props.problemCount} problems. Fix them and upload the
        file again.
      </Typography>
      <Stack component="ul" sx={{ m: 0, pl: 2 }}>
        {props.problems.map((problem, index) => (
          <li key={index}>
            {problem.line !== null ? `line ${problem.line}` : 'file'}
            {problem.column !== null ? `, column ${problem.column}` : ''}
            {problem.header ? ` (${problem.header})` : ''}: {problem.message}
          </li>
        ))}
      </Stack>
    </Alert>
  );
}

/**
 * The data-quality report of a release: its size, what was left out or emptied, and what
 * changed against the hospital's previous month.
 */
function QualitySummary({ quality }: { quality: QualityReport }) {
  const emptiest = [...quality.columns].sort((a, b) => b.nullRate - a.nullRate).slice(0, 3);
  return (
    <Card variant="outlined" component="section" aria-labelledby="quality-report">
      <CardContent>
        <Typography variant="h6" component="h3" id="quality-report" gutterBottom>
          Data quality
        </Typography>
        <Stack component="ul" spacing={0.5} sx={{ m: 0, pl: 2 }}>
          <li>
            {quality.rows.toLocaleString()} rows of {quality.patients.toLocaleString()} patients,{' '}
            {quality.codes.length} codes.
          </li>
          {quality.rejectedRows > 0 && (
            <li>
              {quality.rejectedRows} rows left out:{' '}
              {Object.entries(quality.rejectedByReason)
                .map(([reason, count]) => `${count} ${reason}`)
                .join(', ')}
              .
            </li>
          )}
          {quality.redactedValues > 0 && (
            <li>{quality.redactedValues} text values emptied because they held an identifier.</li>
          )}
          {quality.eventsOutsideMonth > 0 && (
            <li>{quality.eventsOutsideMonth} rows have an event date outside the month.</li>
          )}
          {emptiest.length > 0 && emptiest[0]!.nullRate > 0 && (
            <li>
              Emptiest columns:{' '}
              {emptiest
                .map((column) => `${column.name} ${(100 * column.nullRate).toFixed(1)}% empty`)
                .join(', ')}
              .
            </li>
          )}
          <li>
            {quality.comparedWith
              ? quality.changes.length === 0
                ? `Against ${quality.comparedWith.month}: no notable change.`
                : `Against ${quality.comparedWith.month}: ${quality.changes.map((change) => change.message).join(' ')}`
              : 'The first month of this hospital: nothing to compare with.'}
          </li>
        </Stack>
      </CardContent>
    </Card>
  );
}

/** The first rows of the release as the lake holds them, on request (the read is audited). */
function ReleasePreview({ uploadId }: { uploadId: string }) {
  const [shown, setShown] = useState(false);
  const preview = useQuery({
    queryKey: ['upload-preview', uploadId],
    queryFn: () => api(releasePreviewSchema, 'GET', `/api/v1/uploads/${uploadId}/preview`),
    enabled: shown,
  });
  if (!shown) {
    return (
      <div>
        <Button variant="outlined" onClick={() => setShown(true)}>
          Preview the de-identified rows
        </Button>
      </div>
    );
  }
  if (preview.isPending) return <CircularProgress aria-label="Loading the preview" />;
  if (preview.isError) return <Alert severity="error">{messageOf(preview.error)}</Alert>;
  const columns = Object.keys(preview.data.rows[0] ?? {});
  return (
    <Card variant="outlined" component="section" aria-labelledby="release-preview">
      <CardContent>
        <Typography variant="h6" component="h3" id="release-preview" gutterBottom>
          The first {preview.data.rows.length} rows, as researchers' queries read them
        </Typography>
        {/* Focusable, so that the keyboard can scroll it as the mouse does. */}
        <TableContainer
          sx={{ maxHeight: 420 }}
          tabIndex={0}
          role="region"
          aria-label="Preview rows"
        >
          <Table size="small" stickyHeader aria-labelledby="release-preview">
            <TableHead>
              <TableRow>
                {columns.map((column) => (
                  <TableCell key={column}>{column}</TableCell>
                ))}
              </TableRow>
            </TableHead>
            <TableBody>
              {preview.data.rows.map((row, index) => (
                <TableRow key={index}>
                  {columns.map((column) => (
                    <TableCell key={column} sx={{ whiteSpace: 'nowrap' }}>
                      {row[column] === null ? '—' : String(row[column])}
                    </TableCell>
                  ))}
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </TableContainer>
      </CardContent>
    </Card>
  );
}
