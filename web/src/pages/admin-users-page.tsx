import {
  datasetListSchema,
  grantPageSchema,
  grantViewSchema,
  newUserResultSchema,
  userPageSchema,
  userRoleSchema,
  userViewSchema,
  type GrantView,
  type UserView,
} from '@medlake/shared';
import {
  Alert,
  Button,
  Card,
  CardContent,
  CircularProgress,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  MenuItem,
  Stack,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, fieldErrors, messageOf } from '../api.ts';
import { formatDate } from '../format.ts';
import { UserPicker } from '../components/user-picker.tsx';
import { useServerPage } from '../components/server-page.tsx';
import { WideTable } from '../components/wide-table.tsx';

const roles = userRoleSchema.options;

/** Users and their roles, and the grants in force: an admin's daily work. */
export function AdminUsersPage() {
  return (
    <Stack spacing={3}>
      <Typography variant="h4" component="h1">
        Users and grants
      </Typography>
      <NewUser />
      <UserTable />
      <Grants />
    </Stack>
  );
}

function NewUser() {
  const client = useQueryClient();
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState<UserView['role']>('researcher');
  const make = useMutation({
    mutationFn: () =>
      api(newUserResultSchema, 'POST', '/api/v1/admin/users', { email, name, role }),
    onSuccess: () => client.invalidateQueries({ queryKey: ['admin-users'] }),
  });
  const errors = fieldErrors<string>(make.error, ['email', 'name', 'role']);
  return (
    <Card variant="outlined" component="section" aria-labelledby="new-user">
      <CardContent>
        <Typography variant="h6" component="h2" id="new-user" gutterBottom>
          Add a user
        </Typography>
        <Stack direction={{ xs: 'column', md: 'row' }} spacing={2}>
          <TextField
            label="E-mail"
            value={email}
            onChange={(event) => setEmail(event.target.value)}
            {...errors.at('email')}
          />
          <TextField
            label="Name"
            value={name}
            onChange={(event) => setName(event.target.value)}
            {...errors.at('name')}
          />
          <TextField
            select
            label="Role"
            value={role}
            onChange={(event) => setRole(event.target.value as UserView['role'])}
          >
            {roles.map((item) => (
              <MenuItem key={item} value={item}>
                {item}
              </MenuItem>
            ))}
          </TextField>
          <Button
            variant="contained"
            onClick={() => make.mutate()}
            disabled={!email || !name || make.isPending}
          >
            Add
          </Button>
        </Stack>
        {errors.general && (
          <Alert severity="error" sx={{ mt: 2 }}>
            {errors.general}
          </Alert>
        )}
        {make.data && (
          <Alert severity="success" sx={{ mt: 2 }}>
            {make.data.user.email} can sign in once with{' '}
            <code data-testid="one-time-password">{make.data.oneTimePassword}</code> and then
            chooses a password. Hand it over in person or by phone; it is not shown again.
          </Alert>
        )}
      </CardContent>
    </Card>
  );
}

function UserTable() {
  const client = useQueryClient();
  const [search, setSearch] = useState('');
  const paging = useServerPage();
  const users = useQuery({
    queryKey: ['admin-users', search, ...paging.key],
    queryFn: () => api(userPageSchema, 'GET', `/api/v1/admin/users?${paging.query({ search })}`),
    placeholderData: keepPreviousData,
  });
  const change = useMutation({
    mutationFn: (input: { id: string; role?: UserView['role']; disabled?: boolean }) =>
      api(userViewSchema, 'PATCH', `/api/v1/admin/users/${input.id}`, {
        role: input.role,
        disabled: input.disabled,
      }),
    onSuccess: () => client.invalidateQueries({ queryKey: ['admin-users'] }),
  });
  return (
    <Card variant="outlined" component="section" aria-labelledby="users">
      <CardContent>
        <Typography variant="h6" component="h2" id="users" gutterBottom>
          Users
        </Typography>
        <TextField
          label="Find a user"
          helperText="By e-mail or name"
          size="small"
          value={search}
          onChange={(event) => {
            setSearch(event.target.value);
            paging.reset();
          }}
          sx={{ mb: 2 }}
        />
        {change.isError && <Alert severity="error">{messageOf(change.error)}</Alert>}
        {users.isError && <Alert severity="error">{messageOf(users.error)}</Alert>}
        {users.isPending && <CircularProgress aria-label="Loading users" />}
        <WideTable labelledBy="users">
          <TableHead>
            <TableRow>
              <TableCell>E-mail</TableCell>
              <TableCell>Name</TableCell>
              <TableCell>Role</TableCell>
              <TableCell>Authenticator</TableCell>
              <TableCell>Account</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {(users.data?.users ?? []).map((user) => (
              <TableRow key={user.id}>
                <TableCell>{user.email}</TableCell>
                <TableCell>{user.name}</TableCell>
                <TableCell>
                  <TextField
                    select
                    size="small"
                    value={user.role}
                    slotProps={{ htmlInput: { 'aria-label': `Role of ${user.email}` } }}
                    onChange={(event) =>
                      change.mutate({ id: user.id, role: event.target.value as UserView['role'] })
                    }
                  >
                    {roles.map((item) => (
                      <MenuItem key={item} value={item}>
                        {item}
                      </MenuItem>
                    ))}
                  </TextField>
                </TableCell>
                <TableCell>{user.totpEnabled ? 'set up' : 'none'}</TableCell>
                <TableCell>
                  <Button
                    size="small"
                    color={user.disabled ? 'primary' : 'error'}
                    onClick={() => change.mutate({ id: user.id, disabled: !user.disabled })}
                  >
                    {user.disabled ? 'Enable' : 'Disable'}
                  </Button>
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </WideTable>
        {users.data && paging.pagination(users.data.total)}
      </CardContent>
    </Card>
  );
}

function Grants() {
  const client = useQueryClient();
  const paging = useServerPage();
  const grants = useQuery({
    queryKey: ['admin-grants', ...paging.key],
    queryFn: () => api(grantPageSchema, 'GET', `/api/v1/admin/grants?${paging.query()}`),
    placeholderData: keepPreviousData,
  });
  const datasets = useQuery({
    queryKey: ['datasets'],
    queryFn: () => api(datasetListSchema, 'GET', '/api/v1/datasets'),
  });
  const [user, setUser] = useState<UserView | null>(null);
  const [datasetId, setDatasetId] = useState('');
  const [level, setLevel] = useState<'aggregate' | 'row'>('aggregate');
  const add = useMutation({
    mutationFn: () =>
      api(grantViewSchema, 'POST', '/api/v1/admin/grants', {
        userId: user?.id,
        datasetId,
        level,
      }),
    onSuccess: () => client.invalidateQueries({ queryKey: ['admin-grants'] }),
  });
  const [toRevoke, setToRevoke] = useState<GrantView | null>(null);
  const revoke = useMutation({
    mutationFn: (id: string) => api(grantViewSchema, 'DELETE', `/api/v1/admin/grants/${id}`),
    onSuccess: () => {
      setToRevoke(null);
      return client.invalidateQueries({ queryKey: ['admin-grants'] });
    },
  });
  const holderOf = (grant: GrantView) =>
    grant.userId ? (grant.userEmail ?? grant.userId) : `project ${grant.projectId}`;
  return (
    <Card variant="outlined" component="section" aria-labelledby="grants">
      <CardContent>
        <Typography variant="h6" component="h2" id="grants" gutterBottom>
          Grants in force
        </Typography>
        <Stack direction={{ xs: 'column', md: 'row' }} spacing={2} sx={{ mb: 2 }}>
          <UserPicker label="User" value={user} onChange={setUser} />
          <TextField
            select
            sx={{ minWidth: 220 }}
            label="Dataset"
            value={datasetId}
            onChange={(event) => setDatasetId(event.target.value)}
          >
            {(datasets.data?.datasets ?? []).map((dataset) => (
              <MenuItem key={dataset.id} value={dataset.id}>
                {dataset.title}
              </MenuItem>
            ))}
          </TextField>
          <TextField
            select
            label="Level"
            value={level}
            onChange={(event) => setLevel(event.target.value as typeof level)}
          >
            <MenuItem value="aggregate">Aggregate</MenuItem>
            <MenuItem value="row">Row</MenuItem>
          </TextField>
          <Button
            variant="contained"
            onClick={() => add.mutate()}
            disabled={!user || !datasetId || add.isPending}
          >
            Grant
          </Button>
        </Stack>
        {add.isError && <Alert severity="error">{messageOf(add.error)}</Alert>}
        {add.isSuccess && (
          <Alert severity="success">
            Granted: {holderOf(add.data)} has {add.data.level} access to {add.data.datasetId}.
          </Alert>
        )}
        <WideTable labelledBy="grants">
          <TableHead>
            <TableRow>
              <TableCell>Holder</TableCell>
              <TableCell>Dataset</TableCell>
              <TableCell>Level</TableCell>
              <TableCell>Hospitals</TableCell>
              <TableCell>Expires</TableCell>
              <TableCell />
            </TableRow>
          </TableHead>
          <TableBody>
            {(grants.data?.grants ?? []).map((grant) => (
              <TableRow key={grant.id}>
                <TableCell>{holderOf(grant)}</TableCell>
                <TableCell>{grant.datasetId}</TableCell>
                <TableCell>{grant.level}</TableCell>
                <TableCell>{grant.hospitals?.join(', ') ?? 'all'}</TableCell>
                <TableCell>
                  {grant.expiresAt ? formatDate(grant.expiresAt) : 'no end date'}
                </TableCell>
                <TableCell>
                  <Button
                    size="small"
                    color="error"
                    onClick={() => {
                      revoke.reset();
                      setToRevoke(grant);
                    }}
                  >
                    Revoke
                  </Button>
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </WideTable>
        {grants.data && paging.pagination(grants.data.total)}
        <Dialog
          open={toRevoke !== null}
          onClose={() => setToRevoke(null)}
          aria-labelledby="revoke-grant-title"
        >
          <DialogTitle id="revoke-grant-title">Revoke this grant?</DialogTitle>
          <DialogContent>
            {toRevoke && (
              <DialogContentText>
                {holderOf(toRevoke)} loses {toRevoke.level} access to {toRevoke.datasetId} at once:
                queries waiting or running stop, download links stop working. A revoked grant cannot
                be restored; giving access again makes a new grant.
              </DialogContentText>
            )}
            {revoke.isError && <Alert severity="error">{messageOf(revoke.error)}</Alert>}
          </DialogContent>
          <DialogActions>
            <Button onClick={() => setToRevoke(null)}>Cancel</Button>
            <Button
              color="error"
              variant="contained"
              disabled={revoke.isPending}
              onClick={() => toRevoke && revoke.mutate(toRevoke.id)}
            >
              Revoke
            </Button>
          </DialogActions>
        </Dialog>
      </CardContent>
    </Card>
  );
}
