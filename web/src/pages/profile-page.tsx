import {
  apiTokenListSchema,
  madeApiTokenSchema,
  tokenScopes,
  type TokenScope,
} from '@medlake/shared';
import {
  Alert,
  Button,
  Card,
  CardContent,
  Checkbox,
  FormControlLabel,
  FormGroup,
  Stack,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { z } from 'zod';
import { api, fieldErrors } from '../api.ts';
import { useSession } from '../session.tsx';
import { ChangePassword, SetUpAuthenticator } from './first-steps-page.tsx';
import { WideTable } from '../components/wide-table.tsx';
import { formatDate, formatDateTime } from '../format.ts';

/** The signed-in user's own account: password, authenticator app, personal API tokens. */
export function ProfilePage() {
  const { session } = useSession();
  if (!session) return null;
  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        {session.user.name}
      </Typography>
      <Typography color="text.secondary">
        {session.user.email} · {session.user.role} · signed in{' '}
        {session.method === 'oidc' ? 'with single sign-on' : 'with a password'}
      </Typography>
      {session.method === 'password' && (
        <Card variant="outlined">
          <CardContent>
            <ChangePassword oneTime={false} />
          </CardContent>
        </Card>
      )}
      <Card variant="outlined">
        <CardContent>
          {session.user.totpEnabled ? (
            <Typography>
              Your authenticator app is set up. To replace it, ask an administrator to reset it.
            </Typography>
          ) : (
            <SetUpAuthenticator />
          )}
        </CardContent>
      </Card>
      <Tokens />
    </Stack>
  );
}

function Tokens() {
  const client = useQueryClient();
  const tokens = useQuery({
    queryKey: ['tokens'],
    queryFn: () => api(apiTokenListSchema, 'GET', '/api/v1/me/tokens'),
  });
  const [name, setName] = useState('');
  const [days, setDays] = useState('30');
  const [scopes, setScopes] = useState<TokenScope[]>(['query']);
  const make = useMutation({
    mutationFn: () =>
      api(madeApiTokenSchema, 'POST', '/api/v1/me/tokens', { name, days: Number(days), scopes }),
    onSuccess: () => client.invalidateQueries({ queryKey: ['tokens'] }),
  });
  const revoke = useMutation({
    mutationFn: (id: string) => api(z.null(), 'DELETE', `/api/v1/me/tokens/${id}`),
    onSuccess: () => client.invalidateQueries({ queryKey: ['tokens'] }),
  });
  return (
    <Card variant="outlined" component="section" aria-labelledby="tokens">
      <CardContent>
        <Typography variant="h6" component="h2" id="tokens" gutterBottom>
          Personal API tokens
        </Typography>
        <Typography color="text.secondary" gutterBottom>
          For scripts and upload automation: send one as “Authorization: Bearer …”. A token is shown
          once; medlake keeps only a hash of it.
        </Typography>
        <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2} sx={{ my: 2 }}>
          <TextField
            label="What it is for"
            value={name}
            onChange={(event) => setName(event.target.value)}
            {...fieldErrors<string>(make.error, ['name', 'days', 'scopes']).at('name')}
          />
          <TextField
            label="Days it lasts"
            type="number"
            value={days}
            onChange={(event) => setDays(event.target.value)}
            {...fieldErrors<string>(make.error, ['name', 'days', 'scopes']).at('days')}
          />
          <FormGroup row aria-label="Scopes">
            {tokenScopes.map((scope) => (
              <FormControlLabel
                key={scope}
                label={scope}
                control={
                  <Checkbox
                    checked={scopes.includes(scope)}
                    onChange={(event) =>
                      setScopes((current) =>
                        event.target.checked
                          ? [...current, scope]
                          : current.filter((item) => item !== scope),
                      )
                    }
                  />
                }
              />
            ))}
          </FormGroup>
          <Button
            variant="contained"
            onClick={() => make.mutate()}
            disabled={!name || scopes.length === 0 || make.isPending}
          >
            Make token
          </Button>
        </Stack>
        {fieldErrors(make.error, ['name', 'days']).general && (
          <Alert severity="error">{fieldErrors(make.error, ['name', 'days']).general}</Alert>
        )}
        {make.data && (
          <Alert severity="success" sx={{ mb: 2 }}>
            Your token, shown only now: <code data-testid="new-token">{make.data.token}</code>
          </Alert>
        )}
        {tokens.data && tokens.data.tokens.length > 0 && (
          <WideTable labelledBy="tokens">
            <TableHead>
              <TableRow>
                <TableCell>Name</TableCell>
                <TableCell>Scopes</TableCell>
                <TableCell>Expires</TableCell>
                <TableCell>Last used</TableCell>
                <TableCell />
              </TableRow>
            </TableHead>
            <TableBody>
              {tokens.data.tokens.map((token) => (
                <TableRow key={token.id}>
                  <TableCell>{token.name}</TableCell>
                  <TableCell>{token.scopes.join(', ')}</TableCell>
                  <TableCell>{formatDate(token.expiresAt)}</TableCell>
                  <TableCell>
                    {token.lastUsedAt ? formatDateTime(token.lastUsedAt) : 'never'}
                  </TableCell>
                  <TableCell>
                    <Button color="error" onClick={() => revoke.mutate(token.id)}>
                      Revoke
                    </Button>
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </WideTable>
        )}
      </CardContent>
    </Card>
  );
}
