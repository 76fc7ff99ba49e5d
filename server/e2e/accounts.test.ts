import jsQR from 'jsqr';
import { URI, type TOTP } from 'otpauth';
import { PNG } from 'pngjs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessibilityViolations,
  launchBrowser,
  overflowsWindow,
  problemsAtPhoneWidth,
  screenshot,
} from '../test/browser.ts';
import { ingest, prepareDataset, synthea } from '../test/ingest-helpers.ts';
import { testActor } from '../test/helper.ts';
import { startWebServer, type WebServer } from '../test/web-server.ts';
import { hashPassword } from '../src/accounts/passwords.ts';
import { credentialsRepository } from '../src/catalog/credentials-repository.ts';
import { ensureFirstAdmin } from '../src/use-cases/accounts/manage-users.ts';
import { decideAccessRequest } from '../src/use-cases/access/access-requests.ts';
import { createProject, setProjectMember } from '../src/use-cases/access/projects.ts';
import { accessRequestsRepository } from '../src/catalog/access-requests-repository.ts';
import { addUser } from '../src/use-cases/manage-access.ts';

const newPassword = 'lantern harbour seventeen quiet';

describe('signing in and asking for access, in a real browser', () => {
  let server: WebServer;
  let browser: Browser;

  beforeAll(async () => {
    server = await startWebServer();
    await prepareDataset(server.platform, 'synthea-observations');
    await ingest(server.platform, { file: synthea('all'), month: '2021-06' });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function newPage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    return context.newPage();
  }

  it('takes the first admin from the one-time password through a new password and an authenticator to the catalog', async () => {
    const first = await ensureFirstAdmin(server.platform);
    const page = await newPage();
    await page.goto(server.url);
    await page.getByRole('heading', { name: 'Sign in to medlake' }).waitFor();
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'sign-in');

    await page.getByLabel('E-mail').fill(first!.email);
    await page.getByLabel('Password').fill(first!.oneTimePassword);
    await page.getByRole('button', { name: 'Sign in' }).click();

    await page.getByRole('heading', { name: 'Choose your password' }).waitFor();
    await page.getByLabel('One-time password').fill(first!.oneTimePassword);
    await page.getByLabel(/^New password/).fill('password1234');
    await page.getByLabel('Repeat the new password').fill('password1234');
    await page.getByRole('button', { name: 'Save password' }).click();
    // The server's reason is shown at the field.
    await page.getByText('commonly used password').waitFor();
    await page.getByLabel(/^New password/).fill(newPassword);
    await page.getByRole('button', { name: 'Save password' }).click();
    // A typing slip in the repeat is caught before it is sent.
    await page.getByText('does not match the new password').waitFor();
    await page.getByLabel('Repeat the new password').fill(newPassword);
    await page.getByRole('button', { name: 'Save password' }).click();

    await page.getByRole('heading', { name: 'Set up your authenticator app' }).waitFor();
    await page.getByRole('button', { name: 'Show my secret' }).click();
    // The phone scans the QR code: decoded from the pixels on the screen, it is the account's
    // otpauth:// link, whose secret gives the code to confirm.
    const qr = PNG.sync.read(await page.getByTestId('totp-qr').screenshot());
    // jsqr is CommonJS: its function is also its `default`, which is what TypeScript sees.
    const scanned = jsQR.default(new Uint8ClampedArray(qr.data), qr.width, qr.height);
    expect(scanned?.data).toMatch(/^otpauth:\/\/totp\//);
    const totp = URI.parse(scanned!.data) as TOTP;
    expect(totp.secret.base32).toBe((await page.getByTestId('totp-secret').textContent()) ?? '');
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'authenticator');
    // The set-up fits a phone's width too, and axe finds nothing there either.
    expect(await problemsAtPhoneWidth(page)).toEqual([]);
    await page.getByLabel('Code from your authenticator app').fill(totp.generate());
    await page.getByRole('button', { name: 'Confirm' }).click();

    // An admin lands on what waits for review.
    await page.getByRole('heading', { name: 'Waiting for you' }).waitFor();
    await page.getByText('No request is waiting for a decision.').waitFor();
    expect(await accessibilityViolations(page)).toEqual([]);

    // A personal token for a script, made on the profile page, works until it is revoked.
    await page.getByRole('link', { name: 'Administrator (admin)' }).click();
    // The password is their own now: the card asks for it, and no longer speaks of one set by
    // an administrator that works only once.
    await page.getByRole('heading', { name: 'Change your password' }).waitFor();
    await page.getByLabel('Current password').waitFor();
    expect(await page.getByText(/set by an administrator|works only this once/).count()).toBe(0);
    await page.getByLabel('What it is for').fill('audit export script');
    await page.getByLabel('audit').check();
    await page.getByLabel('query').uncheck();
    await page.getByRole('button', { name: 'Make token' }).click();
    const token = (await page.getByTestId('new-token').textContent()) ?? '';
    expect(token).toMatch(/^mlk_/);
    expect(await accessibilityViolations(page)).toEqual([]);
    const asScript = () =>
      fetch(`${server.url}/api/v1/audit?pageSize=1`, {
        headers: { authorization: `Bearer ${token}` },
      });
    expect((await asScript()).status).toBe(200);
    await page.getByRole('button', { name: 'Revoke' }).click();
    await page.getByText('audit export script').waitFor({ state: 'detached' });
    expect((await asScript()).status).toBe(401);
    await page.context().close();
  });

  // Long: it runs four queries, on a machine that may be busy.
  it(
    'lets a researcher request access, and shows the grant once an admin approves',
    {
      timeout: 180_000,
    },
    async () => {
      const researcher = await addUser(server.platform, testActor, {
        email: 'rita@example.org',
        name: 'Rita Researcher',
        role: 'researcher',
      });
      await createProject(server.platform, testActor, { id: 'lipids-2026', name: 'Lipids 2026' });
      await setProjectMember(server.platform, testActor, {
        projectId: 'lipids-2026',
        email: 'rita@example.org',
        member: true,
      });
      await credentialsRepository(server.platform.catalog.db).setPassword(
        researcher.id,
        await hashPassword(newPassword),
        false,
        new Date(),
      );
      const page = await newPage();
      await page.goto(server.url);
      await page.getByLabel('E-mail').fill('rita@example.org');
      await page.getByLabel('Password').fill(newPassword);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Catalog' }).waitFor();

      await page.getByRole('button', { name: 'Request access' }).click();
      const dialog = page.getByRole('dialog');
      await dialog
        .getByLabel('What you will use it for')
        .fill('HbA1c and LDL in adults with diabetes, 2020 to 2021, by sex and age band.');
      await dialog.getByLabel('I accept the data-use terms').check();
      expect(await accessibilityViolations(page)).toEqual([]);
      await screenshot(page, 'request-access');
      await dialog.getByRole('button', { name: 'Send request' }).click();
      await page.getByText('waiting for an administrator').waitFor();

      const [request] = await accessRequestsRepository(server.platform.catalog.db).list({
        status: 'pending',
      });
      await decideAccessRequest(server.platform, testActor, {
        requestId: request!.id,
        approve: true,
      });
      await page.reload();
      await page.getByText('Aggregate access').waitFor();
      await screenshot(page, 'catalog');

      // The data dictionary, searched on the server.
      await page.getByRole('link', { name: 'Dictionary' }).click();
      await page.getByLabel('Search codes and names').fill('height');
      await page.getByRole('cell', { name: 'Body Height' }).waitFor();
      expect(await accessibilityViolations(page)).toEqual([]);
      await screenshot(page, 'dataset');

      // A query with a filter, a cohort criterion and a time bucket.
      await page.getByRole('link', { name: 'New query' }).click();
      await page.getByRole('heading', { name: 'New query' }).waitFor();
      await page.getByLabel('Tests (codes)').fill('8302-2');
      await page.getByRole('option', { name: /^8302-2/ }).click();
      await page.getByRole('button', { name: 'Add a cohort criterion' }).click();
      await page.getByLabel('Cohort test 1').fill('29463-7');
      await page.getByRole('option', { name: /^29463-7/ }).click();
      await page.getByLabel('Criterion 1 value from').fill('60');
      await page.getByRole('button', { name: 'Add a grouping' }).click();
      await page.getByLabel('Group 1', { exact: true }).click();
      await page.getByRole('option', { name: 'observed_at' }).click();
      await page.getByLabel('Time bucket (group 1)').click();
      await page.getByRole('option', { name: 'year' }).click();
      await page.getByText('among patients who had 29463-7 with a value from 60').waitFor();
      expect(await accessibilityViolations(page)).toEqual([]);
      await page.getByRole('button', { name: 'Run query' }).click();

      await page.getByRole('heading', { name: 'Key points' }).waitFor({ timeout: 90_000 });
      await page.getByRole('heading', { name: 'Result' }).waitFor();
      await page.getByRole('figure', { name: 'patients by observed_at_year' }).waitFor();
      expect(await accessibilityViolations(page)).toEqual([]);
      await screenshot(page, 'query-result-aggregate');
      // An aggregate-only researcher never sees a group of fewer than 11 patients: of the 44
      // years, the 34 of fewer are left out, labels included, and the result says so.
      await page.getByText('34 groups of fewer than 11 patients left out').waitFor();
      await page.getByRole('button', { name: 'Table' }).click();
      await page.getByText('1–10 of 10').waitFor();
      const cells = await page.getByRole('table').locator('tbody td:last-child').allTextContents();
      expect(cells).toHaveLength(10);
      expect(cells.filter((cell) => !(Number(cell) >= 11))).toEqual([]);
      await page.getByRole('button', { name: 'Export CSV' }).click();
      const link = page.getByRole('link', { name: /\.csv$/ });
      const href = await link.getAttribute('href');
      const download = await page.request.get(new URL(href!, server.url).href);
      expect(download.status()).toBe(200);
      expect((await download.text()).split('\n')[0]).toContain('observed_at_year');

      // Saved and shared with the researcher's project.
      await page.getByRole('button', { name: 'Save query' }).click();
      const saveDialog = page.getByRole('dialog');
      await saveDialog.getByLabel('Name').fill('Height of the heavier, by year');
      await saveDialog.getByLabel('Share with').click();
      await page.getByRole('option', { name: 'Lipids 2026' }).click();
      expect(await accessibilityViolations(page)).toEqual([]);
      await saveDialog.getByRole('button', { name: 'Save', exact: true }).click();
      await saveDialog.getByText('shared with lipids-2026').waitFor();
      await saveDialog.getByRole('button', { name: 'Close' }).click();

      // The history runs a query again.
      await page.getByRole('link', { name: 'Queries' }).click();
      await page.getByRole('button', { name: 'Run again' }).click();
      await page.getByRole('heading', { name: 'Key points' }).waitFor();
      await page.getByRole('link', { name: 'Queries' }).click();
      await page.getByRole('button', { name: 'Run again' }).nth(1).waitFor();
      expect(await accessibilityViolations(page)).toEqual([]);

      // The saved query opens in the builder, whose form holds it whole; as histograms now.
      await page.getByRole('tab', { name: 'Saved' }).click();
      await page.getByRole('cell', { name: 'lipids-2026' }).waitFor();
      expect(await accessibilityViolations(page)).toEqual([]);
      await screenshot(page, 'saved-queries');
      await page
        .getByRole('link', { name: 'Open in builder: Height of the heavier, by year' })
        .click();
      await page
        .getByRole('heading', { name: 'Saved query: Height of the heavier, by year' })
        .waitFor();
      await page.getByText('among patients who had 29463-7 with a value from 60').waitFor();
      // Still by year: the total of everyone would now be held back by the release ledger, as it
      // and the years shown before would give away the patients of the years left out.
      await page.getByLabel('Measure 1', { exact: true }).click();
      await page.getByRole('option', { name: 'Distribution of values (histogram)' }).click();
      await page.getByLabel('Bin width (measure 1)').fill('25');
      expect(await accessibilityViolations(page)).toEqual([]);
      await screenshot(page, 'query-builder-histogram');
      await page.getByRole('button', { name: 'Run query' }).click();
      // The release ledger may hold back every year's bins, given what was released before: the
      // chart says so rather than drawing nothing (the histogram itself: researcher-journey).
      await page
        .getByRole('figure', { name: 'Histogram of value' })
        .or(page.getByText('No bin to draw'))
        .waitFor();
      expect(await accessibilityViolations(page)).toEqual([]);

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in to medlake' }).waitFor();
      await page.context().close();
    },
  );

  it('shows the API reference, signed in only, under the content security policy', async () => {
    const page = await newPage();
    const anonymous = await page.goto(`${server.url}/api/docs/json`);
    expect(anonymous?.status()).toBe(401);
    await page.goto(server.url);
    await page.getByLabel('E-mail').fill('rita@example.org');
    await page.getByLabel('Password').fill(newPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Catalog' }).waitFor();
    const refused: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') refused.push(message.text());
    });
    await page.goto(`${server.url}/api/docs`);
    await page.getByText('medlake API').first().waitFor();
    expect(refused).toEqual([]);
    await page.context().close();
  });

  it('works in a narrow window too', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 800 } });
    const page = await context.newPage();
    await page.goto(server.url);
    await page.getByRole('heading', { name: 'Sign in to medlake' }).waitFor();
    const overflows = () => overflowsWindow(page);
    expect(await overflows()).toBe(false);

    // The researcher's pages fit too: nothing wider than the window but a table's own scroll.
    await page.getByLabel('E-mail').fill('rita@example.org');
    await page.getByLabel('Password').fill(newPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Catalog' }).waitFor();
    expect(await overflows()).toBe(false);
    for (const [path, heading] of [
      ['/queries/new', 'New query'],
      ['/queries', 'Queries'],
    ] as const) {
      await page.goto(`${server.url}${path}`);
      await page.getByRole('heading', { level: 1, name: heading }).waitFor();
      if (path === '/queries/new') await page.getByRole('button', { name: 'Run query' }).waitFor();
      expect(await overflows(), path).toBe(false);
      expect(await accessibilityViolations(page)).toEqual([]);
    }
    await screenshot(page, 'narrow-queries');
    await context.close();
  });
});
