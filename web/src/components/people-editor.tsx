import type { UserView } from '@medlake/shared';
import { Alert, Button, Chip, Stack, Typography } from '@mui/material';
import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { messageOf } from '../api.ts';
import { UserPicker } from './user-picker.tsx';

/**
 * The people of something (a project's members, a hospital's stewards) as chips to remove,
 * and a user searched on the server to add.
 */
export function PeopleEditor(props: {
  people: ReadonlyArray<{ userId: string; email: string }>;
  /** Said when there is nobody. */
  empty: string;
  pickerLabel: string;
  addLabel: string;
  /** Only users of this role are offered. */
  role?: UserView['role'];
  change: (input: { userId: string; present: boolean }) => Promise<unknown>;
}) {
  const [chosen, setChosen] = useState<UserView | null>(null);
  const change = useMutation({ mutationFn: props.change });
  return (
    <Stack spacing={1}>
      <Stack direction="row" sx={{ flexWrap: 'wrap', gap: 1 }}>
        {props.people.length === 0 && <Typography color="text.secondary">{props.empty}</Typography>}
        {props.people.map((person) => (
          <Chip
            key={person.userId}
            label={person.email}
            onDelete={() => change.mutate({ userId: person.userId, present: false })}
          />
        ))}
      </Stack>
      <Stack direction="row" spacing={1} sx={{ alignItems: 'center' }}>
        <UserPicker
          label={props.pickerLabel}
          role={props.role}
          value={chosen}
          onChange={setChosen}
        />
        <Button
          onClick={() => {
            if (chosen) change.mutate({ userId: chosen.id, present: true });
            setChosen(null);
          }}
          disabled={!chosen || change.isPending}
        >
          {props.addLabel}
        </Button>
      </Stack>
      {change.isError && <Alert severity="error">{messageOf(change.error)}</Alert>}
    </Stack>
  );
}
