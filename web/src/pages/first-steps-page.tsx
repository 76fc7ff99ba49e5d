import {
  sessionViewSchema,
  totpSetupSchema,
  userViewSchema,
  type SessionView,
} from '@medlake/shared';
import { Alert, Box, Button, Card, CardContent, Stack, TextField, Typography } from '@mui/material';
import { useEffect, useState, type FormEvent } from 'react';
import type { z } from 'zod';
import { api, ApiError, messageOf } from '../api.ts';
import { useSession } from '../session.tsx';

/**
 * What a new session must do before anything else: replace a one-time password, and for
 * admins set up an authenticator app. One step at a time, then on to the app.
 */
export function FirstStepsPage({ session }: { session: SessionView }) {
  return (
    <Box sx={{ minHeight: '100vh', display: 'grid', placeItems: 'center', p: 2 }}>
      <Card variant="outlined" sx={{ width: '100%', maxWidth: 520 }}>
        <CardContent>
          {session.needs.includes('password_change') ? <ChangePassword /> : <SetUpAuthenticator />}
        </CardContent>
      </Card>
    </Box>
  );
}

export function ChangePassword({ oneTime = true }: { oneTime?: boolean }) {
  const { adopt } = useSession();
  const [currentPassword, setCurrent] = useState('');
  const [newPassword, setNew] = useState('');
  const [repeated, setRepeated] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const [error, setError] = useState<ApiError | string>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    if (repeated !== newPassword) {
      setMismatch(true);
      return;
    }
    setMismatch(false);
    setBusy(true);
    try {
      adopt(
        await api(sessionViewSchema, 'POST', '/api/v1/me/password', {
          currentPassword,
          newPassword,
        }),
      );
    } catch (caught) {
      setError(caught instanceof ApiError ? caught : messageOf(caught));
    } finally {
      setBusy(false);
    }
  };
  const fieldError = (path: string) =>
    error instanceof ApiError ? error.detailFor(path) : undefined;

  return (
    <Stack component="form" spacing={2} onSubmit={submit} noValidate>
      <Typography variant="h5" component="h1" sx={{ fontWeight: 700 }}>
        {oneTime ? 'Choose your password' : 'Change your password'}
      </Typography>
      <Typography color="text.secondary">
        {oneTime &&
          'The password you signed in with was set by an administrator and works only this once. '}
        Use at least 12 characters; a few unrelated words make a strong one.
      </Typography>
      {typeof error === 'string' && <Alert severity="error">{error}</Alert>}
      <TextField
        label={oneTime ? 'One-time password' : 'Current password'}
        type="password"
        autoComplete="current-password"
        value={currentPassword}
        onChange={(event) => setCurrent(event.target.value)}
        error={Boolean(fieldError('currentPassword'))}
        helperText={fieldError('currentPassword')}
        required
      />
      <TextField
        label="New password"
        type="password"
        autoComplete="new-password"
        value={newPassword}
        onChange={(event) => setNew(event.target.value)}
        error={Boolean(fieldError('newPassword'))}
        helperText={fieldError('newPassword') ?? 'At least 12 characters, hard to guess'}
        required
      />
      <TextField
        label="Repeat the new password"
        type="password"
        autoComplete="new-password"
        value={repeated}
        onChange={(event) => {
          setRepeated(event.target.value);
          setMismatch(false);
        }}
        error={mismatch}
        helperText={mismatch ? 'does not match the new password: type it again' : undefined}
        required
      />
      <Button type="submit" variant="contained" size="large" disabled={busy}>
        Save password
      </Button>
    </Stack>
  );
}

export function SetUpAuthenticator() {
  const { session, adopt } = useSession();
  const [setup, setSetup] = useState<z.infer<typeof totpSetupSchema>>();
  const [code, setCode] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const start = async () => {
    setBusy(true);
    setError(undefined);
    try {
      setSetup(await api(totpSetupSchema, 'POST', '/api/v1/me/totp'));
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };
  const confirm = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const user = await api(userViewSchema, 'POST', '/api/v1/me/totp/confirm', { code });
      if (session)
        adopt({ ...session, user, needs: session.needs.filter((need) => need !== 'totp_setup') });
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Stack spacing={2}>
      <Typography
        variant="h5"
        component={session?.needs.includes('totp_setup') ? 'h1' : 'h2'}
        sx={{ fontWeight: 700 }}
      >
        Set up your authenticator app
      </Typography>
      <Typography color="text.secondary">
        Administrators sign in with a second factor: a six-digit code from an authenticator app on
        your phone (any app that reads time-based codes).
      </Typography>
      {error && <Alert severity="error">{error}</Alert>}
      {!setup ? (
        <Button variant="contained" size="large" onClick={start} disabled={busy}>
          Show my secret
        </Button>
      ) : (
        <Stack component="form" spacing={2} onSubmit={confirm} noValidate>
          <Typography>
            Scan this code with the app, or add an account with the key below it (or open the link
            on the phone):
          </Typography>
          <QrImage text={setup.uri} />
          <Box
            component="code"
            data-testid="totp-secret"
            sx={{ p: 1.5, bgcolor: 'grey.100', borderRadius: 1, wordBreak: 'break-all' }}
          >
            {setup.secret}
          </Box>
          <Typography variant="body2" sx={{ wordBreak: 'break-all' }}>
            <a href={setup.uri}>{setup.uri}</a>
          </Typography>
          <TextField
            label="Code from your authenticator app"
            inputMode="numeric"
            autoComplete="one-time-code"
            value={code}
            onChange={(event) => setCode(event.target.value.replace(/\D/g, '').slice(0, 6))}
            required
          />
          <Button
            type="submit"
            variant="contained"
            size="large"
            disabled={busy || code.length !== 6}
          >
            Confirm
          </Button>
        </Stack>
      )}
    </Stack>
  );
}

/**
 * The authenticator's `otpauth://` link as a QR code, drawn in the browser: the secret never
 * goes to another service to be drawn.
 */
function QrImage({ text }: { text: string }) {
  const [source, setSource] = useState<string>();
  useEffect(() => {
    let current = true;
    // Loaded when needed: the first screen of everyone else does not carry it.
    import('qrcode')
      .then((QRCode) =>
        QRCode.toDataURL(text, { errorCorrectionLevel: 'M', margin: 4, width: 224 }),
      )
      .then((url) => current && setSource(url))
      .catch(() => current && setSource(undefined));
    return () => {
      current = false;
    };
  }, [text]);
  if (!source) return null;
  return (
    <Box
      component="img"
      src={source}
      data-testid="totp-qr"
      alt="QR code of your authenticator key: scan it with the app"
      width={224}
      height={224}
      sx={{ alignSelf: 'center', imageRendering: 'pixelated' }}
    />
  );
}
