import { sql, type Kysely } from 'kysely';

/**
 * One grant in force per holder, dataset and level. Pressing Grant twice used to make two
 * identical grants, and revoking one left the holder their access through the other. Grants
 * that are already doubled are merged into the oldest (the union of their hospitals, the latest
 * expiry), so that nobody loses access the duplicates gave; the others are revoked.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    with ranked as (
      select id,
        first_value(id) over holder as keeper,
        bool_or(hospitals is null) over holder_all as every_hospital,
        bool_or(expires_at is null) over holder_all as no_end,
        max(expires_at) over holder_all as latest_end,
        count(*) over holder_all as n
      from dataset_grants
      where revoked_at is null
      window holder as (partition by dataset_id, level, user_id, project_id order by created_at, id),
        holder_all as (partition by dataset_id, level, user_id, project_id)
    ),
    hospitals as (
      select r.keeper, jsonb_agg(distinct h.value order by h.value) as list
      from ranked r
      join dataset_grants g on g.id = r.id
      cross join lateral jsonb_array_elements_text(coalesce(g.hospitals, '[]'::jsonb)) as h(value)
      where r.n > 1
      group by r.keeper
    )
    update dataset_grants g set
      hospitals = case when r.every_hospital then null else (select list from hospitals where hospitals.keeper = r.keeper) end,
      expires_at = case when r.no_end then null else r.latest_end end,
      revoked_at = case when g.id = r.keeper then null else now() end
    from ranked r
    where g.id = r.id and r.n > 1
  `.execute(db);
  await sql`
    create unique index dataset_grants_one_in_force on dataset_grants
      (dataset_id, level, coalesce(user_id::text, ''), coalesce(project_id, ''))
      where revoked_at is null
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index dataset_grants_one_in_force`.execute(db);
}
