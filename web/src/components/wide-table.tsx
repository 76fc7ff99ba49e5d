import { Table, TableContainer } from '@mui/material';
import type { ReactNode } from 'react';

/**
 * A table that scrolls sideways within the page when it is wider than the window, instead of
 * widening the page. Focusable, so that the keyboard scrolls it as the mouse does. Named by
 * a label, or by the id of the heading above it.
 */
export function WideTable(
  props: ({ label: string } | { labelledBy: string }) & { children: ReactNode },
) {
  const name =
    'label' in props ? { 'aria-label': props.label } : { 'aria-labelledby': props.labelledBy };
  return (
    <TableContainer tabIndex={0} role="region" {...name}>
      <Table size="small" {...name}>
        {props.children}
      </Table>
    </TableContainer>
  );
}
