import { userPageSchema, type UserView } from '@medlake/shared';
import { Autocomplete, TextField } from '@mui/material';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from '../api.ts';

/** Picks a user, searched on the server by e-mail or name (of one role, if given). */
export function UserPicker(props: {
  label: string;
  role?: UserView['role'];
  value: UserView | null;
  onChange: (user: UserView | null) => void;
}) {
  const [search, setSearch] = useState('');
  const users = useQuery({
    queryKey: ['user-search', props.role, search],
    queryFn: () =>
      api(
        userPageSchema,
        'GET',
        `/api/v1/admin/users?${new URLSearchParams({
          search,
          pageSize: '20',
          ...(props.role ? { role: props.role } : {}),
        })}`,
      ),
    placeholderData: keepPreviousData,
  });
  return (
    <Autocomplete<UserView>
      sx={{ minWidth: 260 }}
      options={users.data?.users ?? []}
      loading={users.isFetching}
      filterOptions={(found) => found}
      getOptionLabel={(user) => user.email}
      isOptionEqualToValue={(a, b) => a.id === b.id}
      value={props.value}
      onChange={(_event, user) => props.onChange(user)}
      onInputChange={(_event, text, reason) => {
        if (reason === 'input') setSearch(text);
      }}
      renderInput={(input) => <TextField {...input} label={props.label} />}
    />
  );
}
