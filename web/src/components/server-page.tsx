import { TablePagination } from '@mui/material';
import { useState } from 'react';

/**
 * The page a list shows, asked of the server (`page`, `pageSize`) and moved through with MUI's
 * pagination: every list is paged on the server.
 */
export function useServerPage(initialSize = 25, sizes: readonly number[] = [10, 25, 50, 100]) {
  const [page, setPage] = useState(0);
  const [pageSize, setPageSize] = useState(initialSize);
  const query = (extra: Record<string, string> = {}) =>
    new URLSearchParams({ ...extra, page: String(page + 1), pageSize: String(pageSize) });
  const pagination = (total: number) => (
    <TablePagination
      component="div"
      count={total}
      page={page}
      rowsPerPage={pageSize}
      rowsPerPageOptions={[...sizes]}
      onPageChange={(_event, next) => setPage(next)}
      onRowsPerPageChange={(event) => {
        setPageSize(Number(event.target.value));
        setPage(0);
      }}
    />
  );
  return { key: [page, pageSize], query, pagination, reset: () => setPage(0) };
}
