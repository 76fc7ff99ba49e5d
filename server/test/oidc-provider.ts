import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export type TestPerson = {
  email: string;
  emailVerified: boolean;
  name: string;
  groups: string[];
};

export type TestOidcProvider = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Who signs in at the provider's login page next (the page itself is skipped). */
  signInAs(accountId: string, person: TestPerson): void;
  /**
   * Plays the browser at the provider: follows its redirects, with its cookies, from the
   * authorization URL until it sends the browser back to medlake; returns that URL.
   */
  authorize(authorizationUrl: string): Promise<URL>;
  close(): Promise<void>;
};

/**
 * A real OpenID Connect provider (oidc-provider from npm) on 127.0.0.1, with one client for
 * medlake. Its login and consent step is answered by the test's chosen person instead of a
 * form; everything else (discovery, PKCE, codes, ID tokens, userinfo) is the provider's own.
 */
export async function startTestOidcProvider(redirectUri: string): Promise<TestOidcProvider> {
  const people = new Map<string, TestPerson>();
  let next: string | undefined;
  const clientId = 'medlake';
  const clientSecret = 'a-test-client-secret-of-some-length';

  const server: Server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // Its own signing key, made for this run.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const provider = new Provider(issuer, {
    jwks: {
      keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test', alg: 'RS256', use: 'sig' }],
    },
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'groups'],
    },
    findAccount: (_ctx, id) => {
      const person = people.get(id);
      return person
        ? {
            accountId: id,
            claims: () => ({
              sub: id,
              email: person.email,
              email_verified: person.emailVerified,
              name: person.name,
              groups: person.groups,
            }),
          }
        : undefined;
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    cookies: { keys: ['medlake-test-cookie-key'] },
  });
  const handle = provider.callback();

  server.on('request', (request, response) => {
    if (!request.url?.startsWith('/interaction/')) return void handle(request, response);
    void (async () => {
      const details = await provider.interactionDetails(request, response);
      const accountId = next;
      if (!accountId) throw new Error('nobody was chosen to sign in');
      const grant = new provider.Grant({
        accountId,
        clientId: String(details.params.client_id),
      });
      grant.addOIDCScope(String(details.params.scope));
      const grantId = await grant.save();
      await provider.interactionFinished(
        request,
        response,
        { login: { accountId }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
    })().catch((error: unknown) => {
      response.statusCode = 500;
      response.end(String(error));
    });
  });

  return {
    issuer,
    clientId,
    clientSecret,
    signInAs(accountId, person) {
      people.set(accountId, person);
      next = accountId;
    },
    async authorize(authorizationUrl) {
      const jar = new Map<string, string>();
      let url = new URL(authorizationUrl);
      for (let hop = 0; hop < 10; hop += 1) {
        const response = await fetch(url, {
          redirect: 'manual',
          headers: { cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; ') },
        });
        for (const cookie of response.headers.getSetCookie()) {
          const [pair = ''] = cookie.split(';');
          const at = pair.indexOf('=');
          jar.set(pair.slice(0, at), pair.slice(at + 1));
        }
        const location = response.headers.get('location');
        if (!location)
          throw new Error(`the provider answered ${response.status} without a redirect`);
        url = new URL(location, url);
        if (url.href.startsWith(redirectUri)) return url;
      }
      throw new Error('too many redirects at the provider');
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
