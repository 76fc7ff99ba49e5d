import { Alert, Button, Card, CardContent, Stack, TextField, Typography } from '@mui/material';
import { useMutation } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { fieldErrors } from '../api.ts';

/**
 * A card that makes something named by an id (a slug that appears in paths and commands) and a
 * name for people: a project, a hospital. The server checks the id; its reason is shown.
 */
export function IdAndNameForm<Made>(props: {
  title: string;
  idLabel: string;
  idHelp: string;
  nameLabel: string;
  submitLabel: string;
  create: (input: { id: string; name: string }) => Promise<Made>;
  /** What to tell once made, if anything. */
  madeMessage?: (made: Made) => string;
}) {
  const headingId = useId();
  const [id, setId] = useState('');
  const [name, setName] = useState('');
  const make = useMutation({
    mutationFn: () => props.create({ id, name }),
    onSuccess: () => {
      setId('');
      setName('');
    },
  });
  const errors = fieldErrors<string>(make.error, ['id', 'name']);
  return (
    <Card variant="outlined" component="section" aria-labelledby={headingId}>
      <CardContent>
        <Typography variant="h6" component="h2" id={headingId} gutterBottom>
          {props.title}
        </Typography>
        <Stack
          component="form"
          direction={{ xs: 'column', md: 'row' }}
          spacing={2}
          onSubmit={(event) => {
            event.preventDefault();
            make.mutate();
          }}
        >
          <TextField
            label={props.idLabel}
            value={id}
            onChange={(event) => setId(event.target.value)}
            {...errors.at('id', props.idHelp)}
          />
          <TextField
            label={props.nameLabel}
            value={name}
            onChange={(event) => setName(event.target.value)}
            sx={{ flex: 1 }}
            {...errors.at('name')}
          />
          <div>
            <Button type="submit" variant="contained" disabled={!id || !name || make.isPending}>
              {props.submitLabel}
            </Button>
          </div>
        </Stack>
        {errors.general && (
          <Alert severity="error" sx={{ mt: 2 }}>
            {errors.general}
          </Alert>
        )}
        {make.isSuccess && props.madeMessage && (
          <Alert severity="success" sx={{ mt: 2 }}>
            {props.madeMessage(make.data)}
          </Alert>
        )}
      </CardContent>
    </Card>
  );
}
