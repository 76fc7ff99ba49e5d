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
  Link,
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
        <QualitySummary uploadId={result.jobId} quality={result.quality} />
        <ReleasePreview uploadId={result.jobId} />
      </Stack>
    );
  }
  return <Problems {...result} uploadId={result.jobId} />;
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
              uploadId={upload.id}
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
            <QualitySummary uploadId={upload.id} quality={upload.quality} />
            <ReleasePreview uploadId={upload.id} />
          </Stack>
        )}
      </CardContent>
    </Card>
  );
}

/** What each kind of problem means, for a reader who has not seen the code names. */
const problemWords: Record<string, string> = {
  empty_file: 'the file is empty',
  header_only: 'the file has a header and no rows',
  invalid_encoding: 'not valid UTF-8 text',
  wrong_delimiter: 'the values are not separated by commas',
  unknown_column: 'a column the dataset does not know',
  duplicate_column: 'a column named twice',
  missing_column: 'a required column is missing',
  missing_fields: 'fewer fields than the header',
  extra_fields: 'more fields than the header',
  unterminated_quote: 'a quote that is not closed',
  stray_line_break: 'a stray line break',
  line_too_long: 'a line too long to read',
  invalid_value: 'a value of the wrong kind',
  missing_value: 'a required value is empty',
  birth_after_event: 'a birth date after the event',
  identifier_in_text: 'text that holds an identifier',
  unit_unconvertible: 'a unit that does not convert to the code’s canonical unit',
  implausible_value: 'a value no living person can have',
  event_outside_window: 'an event date outside the months the upload may hold',
};

/** A kind of problem in words: "a value of the wrong kind" rather than `invalid_value`. */
export function problemInWords(code: string): string {
  return problemWords[code] ?? code.replace(/_/g, ' ');
}

function Problems(props: {
  uploadId: string;
  fileName: string;
  problemCount: number;
  problems: IngestProblem[];
}) {
  return (
    <Stack spacing={2}>
      <Alert severity="error">
        {props.fileName} was not published: {props.problemCount.toLocaleString()}{' '}
        {props.problemCount === 1 ? 'problem' : 'problems'}. Fix{' '}
        {props.problemCount === 1 ? 'it' : 'them'} in the file and upload it again.
      </Alert>
      <ProblemTable
        label={`Problems in ${props.fileName}`}
        uploadId={props.uploadId}
        problems={props.problems}
        total={props.problemCount}
      />
    </Stack>
  );
}

/** The most problems an upload's CSV holds (maxStoredProblems on the server). */
const maxProblemsInCsv = 100_000;

/** Problems with line and column, in words, and a CSV of them all. */
function ProblemTable(props: {
  label: string;
  uploadId: string;
  problems: IngestProblem[];
  total: number;
}) {
  // The server's list, every problem the ingest kept, not only those on the page.
  const href = `/api/v1/uploads/${props.uploadId}/problems`;
  return (
    <Stack spacing={1}>
      <TableContainer tabIndex={0} role="region" aria-label={props.label} sx={{ maxHeight: 420 }}>
        <Table size="small" stickyHeader aria-label={props.label}>
          <TableHead>
            <TableRow>
              <TableCell>Line</TableCell>
              <TableCell>Column</TableCell>
              <TableCell>Problem</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {props.problems.map((problem, index) => (
              <TableRow key={index}>
                <TableCell>{problem.line ?? 'whole file'}</TableCell>
                <TableCell>
                  {problem.column === null
                    ? 'whole line'
                    : `${problem.column}${problem.header ? ` (${problem.header})` : ''}`}
                </TableCell>
                <TableCell>{problem.message}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </TableContainer>
      <Typography variant="body2">
        {props.total > props.problems.length
          ? `The first ${props.problems.length.toLocaleString()} of ${props.total.toLocaleString()} problems are shown here; the CSV holds ${props.total > maxProblemsInCsv ? `the first ${maxProblemsInCsv.toLocaleString()}` : 'them all'}. `
          : ''}
        <Link href={href} download>
          Download the problems as CSV
        </Link>
      </Typography>
    </Stack>
  );
}

/**
 * The data-quality report of a release: its size, what was left out or emptied, and what
 * changed against the hospital's previous month.
 */
function QualitySummary({ uploadId, quality }: { uploadId: string; quality: QualityReport }) {
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
              {quality.rejectedRows.toLocaleString()} rows left out:{' '}
              {Object.entries(quality.rejectedByReason)
                .map(([reason, count]) => `${count.toLocaleString()} for ${problemInWords(reason)}`)
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
          {(quality.eventsOutsideWindow ?? 0) > 0 && (
            <li>
              {quality.eventsOutsideWindow} rows have an event date outside the months the dataset
              allows in one upload.
            </li>
          )}
          {quality.unconvertibleUnits && quality.unconvertibleUnits.length > 0 && (
            <li>
              Units that could not be converted to the code’s canonical unit, with the values sent
              in each:{' '}
              {quality.unconvertibleUnits
                .map((entry) => `${entry.code} in ${entry.unit ?? 'no unit'} (${entry.values})`)
                .join(', ')}
              .
            </li>
          )}
          {quality.codes.some((code) => (code.implausible ?? 0) > 0) && (
            <li>
              Values outside the range a living person can have:{' '}
              {quality.codes
                .filter((code) => (code.implausible ?? 0) > 0)
                .map((code) => `${code.code} (${code.implausible})`)
                .join(', ')}
              .
            </li>
          )}
          {quality.zipCodes && quality.zipCodes.padded + quality.zipCodes.emptied > 0 && (
            <li>
              ZIP codes: {quality.zipCodes.padded} four-digit codes padded with their leading zero,{' '}
              {quality.zipCodes.emptied} values that are no ZIP code stored empty.
            </li>
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
        {quality.rejectedSamples.length > 0 && (
          <Stack spacing={1} sx={{ mt: 2 }}>
            <Typography variant="subtitle1" component="h4">
              The rows left out, with line and column
            </Typography>
            <ProblemTable
              label="Rows left out"
              uploadId={uploadId}
              problems={quality.rejectedSamples}
              total={quality.rejectedRows}
            />
          </Stack>
        )}
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
