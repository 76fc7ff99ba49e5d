import type { DeidentificationAssessment } from '@medlake/shared';
import {
  Alert,
  Card,
  CardContent,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Typography,
} from '@mui/material';
import { WideTable } from '../components/wide-table.tsx';

const standardWords: Record<DeidentificationAssessment['standard'], string> = {
  safe_harbor: 'HIPAA Safe Harbor',
  limited_data_set: 'Limited Data Set: needs a data-use agreement',
  neither: 'Neither Safe Harbor nor a Limited Data Set',
};

/**
 * The de-identification standard of a dataset, as `medlake datasets assess` prints it: what
 * the contract does with each of HIPAA's 18 identifiers, and the quasi-identifiers a row-level
 * user sees together.
 */
export function DeidentificationCard({ assessment }: { assessment: DeidentificationAssessment }) {
  return (
    <Card variant="outlined" component="section" aria-labelledby="deidentification">
      <CardContent>
        <Typography variant="h6" component="h2" id="deidentification" gutterBottom>
          De-identification standard: {standardWords[assessment.standard]}
        </Typography>
        <Alert
          severity={assessment.standard === 'safe_harbor' ? 'success' : 'warning'}
          sx={{ mb: 2 }}
        >
          {assessment.summary}
        </Alert>
        {assessment.notes.map((note) => (
          <Typography key={note} color="text.secondary" gutterBottom>
            {note}
          </Typography>
        ))}
        <WideTable labelledBy="deidentification">
          <TableHead>
            <TableRow>
              <TableCell>HIPAA identifier</TableCell>
              <TableCell>Columns</TableCell>
              <TableCell>What ingest does</TableCell>
              <TableCell>Safe Harbor</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {assessment.identifiers.map((identifier) => (
              <TableRow key={identifier.letter}>
                <TableCell>
                  ({identifier.letter}) {identifier.identifier}
                </TableCell>
                <TableCell>{identifier.columns.join(', ') || '—'}</TableCell>
                <TableCell>{identifier.treatment}</TableCell>
                <TableCell>{identifier.meetsSafeHarbor ? 'met' : 'not met'}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </WideTable>
        <Typography variant="subtitle1" component="h3" sx={{ mt: 2 }}>
          Quasi-identifiers a row-level user sees together
        </Typography>
        {assessment.quasiIdentifiers.length === 0 ? (
          <Typography color="text.secondary">None found.</Typography>
        ) : (
          <ul>
            {assessment.quasiIdentifiers.map((risk) => (
              <li key={risk.columns.join('+')}>
                <Typography>
                  <strong>{risk.columns.join(' + ')}</strong>: {risk.risk}. Avoid with{' '}
                  {risk.avoidWith}.
                </Typography>
              </li>
            ))}
          </ul>
        )}
      </CardContent>
    </Card>
  );
}
