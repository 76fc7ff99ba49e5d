import type { CatalogDb } from './catalog.ts';

/** The privacy budget's ledger: what noisy answers cost each holder on each dataset. */
export function privacySpendingRepository(db: CatalogDb) {
  return {
    /** What the holder spent on the dataset since the time, and when the oldest of it was. */
    async spentSince(
      holder: string,
      datasetId: string,
      since: Date,
    ): Promise<{ epsilonMicro: number; oldest: Date | null }> {
      const row = await db
        .selectFrom('privacy_spending')
        .select((eb) => [
          eb.fn.coalesce(eb.fn.sum<string>('epsilon_micro'), eb.val('0')).as('total'),
          eb.fn.min('spent_at').as('oldest'),
        ])
        .where('holder', '=', holder)
        .where('dataset_id', '=', datasetId)
        .where('spent_at', '>', since)
        .executeTakeFirstOrThrow();
      return { epsilonMicro: Number(row.total), oldest: row.oldest ? new Date(row.oldest) : null };
    },

    /** Whether the holder was given this answer before (it is then given again for nothing). */
    async answered(holder: string, datasetId: string, answerKey: string): Promise<boolean> {
      const row = await db
        .selectFrom('privacy_spending')
        .select('id')
        .where('holder', '=', holder)
        .where('dataset_id', '=', datasetId)
        .where('answer_key', '=', answerKey)
        .executeTakeFirst();
      return row !== undefined;
    },

    async record(entry: {
      holder: string;
      datasetId: string;
      answerKey: string;
      queryId: string;
      epsilonMicro: number;
    }): Promise<void> {
      await db
        .insertInto('privacy_spending')
        .values({
          holder: entry.holder,
          dataset_id: entry.datasetId,
          answer_key: entry.answerKey,
          query_id: entry.queryId,
          epsilon_micro: entry.epsilonMicro,
        })
        .execute();
    },
  };
}
