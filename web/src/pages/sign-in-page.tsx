import { authMethodsSchema, sessionViewSchema } from '@medlake/shared';
import {
  Alert,
  Box,
  Button,
  Card,
  CardContent,
  Divider,
  Stack,
  TextField,
  Typography,
} from '@mui/material';
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, ApiError, messageOf } from '../api.ts';
import { useSession } from '../session.tsx';

/**
 * Sign-in with e-mail and password; the authenticator code is asked for when the account has
 * one, and single sign-on is offered when the server is set up for it.
 */
export function SignInPage() {
  const { adopt } = useSession();
  const methods = useQuery({
    queryKey: ['auth-methods'],
    queryFn: () => api(authMethodsSchema, 'GET', '/api/v1/auth/methods'),
  });
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [needsCode, setNeedsCode] = useState(false);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const session = await api(sessionViewSchema, 'POST', '/api/v1/session', {
        email,
        password,
        ...(needsCode ? { code } : {}),
      });
      adopt(session);
    } catch (caught) {
      if (caught instanceof ApiError && caught.code === 'mfa_required' && !needsCode) {
        setNeedsCode(true);
      } else {
        setError(messageOf(caught));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <Box sx={{ minHeight: '100vh', display: 'grid', placeItems: 'center', p: 2 }}>
      <Card variant="outlined" sx={{ width: '100%', maxWidth: 420 }}>
        <CardContent>
          <Typography variant="h5" component="h1" gutterBottom sx={{ fontWeight: 700 }}>
            Sign in to medlake
          </Typography>
          <Stack component="form" spacing={2} onSubmit={submit} noValidate>
            {error && <Alert severity="error">{error}</Alert>}
            <TextField
              label="E-mail"
              type="email"
              autoComplete="username"
              value={email}
              onChange={(event) => setEmail(event.target.value)}
              required
              autoFocus
            />
            <TextField
              label="Password"
              type="password"
              autoComplete="current-password"
              value={password}
              onChange={(event) => setPassword(event.target.value)}
              required
            />
            {needsCode && (
              <TextField
                label="Code from your authenticator app"
                inputMode="numeric"
                autoComplete="one-time-code"
                value={code}
                onChange={(event) => setCode(event.target.value.replace(/\D/g, '').slice(0, 6))}
                helperText="Six digits; a new one every 30 seconds"
                required
                autoFocus
              />
            )}
            <Button type="submit" variant="contained" size="large" disabled={busy}>
              {needsCode ? 'Verify and sign in' : 'Sign in'}
            </Button>
          </Stack>
          {methods.data?.sso && (
            <>
              <Divider sx={{ my: 3 }}>or</Divider>
              <Button
                fullWidth
                variant="outlined"
                size="large"
                href={`${methods.data.sso.loginUrl}?returnTo=${encodeURIComponent(window.location.pathname)}`}
              >
                Sign in with single sign-on
              </Button>
            </>
          )}
        </CardContent>
      </Card>
    </Box>
  );
}
