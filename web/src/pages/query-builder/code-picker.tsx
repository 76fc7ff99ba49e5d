import { datasetDictionarySchema } from '@medlake/shared';
import { Autocomplete, TextField } from '@mui/material';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from '../../api.ts';
import type { CodeOption } from './builder-form.ts';

const optionsShown = 25;

const labelOf = (option: CodeOption) =>
  option.label ? `${option.code} ${option.label}` : option.code;

/**
 * Picks codes of a dataset, searched on the server as the user types: a dataset's codes run to
 * thousands, and the browser is sent a page of those matching.
 */
export function CodePicker<Multiple extends boolean>(props: {
  dataset: string;
  label: string;
  helperText?: React.ReactNode;
  error?: boolean;
  multiple: Multiple;
  value: Multiple extends true ? CodeOption[] : CodeOption | null;
  onChange: (value: Multiple extends true ? CodeOption[] : CodeOption | null) => void;
}) {
  const [search, setSearch] = useState('');
  const codes = useQuery({
    queryKey: ['dictionary-codes', props.dataset, search],
    queryFn: () =>
      api(
        datasetDictionarySchema,
        'GET',
        `/api/v1/datasets/${props.dataset}/dictionary?${new URLSearchParams({
          search,
          pageSize: String(optionsShown),
        })}`,
      ),
    enabled: Boolean(props.dataset),
    placeholderData: keepPreviousData,
  });
  const options: CodeOption[] =
    codes.data?.codes.map((item) => ({ code: item.code, label: item.label })) ?? [];
  return (
    <Autocomplete<CodeOption, Multiple>
      sx={{ flex: 2 }}
      multiple={props.multiple}
      options={options}
      loading={codes.isFetching}
      filterOptions={(found) => found}
      getOptionLabel={labelOf}
      isOptionEqualToValue={(a, b) => a.code === b.code}
      value={props.value as never}
      onChange={(_event, value) => props.onChange(value as never)}
      onInputChange={(_event, text, reason) => {
        if (reason === 'input') setSearch(text);
      }}
      renderInput={(input) => (
        <TextField
          {...input}
          label={props.label}
          helperText={props.helperText}
          error={props.error}
        />
      )}
    />
  );
}
