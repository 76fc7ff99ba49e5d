import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Secret, TOTP } from 'otpauth';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/accounts/passwords.ts';
import { newTotpSecret } from '../src/accounts/totp.ts';
import { credentialsRepository } from '../src/catalog/credentials-repository.ts';
import { grantsRepository } from '../src/catalog/grants-repository.ts';
import type { UserRole } from '../src/catalog/schema.ts';
import { requestAccess } from '../src/use-cases/access/access-requests.ts';
import { assignSteward } from '../src/use-cases/accounts/manage-users.ts';
import { addUser, grantDatasetAccess } from '../src/use-cases/manage-access.ts';
import { saveDataset } from '../src/use-cases/manage-datasets.ts';
import { exportQueryResult } from '../src/use-cases/queries/export-query.ts';
import {
  accessibilityViolations,
  launchBrowser,
  overflowsWindow,
  problemsAtPhoneWidth,
  screenshot,
} from '../test/browser.ts';
import { testActor } from '../test/helper.ts';
import {
  contractFile,
  fixtureLines,
  ingest,
  prepareDataset,
  synthea,
} from '../test/ingest-helpers.ts';
import { runQuery } from '../test/query-helpers.ts';
import { startWebServer, type WebServer } from '../test/web-server.ts';

const password = 'copper meadow under nine lanterns';

describe('a steward uploads, an admin decides, an auditor checks, in a real browser', () => {
  let server: WebServer;
  let browser: Browser;
  let adminSecret = '';

  async function person(email: string, role: UserRole) {
    const user = await addUser(server.platform, testActor, {
      email,
      name: email.split('@')[0]!,
      role,
    });
    const credentials = credentialsRepository(server.platform.catalog.db);
    await credentials.setPassword(user.id, await hashPassword(password), false, new Date());
    if (role === 'admin') {
      adminSecret = newTotpSecret();
      await credentials.setPendingTotp(user.id, server.platform.totpSecrets.seal(adminSecret));
      await credentials.enableTotp(user.id, new Date(), 0);
    }
    return user;
  }

  async function signIn(email: string, width = 1280): Promise<Page> {
    const context = await browser.newContext({ viewport: { width, height: 800 } });
    const page = await context.newPage();
    await page.goto(server.url);
    await page
      .getByLabel('E-mail')
      .fill(email)
      .catch(async (error: unknown) => {
        await screenshot(page, 'debug-sign-in');
        throw error;
      });
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    if (email.startsWith('admin')) {
      const code = new TOTP({ secret: Secret.fromBase32(adminSecret) }).generate();
      await page.getByLabel('Code from your authenticator app').fill(code);
      await page.getByRole('button', { name: 'Verify and sign in' }).click();
    }
    // Each role lands where its work is.
    const landing = email.startsWith('admin')
      ? 'Waiting for you'
      : email.startsWith('steward')
        ? 'Uploads'
        : email.startsWith('auditor')
          ? 'Audit log'
          : 'Catalog';
    await page.getByRole('heading', { level: 1, name: landing }).waitFor();
    return page;
  }

  /** Opens one of the admin's pages from the Administration menu; its heading is the same. */
  async function openAdministration(page: Page, name: string) {
    await page.getByRole('button', { name: 'Administration' }).click();
    await page.getByRole('menuitem', { name }).click();
    await page
      .getByRole('heading', { level: 1, name })
      .waitFor()
      .catch(async (error: unknown) => {
        await screenshot(page, `debug-${name}`);
        throw error;
      });
  }

  beforeAll(async () => {
    server = await startWebServer();
    await prepareDataset(server.platform, 'synthea-observations');
    await person('steward@example.org', 'steward');
    await assignSteward(server.platform, testActor, {
      email: 'steward@example.org',
      hospitalId: 'synthea',
      assigned: true,
    });
    await person('admin@example.org', 'admin');
    await person('auditor@example.org', 'auditor');
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('a steward uploads the Synthea export and reads the report, and a bad file’s problems', async () => {
    const page = await signIn('steward@example.org');
    await page.getByRole('link', { name: 'Uploads' }).click();
    await page.getByRole('heading', { name: 'Upload a month' }).waitFor();
    await page.getByRole('textbox', { name: /^Month/ }).fill('2020-12');
    await page.getByLabel('CSV file').setInputFiles(synthea('2020-12'));
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.getByText('Published: 1,052 rows').waitFor();
    await page.getByRole('cell', { name: 'published' }).waitFor();
    await page.getByRole('cell', { name: 'current' }).waitFor();
    await page.getByRole('heading', { name: 'Data quality' }).waitFor();
    await page.getByText('The first month of this hospital').waitFor();
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'uploads');

    // The release's first rows as researchers' queries read them: pseudonyms, no names.
    await page.getByRole('button', { name: 'Preview the de-identified rows' }).click();
    await page.getByRole('heading', { name: /^The first 20 rows/ }).waitFor();
    const shown =
      (await page.getByRole('table', { name: /^The first 20 rows/ }).textContent()) ?? '';
    const { header: fixtureHeader, rows: fixtureRows } = await fixtureLines('2020-12');
    const headers = fixtureHeader.split(',');
    const identifiers = fixtureRows.slice(0, 20).flatMap((line) => {
      const cells = line.split(',');
      return ['MRN', 'SSN', 'FIRST', 'LAST', 'ADDRESS'].map((name) => cells[headers.indexOf(name)]);
    });
    expect(identifiers.filter((value) => value && shown.includes(value))).toEqual([]);
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'upload-preview');

    const { header, rows } = await fixtureLines('2021-03');
    const bad = path.join(tmpdir(), 'medlake-e2e-march.csv');
    // Line 2 is good; lines 3 to 152 have a field too many: more than the page lists.
    await writeFile(
      bad,
      [header, rows[0], ...rows.slice(1, 151).map((row) => `${row},extra`)].join('\n'),
    );
    await page.getByRole('textbox', { name: /^Month/ }).fill('2021-03');
    await page.getByLabel('CSV file').setInputFiles(bad);
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.getByText('was not published').waitFor();
    // In words, with the line and the column of each problem, and all of them as CSV.
    const problems = page.getByRole('table', { name: /^Problems in/ });
    await problems.getByRole('cell', { name: '3', exact: true }).waitFor();
    await problems
      .getByText(/more fields than the header/i)
      .first()
      .waitFor();
    expect(await problems.textContent()).not.toContain('extra_fields');
    await page
      .getByText('The first 100 of 150 problems are shown here; the CSV holds them all.')
      .waitFor();
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'upload-problems');
    // The report fits a phone's width, and axe finds nothing there either.
    expect(await problemsAtPhoneWidth(page)).toEqual([]);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download the problems as CSV' }).click(),
    ]);
    const report = await readFile((await download.path())!, 'utf8');
    // All 150, each with its line, in words.
    const [reportHeader, ...reported] = report.trimEnd().split('\n');
    expect(reportHeader).toBe('line,column,header,problem,code');
    expect(reported.map((line) => Number(line.split(',')[0]))).toEqual(
      Array.from({ length: 150 }, (_, index) => index + 3),
    );
    expect(reported.every((line) => /more fields than the header/i.test(line))).toBe(true);

    // A steward opening an admin's page is told which role it needs, and sees none of it.
    await page.goto(`${server.url}/admin/users`);
    await page.getByRole('heading', { level: 1, name: 'Not for your role' }).waitFor();
    await page.getByText('This page is for administrators').waitFor();
    expect(await page.getByLabel('E-mail').count()).toBe(0);
    // An unknown address is a page that says so.
    await page.goto(`${server.url}/no/such/page`);
    await page.getByRole('heading', { level: 1, name: 'Page not found' }).waitFor();
    expect(await accessibilityViolations(page)).toEqual([]);
    await page.context().close();
  });

  it('an admin approves a researcher’s request, choosing the level', async () => {
    const researcher = await person('rae@example.org', 'researcher');
    await requestAccess(
      server.platform,
      { user: researcher, source: 'test' },
      {
        datasetId: 'synthea-observations',
        purpose: 'Vital signs over time in the synthetic population.',
        level: 'row',
        acceptTerms: true,
      },
    );
    const page = await signIn('admin@example.org');
    // The admin's start page: what waits for a decision.
    await page.getByText('1 request waits for a decision').waitFor();
    await page.getByText('rae@example.org asks for row access to synthea-observations').waitFor();
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'admin-home');
    await openAdministration(page, 'Access requests');
    await page.getByText('Vital signs over time').waitFor();
    await page.getByText('rae@example.org asks for row access').waitFor();
    await page.getByLabel('Grant level').click();
    await page.getByRole('option', { name: 'Aggregate' }).click();
    expect(await accessibilityViolations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByText('No request is waiting for a decision.').waitFor();

    // The users and grants page shows the new grant, and adds a user with a one-time password.
    const adminPage = page;
    await openAdministration(adminPage, 'Users and grants');
    await adminPage.getByRole('cell', { name: 'rae@example.org' }).first().waitFor();
    await adminPage.getByLabel('E-mail').fill('new.auditor@example.org');
    await adminPage.getByLabel('Name').fill('New Auditor');
    await adminPage.getByRole('button', { name: 'Add', exact: true }).click();
    expect(await adminPage.getByTestId('one-time-password').textContent()).toMatch(/^[\w-]{20}$/);
    expect(await accessibilityViolations(adminPage)).toEqual([]);
    await screenshot(adminPage, 'admin-users');

    // A project with the researcher as its member.
    await openAdministration(adminPage, 'Projects');
    await adminPage.getByLabel('Project id').fill('vitals-2026');
    await adminPage.getByLabel('Project name').fill('Vital signs 2026');
    await adminPage.getByRole('button', { name: 'Make project' }).click();
    await adminPage.getByLabel('Add a member to Vital signs 2026').fill('rae');
    await adminPage.getByRole('option', { name: 'rae@example.org' }).click();
    await adminPage.getByRole('button', { name: 'Add', exact: true }).click();
    await adminPage.getByRole('button', { name: 'rae@example.org' }).waitFor();
    expect(await accessibilityViolations(adminPage)).toEqual([]);

    // A new hospital, and a steward for it.
    await openAdministration(adminPage, 'Hospitals and stewards');
    await adminPage.getByLabel('Id').fill('north');
    await adminPage.getByLabel('Name').fill('North General');
    await adminPage.getByRole('button', { name: 'Add', exact: true }).click();
    const north = adminPage.getByRole('row', { name: /North General/ });
    await north.getByText('No steward: nobody can upload.').waitFor();
    await adminPage.getByLabel('Add a steward to North General').fill('stew');
    await adminPage.getByRole('option', { name: 'steward@example.org' }).click();
    await north.getByRole('button', { name: 'Assign' }).click();
    await north.getByRole('button', { name: 'steward@example.org' }).waitFor();
    expect(await accessibilityViolations(adminPage)).toEqual([]);
    await screenshot(adminPage, 'admin-hospitals');

    // What runs and what is stored.
    await openAdministration(adminPage, 'Running work and storage');
    await adminPage.getByText('No query is queued or running.').waitFor();
    await adminPage.getByRole('cell', { name: 'Lake (de-identified Parquet)' }).waitFor();
    expect(await accessibilityViolations(adminPage)).toEqual([]);
    await screenshot(adminPage, 'admin-operations');
    await adminPage.context().close();

    const researcherPage = await signIn('rae@example.org');
    await researcherPage.getByText('Aggregate access').waitFor();
    await researcherPage.context().close();
  });

  it('an auditor finds those actions in the audit log, and the chain verifies', async () => {
    const page = await signIn('auditor@example.org');
    await page.getByLabel('Action (starts with)').fill('upload');
    await page.getByRole('cell', { name: 'steward@example.org' }).first().waitFor();
    expect(await page.getByRole('cell', { name: 'upload', exact: true }).count()).toBe(2);
    await page.getByLabel('Action (starts with)').fill('access_request.decide');
    await page.getByRole('cell', { name: 'admin@example.org' }).waitFor();
    // Every field of the entry, in a drawer, the people named.
    await page
      .getByRole('button', { name: /^Entry \d+: every field$/ })
      .first()
      .click();
    const drawer = page.getByRole('region', { name: /^Entry #\d+$/ });
    await drawer.getByText('access_request.decide').waitFor();
    await drawer.getByText(/rae@example\.org \([0-9a-f-]{36}\)/).waitFor();
    expect(await accessibilityViolations(page)).toEqual([]);
    await drawer.getByRole('button', { name: 'Close' }).click();
    await page.getByLabel('Action (starts with)').fill('release.preview');
    await page.getByRole('cell', { name: 'steward@example.org' }).waitFor();
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    await page.getByText('The audit log is intact').waitFor();
    await page.getByText(/it matches \d+ signed checkpoint/).waitFor();
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'audit-log');
    await page.getByRole('link', { name: 'Suspicious activity' }).click();
    await page.getByRole('heading', { level: 1, name: 'Suspicious activity' }).waitFor();
    expect(await accessibilityViolations(page)).toEqual([]);
    await page.context().close();
  });

  it('an admin grants once, is told when granting twice, and revokes after confirming', async () => {
    const gus = await person('gus@example.org', 'researcher');
    // Its own admin: another admin's authenticator code may not be used twice in its window.
    await person('admin.grants@example.org', 'admin');
    const page = await signIn('admin.grants@example.org');
    await openAdministration(page, 'Users and grants');
    const grants = page.getByRole('region', { name: 'Grants in force' });
    await grants.getByLabel('User').fill('gus');
    await page.getByRole('option', { name: 'gus@example.org' }).click();
    await grants.getByLabel('Dataset').click();
    await page.getByRole('option', { name: 'Observations (Synthea export)' }).click();
    await grants.getByRole('button', { name: 'Grant', exact: true }).click();
    await grants.getByText('Granted: gus@example.org has aggregate access').waitFor();
    const gusRows = grants.getByRole('row', { name: /gus@example.org/ });
    await gusRows.getByText('no end date').waitFor();

    await grants.getByRole('button', { name: 'Grant', exact: true }).click();
    await grants
      .getByText(/^gus@example.org already has aggregate access to dataset synthea-observations/)
      .waitFor();
    expect(await gusRows.count()).toBe(1);
    expect(await accessibilityViolations(page)).toEqual([]);

    // Revoke asks first; cancelling keeps the grant.
    await gusRows.getByRole('button', { name: 'Revoke' }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke this grant?' });
    await dialog.getByText(/gus@example.org loses aggregate access/).waitFor();
    expect(await accessibilityViolations(page)).toEqual([]);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await gusRows.count()).toBe(1);
    await gusRows.getByRole('button', { name: 'Revoke' }).click();
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await gusRows.waitFor({ state: 'detached' });
    expect(
      await grantsRepository(server.platform.catalog.db).active(
        gus.id,
        'synthea-observations',
        new Date(),
      ),
    ).toEqual([]);
    await page.context().close();
  });

  it('fits the steward’s and the admin’s pages into a narrow window', async () => {
    // A second admin: the first one's authenticator code may not be used twice in its window.
    await person('admin.narrow@example.org', 'admin');
    const page = await signIn('admin.narrow@example.org', 390);
    for (const [path, heading] of [
      ['/uploads', 'Uploads'],
      ['/admin/users', 'Users and grants'],
      ['/admin/hospitals', 'Hospitals and stewards'],
      ['/admin/operations', 'Running work and storage'],
      ['/audit', 'Audit log'],
    ] as const) {
      await page.goto(`${server.url}${path}`);
      await page.getByRole('heading', { level: 1, name: heading }).waitFor();
      expect(await overflowsWindow(page), path).toBe(false);
      expect(await accessibilityViolations(page)).toEqual([]);
    }
    await page.context().close();
  });

  // Last: its upload and export would change what the auditor's test counts.
  it('an admin approves a row-level export held in the airlock', async () => {
    const contract = JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'));
    await saveDataset(server.platform, {
      ...contract,
      name: 'locked',
      title: 'Locked',
      privacy: { airlock: true },
    });
    expect(
      (
        await ingest(server.platform, {
          file: synthea('2020-12'),
          dataset: 'locked',
          month: '2020-12',
        })
      ).status,
    ).toBe('published');
    const rowan = await person('rowan@example.org', 'researcher');
    await grantDatasetAccess(server.platform, testActor, {
      email: 'rowan@example.org',
      datasetId: 'locked',
      level: 'row',
    });
    const { job } = await runQuery(server.platform, rowan, {
      dataset: 'locked',
      select: ['code', 'value'],
      limit: 20,
    });
    const caller = { user: rowan, source: 'test' };
    // The result is held whole: its owner sees that it waits, and nothing of it.
    const owner = await signIn('rowan@example.org');
    await owner.goto(`${server.url}/queries/${job.id}`);
    await owner.getByText('Held for an administrator’s review').waitFor();
    expect(await owner.getByRole('heading', { name: 'Key points' }).count()).toBe(0);
    expect(await accessibilityViolations(owner)).toEqual([]);
    await owner.context().close();

    // Another admin: the first one's code of this half-minute is spent.
    await person('admin2@example.org', 'admin');
    const page = await signIn('admin2@example.org');
    await page.getByText('1 result waits for your review').waitFor();
    await openAdministration(page, 'Held for review');
    await page.getByText(/rowan@example.org ran a query on locked with row access/).waitFor();
    await page.getByText('Failed: row level').waitFor();
    await page
      .getByLabel('Reason (recorded, shown in the audit log)')
      .fill('agreed extract, ethics ref 44');
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'admin-exports');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByText('Nothing is waiting for review.').waitFor();
    await page.context().close();

    const released = await exportQueryResult(server.platform, caller, job.id, 'csv');
    expect(released.review).toBe('approved');
    expect(released.url).toMatch(/^\/api\/v1\/downloads\//);
  });
});
