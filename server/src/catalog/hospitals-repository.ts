import type { CatalogDb } from './catalog.ts';

export type Hospital = { id: string; name: string; createdAt: Date };

/** A hospital as the administration sees it: its stewards and what it has delivered. */
export type HospitalOverview = Hospital & {
  stewards: { userId: string; email: string }[];
  currentReleases: number;
  latestMonth: string | null;
};

/** Hospitals that deliver data. Their ids appear in lake paths, so they are short slugs. */
export function hospitalsRepository(db: CatalogDb) {
  return {
    async create(hospital: { id: string; name: string }): Promise<Hospital> {
      const row = await db
        .insertInto('hospitals')
        .values(hospital)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { id: row.id, name: row.name, createdAt: row.created_at };
    },

    async get(id: string): Promise<Hospital | undefined> {
      const row = await db
        .selectFrom('hospitals')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row && { id: row.id, name: row.name, createdAt: row.created_at };
    },

    /** A page of hospitals with their stewards and current releases, and how many in all. */
    async overview(page: {
      limit: number;
      offset: number;
    }): Promise<{ hospitals: HospitalOverview[]; total: number }> {
      const rows = await db
        .selectFrom('hospitals')
        .leftJoin('current_releases', 'current_releases.hospital_id', 'hospitals.id')
        .select((eb) => [
          'hospitals.id',
          'hospitals.name',
          'hospitals.created_at',
          eb.fn.count<string>('current_releases.release_id').as('current_releases'),
          eb.fn.max('current_releases.month').as('latest_month'),
        ])
        .groupBy(['hospitals.id', 'hospitals.name', 'hospitals.created_at'])
        .orderBy('hospitals.id')
        .limit(page.limit)
        .offset(page.offset)
        .execute();
      const { total } = await db
        .selectFrom('hospitals')
        .select((eb) => eb.fn.countAll<string>().as('total'))
        .executeTakeFirstOrThrow();
      const stewards =
        rows.length === 0
          ? []
          : await db
              .selectFrom('steward_hospitals')
              .innerJoin('users', 'users.id', 'steward_hospitals.user_id')
              .select(['steward_hospitals.hospital_id', 'users.id', 'users.email'])
              .where(
                'steward_hospitals.hospital_id',
                'in',
                rows.map((row) => row.id),
              )
              .orderBy('users.email')
              .execute();
      return {
        hospitals: rows.map((row) => ({
          id: row.id,
          name: row.name,
          createdAt: row.created_at,
          stewards: stewards
            .filter((steward) => steward.hospital_id === row.id)
            .map((steward) => ({ userId: steward.id, email: steward.email })),
          currentReleases: Number(row.current_releases),
          latestMonth: row.latest_month ?? null,
        })),
        total: Number(total),
      };
    },

    async list(): Promise<Hospital[]> {
      const rows = await db.selectFrom('hospitals').selectAll().orderBy('id').execute();
      return rows.map((row) => ({ id: row.id, name: row.name, createdAt: row.created_at }));
    },
  };
}
