import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/accounts/passwords.ts';
import { credentialsRepository } from '../src/catalog/credentials-repository.ts';
import { assignSteward } from '../src/use-cases/accounts/manage-users.ts';
import { addUser } from '../src/use-cases/manage-access.ts';
import { launchBrowser } from '../test/browser.ts';
import { testActor } from '../test/helper.ts';
import { prepareDataset, synthea } from '../test/ingest-helpers.ts';
import { startWebServer, type WebServer } from '../test/web-server.ts';

const password = 'copper meadow under nine lanterns';

describe('a steward uploads from the browser to a deployment on S3', () => {
  let server: WebServer;
  let browser: Browser;

  beforeAll(async () => {
    server = await startWebServer({}, { storage: 's3' });
    await prepareDataset(server.platform, 'synthea-observations');
    const steward = await addUser(server.platform, testActor, {
      email: 'steward@example.org',
      name: 'steward',
      role: 'steward',
    });
    await credentialsRepository(server.platform.catalog.db).setPassword(
      steward.id,
      await hashPassword(password),
      false,
      new Date(),
    );
    await assignSteward(server.platform, testActor, {
      email: 'steward@example.org',
      hospitalId: 'synthea',
      assigned: true,
    });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('sends the file straight into the bucket, never through the server, and it is published', async () => {
    const page = await (await browser.newContext()).newPage();
    const bucketHost = new URL(server.platform.env.MEDLAKE_S3_ENDPOINT!).host;
    const puts: string[] = [];
    page.on('request', (request) => {
      if (request.method() === 'PUT') puts.push(new URL(request.url()).host);
    });

    await page.goto(server.url);
    await page.getByLabel('E-mail').fill('steward@example.org');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: 'Uploads' }).click();
    await page.getByRole('textbox', { name: /^Month/ }).fill('2020-12');
    await page.getByLabel('CSV file').setInputFiles(synthea('2020-12'));
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.getByText('Published: 1,052 rows').waitFor();

    // The file's one part went to the bucket, across origins, with its presigned URL.
    expect(puts).toEqual([bucketHost]);
    expect(await server.platform.store.list('landing/')).toEqual([]);
    await page.context().close();
  });
});
