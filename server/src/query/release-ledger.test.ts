import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { contractFile, ingest, synthea } from '../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import { usersRepository, type User } from '../catalog/users-repository.ts';
import { createProject, setProjectMember } from '../use-cases/access/projects.ts';
import { grantDatasetAccess } from '../use-cases/manage-access.ts';
import { addHospital, saveDataset } from '../use-cases/manage-datasets.ts';
import { describeDataset } from '../use-cases/queries/describe-dataset.ts';
import type * as ledgerLock from './ledger/lock.ts';
import type * as searchThreads from './ledger/search-threads.ts';
import { ledgerSearchThreads } from './ledger/search-threads.ts';

type Row = Record<string, unknown> & { suppressed: boolean };

/**
 * A gate for the test of two checks at once: while armed, the first search waits in its worker
 * thread's search until a second check asks for the ledger's lock, so that the second check
 * certainly starts while the first one's search runs.
 */
const gate = vi.hoisted(() => {
  let open = () => {};
  return {
    armed: false,
    searches: 0,
    locks: 0,
    opened: Promise.resolve(),
    arm() {
      this.armed = true;
      this.searches = 0;
      this.locks = 0;
      this.opened = new Promise<void>((resolve) => (open = resolve));
    },
    lockAsked() {
      if (this.armed && (this.locks += 1) === 2) open();
    },
  };
});

vi.mock('./ledger/lock.ts', async (importOriginal) => {
  const real = await importOriginal<typeof ledgerLock>();
  return {
    ...real,
    lockReleaseLedger: (...args: Parameters<typeof real.lockReleaseLedger>) => {
      gate.lockAsked();
      return real.lockReleaseLedger(...args);
    },
  };
});

vi.mock('./ledger/search-threads.ts', async (importOriginal) => {
  const real = await importOriginal<typeof searchThreads>();
  return {
    ...real,
    searchInWorker: async (...args: Parameters<typeof real.searchInWorker>) => {
      const found = real.searchInWorker(...args);
      if (gate.armed && (gate.searches += 1) === 1) await gate.opened;
      return found;
    },
  };
});

/**
 * The classic differencing attacks, each run twice: on `plain`, a dataset with small-cell
 * suppression alone, where it works (the difference of two released counts is a group of 1 to
 * 10 patients), and on `guarded`, the same data under the release ledger, where the second
 * count is held back.
 */
describe('the release ledger against differencing', () => {
  let platform: TestPlatform;
  /** Each test's attacker: a researcher per dataset, with a ledger of their own. */
  let attacker: Record<'plain' | 'guarded', User>;
  let attackers = 0;
  const newAttacker = async () => {
    attackers += 1;
    attacker = {
      plain: await researcherWithAccess(
        platform,
        `p${attackers}@example.org`,
        'plain',
        'aggregate',
      ),
      guarded: await researcherWithAccess(
        platform,
        `g${attackers}@example.org`,
        'guarded',
        'aggregate',
      ),
    };
  };
  let header: string;
  let rows: string[];
  /** Five of the fixture's 59 patients (by MRN, the first column), kept out of the first upload. */
  let heldOut: string[];

  /** The rows of the given patients, as an export. */
  const rowsOf = (mrns: string[]) =>
    [header, ...rows.filter((row) => mrns.includes(row.split(',')[0]!))].join('\n');

  const both = async (input: { text?: string; file?: string; hospital: string; month: string }) => {
    for (const dataset of ['plain', 'guarded']) {
      const result = await ingest(platform, { ...input, dataset });
      expect(result.status).toBe('published');
    }
  };

  const patients = async (dataset: 'plain' | 'guarded', spec: object) => {
    const { job, rows } = await runQuery(platform, attacker[dataset], {
      dataset,
      measures: [{ fn: 'patients' }],
      ...spec,
    });
    expect(job.status).toBe('succeeded');
    return { job, rows: rows as Row[] };
  };

  beforeAll(async () => {
    platform = await createTestPlatform();
    for (const id of ['synthea', 'small'])
      await addHospital(platform, testActor, { id, name: `Hospital ${id}` });
    const contract = JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'));
    await saveDataset(platform, {
      ...contract,
      name: 'plain',
      title: 'Plain',
      privacy: { releaseLedger: false },
    });
    await saveDataset(platform, {
      ...contract,
      name: 'guarded',
      title: 'Guarded',
      privacy: { releaseLedger: true },
    });
    [header = '', ...rows] = (await readFile(synthea('all'), 'utf8'))
      .split('\n')
      .filter((line) => line !== '');
    const patientIds = [...new Set(rows.map((row) => row.split(',')[0]!))];
    heldOut = patientIds.slice(-5);
    await both({
      text: rowsOf(patientIds.slice(0, -5)),
      hospital: 'synthea',
      month: '2020-12',
    });
  }, 120_000);

  beforeEach(async () => {
    await newAttacker();
  });

  afterAll(async () => {
    await platform?.dispose();
  });

  it('months 1..N against 1..N+1: a month of three patients is not revealed', async () => {
    const before = {
      plain: await patients('plain', { groupBy: [{ column: 'sex' }] }),
      guarded: await patients('guarded', { groupBy: [{ column: 'sex' }] }),
    };
    expect(before.guarded.rows.every((row) => !row.suppressed)).toBe(true);

    // The next month brings three patients.
    await both({ text: rowsOf(heldOut.slice(0, 3)), hospital: 'synthea', month: '2021-03' });

    const after = await patients('plain', { groupBy: [{ column: 'sex' }] });
    const revealed = after.rows.map((row, index) => {
      const earlier = before.plain.rows[index]!;
      return Number(row.patients) - Number(earlier.patients);
    });
    // The attack works where only small cells are suppressed: 3 patients, by sex.
    expect(revealed.reduce((sum, n) => sum + n, 0)).toBe(3);
    expect(revealed.every((n) => n >= 0 && n < 11)).toBe(true);

    const guarded = await patients('guarded', { groupBy: [{ column: 'sex' }] });
    const changed = guarded.rows.filter((_, index) => revealed[index]! > 0);
    expect(changed.length).toBeGreaterThan(0);
    for (const row of changed) {
      expect(row).toMatchObject({ suppressed: true, patients: 'suppressed' });
    }
    const rule = guarded.job.summary?.rules.find((item) => item.rule === 'release_ledger');
    expect(rule?.description).toMatch(
      /held back: compared with cells released to you before .* fewer than 11 patients/,
    );
    // The total moved by three as well: it is held back too.
    expect(guarded.job.summary?.matching?.patients).toBe('suppressed');
  });

  it('every hospital against all but one: a hospital of two patients is not revealed', async () => {
    await both({ text: rowsOf(heldOut.slice(3)), hospital: 'small', month: '2020-12' });
    const allButSmall = { where: { column: 'hospital', op: 'ne', value: 'small' } };

    const plainAll = await patients('plain', {});
    const plainRest = await patients('plain', allButSmall);
    expect(Number(plainAll.rows[0]!.patients) - Number(plainRest.rows[0]!.patients)).toBe(2);

    const guardedAll = await patients('guarded', {});
    expect(guardedAll.rows[0]).toMatchObject({ suppressed: false });
    const guardedRest = await patients('guarded', allButSmall);
    expect(guardedRest.rows[0]).toMatchObject({ suppressed: true, patients: 'suppressed' });
    expect(guardedRest.job.summary?.matching?.patients).toBe('suppressed');
  });

  it('every hospital and all but one submitted at the same moment: one is checked against the other', async () => {
    // The hospital of two patients is in the lake since the test before. Each check's search
    // runs in a worker thread, and the first waits there until the other query's check asks
    // for the ledger's lock: the lock must keep it from reading the pool before the first one's
    // record, or both would be checked against an empty ledger and released.
    const allButSmall = { where: { column: 'hospital', op: 'ne', value: 'small' } };
    const searched = ledgerSearchThreads().completed;
    gate.arm();
    try {
      const [all, rest] = await Promise.all([
        patients('guarded', {}),
        patients('guarded', allButSmall),
      ]);
      expect(gate.locks).toBe(2);
      expect(ledgerSearchThreads().completed).toBeGreaterThanOrEqual(searched + 2);
      const released = [all, rest].filter(({ rows }) => rows[0]?.suppressed === false);
      expect(released).toHaveLength(1);
    } finally {
      gate.armed = false;
    }
  });

  it('two overlapping filters: the patients of a rare code are not revealed', async () => {
    // On the plain dataset, a common code X and a rare code Y whose patients without X are 1 to 10.
    const perCode = await patients('plain', { groupBy: [{ column: 'code' }] });
    const common = perCode.rows
      .filter((row) => !row.suppressed)
      .sort((a, b) => Number(b.patients) - Number(a.patients))
      .map((row) => String(row.code));
    let found: { x: string; y: string; difference: number } | undefined;
    const patientsOf = async (codes: string[]) =>
      Number((await patients('plain', { where: { op: 'code', codes } })).rows[0]!.patients);
    // Codes of 11 to 40 patients as X, the rarest published codes as Y.
    const middling = perCode.rows.filter(
      (row) => !row.suppressed && Number(row.patients) >= 11 && Number(row.patients) <= 40,
    );
    search: for (const candidate of middling.slice(0, 5)) {
      const x = String(candidate.code);
      const xOnly = await patientsOf([x]);
      for (const y of common.slice(-10)) {
        const difference = (await patientsOf([x, y])) - xOnly;
        if (difference > 0 && difference < 11) {
          found = { x, y, difference };
          break search;
        }
      }
    }
    expect(found, 'a pair of codes whose difference is a small group').toBeDefined();

    const first = await patients('guarded', {
      where: { op: 'code', codes: [found!.x] },
    });
    expect(first.rows[0]).toMatchObject({ suppressed: false });
    const second = await patients('guarded', {
      where: { op: 'code', codes: [found!.x, found!.y] },
    });
    expect(second.rows[0]).toMatchObject({ suppressed: true, patients: 'suppressed' });
  });

  it('withholds the data dictionary’s counts per code, which are the monthly counts it guards', async () => {
    const guarded = await describeDataset(platform, attacker.guarded, 'guarded');
    expect(guarded.codes.every((entry) => entry.patients === 'withheld')).toBe(true);
    expect(guarded.rules[0]?.rule).toBe('release_ledger');
  });

  it('releases the same count again, and keeps each project’s ledger its own', async () => {
    const spec = { groupBy: [{ column: 'race' }] };
    const first = await patients('guarded', spec);
    const again = await patients('guarded', spec);
    const byRace = (rows: Row[]) =>
      rows.toSorted((a, b) => String(a.race).localeCompare(String(b.race)));
    expect(byRace(again.rows)).toEqual(byRace(first.rows));
    expect(again.job.summary?.rules.map((rule) => rule.rule)).not.toContain('release_ledger');

    // Another researcher, with a grant of their own, has been released nothing yet.
    const other = await researcherWithAccess(platform, 'o@example.org', 'guarded', 'aggregate');
    const theirs = await runQuery(platform, other, {
      dataset: 'guarded',
      where: { column: 'hospital', op: 'ne', value: 'small' },
      measures: [{ fn: 'patients' }],
    });
    expect(theirs.rows[0]).toMatchObject({ suppressed: false });
  });

  it('records a question asked again once: the ledger does not grow with repeats', async () => {
    const cells = async () => {
      const { n } = await platform.catalog.db
        .selectFrom('released_cells')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('user_id', '=', attacker.guarded.id)
        .executeTakeFirstOrThrow();
      return Number(n);
    };
    const byRace = { groupBy: [{ column: 'race' }] };
    const first = await patients('guarded', byRace);
    const recorded = await cells();
    expect(recorded).toBeGreaterThan(0);
    for (let again = 0; again < 2; again += 1) {
      const answer = await patients('guarded', byRace);
      expect(answer.rows).toEqual(first.rows);
    }
    expect(await cells()).toBe(recorded);
    // Another question is recorded.
    await patients('guarded', { groupBy: [{ column: 'sex' }] });
    expect(await cells()).toBeGreaterThan(recorded);
  });

  describe('two groupings of the same rows', () => {
    const firstMonth = { where: { column: 'month', op: 'eq', value: '2020-12' } };
    const bySex = { ...firstMonth, groupBy: [{ column: 'sex' }] };
    const bySexAndRace = { ...firstMonth, groupBy: [{ column: 'sex' }, { column: 'race' }] };
    const shown = (rows: Row[], sex: string) =>
      rows
        .filter((row) => row.sex === sex && !row.suppressed)
        .reduce((sum, row) => sum + Number(row.patients), 0);

    /** On plain: the patients of a sex less those of the races shown for it, 1 to 10. */
    const attackOnPlain = async () => {
      const coarse = await patients('plain', bySex);
      const fine = await patients('plain', bySexAndRace);
      const revealed = coarse.rows.map((row) => [
        row.sex,
        Number(row.patients) - shown(fine.rows, String(row.sex)),
      ]);
      expect(revealed.some(([, n]) => Number(n) > 0 && Number(n) < 11)).toBe(true);
      return revealed;
    };

    it('by sex, then by sex and race: the races left out of a sex are not revealed', async () => {
      const revealed = await attackOnPlain();
      await patients('guarded', bySex);
      const fine = await patients('guarded', bySexAndRace);
      for (const [sex, n] of revealed) {
        if (Number(n) > 0 && Number(n) < 11) {
          // Every race shown for that sex is held back: nothing to subtract from the sex.
          expect(shown(fine.rows, String(sex))).toBe(0);
        }
      }
      expect(fine.job.summary?.rules.map((rule) => rule.rule)).toContain('release_ledger');
    });

    it('a margin asked twice counts as asked: the races left out are still not revealed', async () => {
      const revealed = await attackOnPlain();
      await patients('guarded', bySex);
      // Asked again, it is not recorded again; the first record still guards the margin.
      await patients('guarded', bySex);
      const fine = await patients('guarded', bySexAndRace);
      for (const [sex, n] of revealed) {
        if (Number(n) > 0 && Number(n) < 11) expect(shown(fine.rows, String(sex))).toBe(0);
      }
      expect(fine.job.summary?.rules.map((rule) => rule.rule)).toContain('release_ledger');
    });

    it('a margin asked twice under a project, then the races under the user’s own grant once they left it: still not revealed', async () => {
      // The second ask is not recorded (its holder was given it word for word); the first
      // record is the project's, and the user's later checks under any holder must read it.
      const revealed = await attackOnPlain();
      const projectId = `ledger-${attackers}`;
      const email = `member-${attackers}@example.org`;
      await createProject(platform, testActor, { id: projectId, name: 'Ledger' });
      const member = await usersRepository(platform.catalog.db).create({
        email,
        name: 'Member',
        role: 'researcher',
      });
      await grantDatasetAccess(platform, testActor, {
        projectId,
        datasetId: 'guarded',
        level: 'aggregate',
      });
      await setProjectMember(platform, testActor, { projectId, email, member: true });
      const ask = async (spec: object) => {
        const answer = await runQuery(platform, member, {
          dataset: 'guarded',
          measures: [{ fn: 'patients' }],
          ...spec,
        });
        expect(answer.job.status).toBe('succeeded');
        return { job: answer.job, rows: answer.rows as Row[] };
      };
      const cells = async () =>
        (
          await platform.catalog.db
            .selectFrom('released_cells')
            .select('id')
            .where('user_id', '=', member.id)
            .execute()
        ).length;
      await ask(bySex);
      const recorded = await cells();
      expect(recorded).toBeGreaterThan(0);
      await ask(bySex);
      expect(await cells()).toBe(recorded);
      await setProjectMember(platform, testActor, { projectId, email, member: false });
      await grantDatasetAccess(platform, testActor, {
        email,
        datasetId: 'guarded',
        level: 'aggregate',
      });
      const fine = await ask(bySexAndRace);
      for (const [sex, n] of revealed) {
        if (Number(n) > 0 && Number(n) < 11) expect(shown(fine.rows, String(sex))).toBe(0);
      }
      expect(fine.job.summary?.rules.map((rule) => rule.rule)).toContain('release_ledger');
    });

    it('by sex and race, then by sex: the margin is held back instead', async () => {
      const revealed = await attackOnPlain();
      await patients('guarded', bySexAndRace);
      const coarse = await patients('guarded', bySex);
      for (const [sex, n] of revealed) {
        const row = coarse.rows.find((item) => item.sex === sex);
        if (Number(n) > 0 && Number(n) < 11) expect(row?.suppressed).toBe(true);
      }
    });

    it('a pseudo-group that takes every row, or a renamed group, does not sidestep it', async () => {
      await patients('guarded', bySex);
      // One hospital in that month: grouping by it adds nothing but a new name to the grouping.
      const fine = await patients('guarded', {
        ...firstMonth,
        groupBy: [{ column: 'hospital', as: 'h' }, { column: 'sex', as: 'sx' }, { column: 'race' }],
      });
      const attack = await attackOnPlain();
      for (const [sex, n] of attack) {
        if (Number(n) > 0 && Number(n) < 11) {
          expect(
            fine.rows.filter((row) => row.sx === sex && !row.suppressed),
            `the races shown for ${String(sex)}`,
          ).toEqual([]);
        }
      }
    });

    it('the total, then a grouping whose left-out groups hold 11 patients or more: released', async () => {
      const total = await patients('guarded', firstMonth);
      expect(total.rows[0]).toMatchObject({ suppressed: false });
      // By race, the races left out hold more than 10 patients together: no small remainder.
      const byRace = await patients('guarded', { ...firstMonth, groupBy: [{ column: 'race' }] });
      expect(byRace.job.summary?.withheldGroups).toBeGreaterThan(0);
      expect(byRace.rows.filter((row) => row.suppressed)).toEqual([]);
    });
  });
});
