import type { SelectQueryBuilder } from 'kysely';

/**
 * One page of a list query and how many rows it has in all: `filtered` holds the conditions,
 * `ordered` adds the columns and the order to it; the count runs over the conditions alone.
 */
export async function paged<DB, TB extends keyof DB, Row>(
  filtered: SelectQueryBuilder<DB, TB, object>,
  ordered: (query: SelectQueryBuilder<DB, TB, object>) => SelectQueryBuilder<DB, TB, Row>,
  page: { limit: number; offset: number },
): Promise<{ rows: Row[]; total: number }> {
  const [rows, count] = await Promise.all([
    ordered(filtered).limit(page.limit).offset(page.offset).execute(),
    filtered
      .select((eb) => eb.fn.countAll<string>().as('total'))
      .executeTakeFirstOrThrow() as Promise<{ total: string }>,
  ]);
  return { rows, total: Number(count.total) };
}
