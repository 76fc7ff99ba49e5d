import { z } from 'zod';

/**
 * The page a list route is asked for: every list is paged on the server, so that no client
 * ever loads a whole table.
 */
export const pageRequestSchema = z.object({
  page: z.coerce.number().int().min(1).default(1),
  pageSize: z.coerce.number().int().min(1).max(200).default(25),
});
export type PageRequest = z.infer<typeof pageRequestSchema>;

/** A list route's answer: the page asked for, and how many items there are in all. */
export function pageOf<Key extends string, Item extends z.ZodType>(key: Key, item: Item) {
  return z.object({
    page: z.number().int(),
    pageSize: z.number().int(),
    total: z.number().int(),
    ...({ [key]: z.array(item) } as { [K in Key]: z.ZodArray<Item> }),
  });
}

/** The rows to skip and take for a page. */
export function limitOf(page: PageRequest): { limit: number; offset: number } {
  return { limit: page.pageSize, offset: (page.page - 1) * page.pageSize };
}
