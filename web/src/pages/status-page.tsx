import {
  Alert,
  Box,
  Card,
  CardContent,
  Chip,
  CircularProgress,
  Container,
  Link,
  Stack,
  Typography,
} from '@mui/material';
import type { ComponentStatus, HealthReport, HealthStatus } from '@medlake/shared';
import { useEffect, useState } from 'react';
import { fetchHealth } from '../api.ts';

const componentLabels: Record<keyof HealthReport['components'], string> = {
  catalog: 'Metadata catalog',
  engine: 'Query engine',
  storage: 'Object store',
};

/** The platform's parts and whether they work; reachable signed in or not. */
export function StatusPage() {
  const [health, setHealth] = useState<HealthReport | HealthStatus>();
  const [error, setError] = useState<string>();

  useEffect(() => {
    fetchHealth()
      .then(setHealth)
      .catch((caught: unknown) =>
        setError(caught instanceof Error ? caught.message : 'The server did not answer'),
      );
  }, []);

  return (
    <Box>
      <Container maxWidth="md" sx={{ py: 5 }}>
        <Typography variant="h4" component="h1" gutterBottom>
          De-identified hospital data for approved research
        </Typography>
        <Typography color="text.secondary" sx={{ mb: 4 }}>
          Hospitals upload monthly test results; medlake replaces patient identities with pseudonyms
          and keeps the data in a columnar lake that researchers query within the access they were
          granted.
        </Typography>
        <Card variant="outlined">
          <CardContent>
            <Typography variant="h6" component="h2" gutterBottom>
              Platform status
            </Typography>
            {error && <Alert severity="error">{error}</Alert>}
            {!error && !health && <CircularProgress size={24} aria-label="Loading status" />}
            {health && 'components' in health && <HealthDetails health={health} />}
            {health && !('components' in health) && (
              <Typography color="text.secondary">
                {health.status === 'ok'
                  ? 'All parts are working.'
                  : 'Some parts are failing; administrators see which on this page.'}
              </Typography>
            )}
          </CardContent>
        </Card>
        <Typography sx={{ mt: 3 }}>
          <Link href="/api/docs">API reference</Link> (signed in)
        </Typography>
      </Container>
    </Box>
  );
}

function HealthDetails({ health }: { health: HealthReport }) {
  const entries = Object.entries(health.components) as Array<
    [keyof HealthReport['components'], ComponentStatus]
  >;
  return (
    <Stack spacing={1.5}>
      <Typography color="text.secondary">
        Version {health.version} ·{' '}
        {health.status === 'ok' ? 'all parts are working' : 'some parts are failing'}
      </Typography>
      {entries.map(([name, component]) => (
        <Stack key={name} direction="row" spacing={2} sx={{ alignItems: 'center' }}>
          <Chip
            size="small"
            label={component.status === 'ok' ? 'OK' : 'Error'}
            color={component.status === 'ok' ? 'success' : 'error'}
          />
          <Typography sx={{ minWidth: 160 }}>{componentLabels[name]}</Typography>
          <Typography color="text.secondary">{component.kind}</Typography>
          {component.message && <Typography color="error">{component.message}</Typography>}
        </Stack>
      ))}
    </Stack>
  );
}
