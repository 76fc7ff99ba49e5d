import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, logger: createLogger('info', stream) };
}

describe('logger', () => {
  it('redacts credentials in request and response headers', () => {
    const { lines, logger } = capture();
    logger.info({
      req: { headers: { authorization: 'Bearer abc123', cookie: 'sid=xyz789' } },
      res: { headers: { 'set-cookie': 'sid=xyz789' } },
    });
    const line = lines.join('');
    expect(line).not.toContain('abc123');
    expect(line).not.toContain('xyz789');
    expect(line).toContain('[redacted]');
  });

  it('keeps a download link’s signature out of logged URLs', () => {
    const { lines, logger } = capture();
    logger.info({
      req: { method: 'GET', url: '/api/v1/downloads/x?user=u&expires=1&signature=0badc0de' },
    });
    const line = lines.join('');
    expect(line).not.toContain('0badc0de');
    expect(line).toContain('expires=1&signature=[redacted]');
  });

  it('keeps the sign-on callback’s code and state out of logged URLs', () => {
    const { lines, logger } = capture();
    logger.info({ req: { method: 'GET', url: '/api/v1/oidc/callback?code=c0dec0de&state=5ta7e' } });
    const line = lines.join('');
    expect(line).not.toContain('c0dec0de');
    expect(line).not.toContain('5ta7e');
  });

  it('redacts patient fields at any of the first three levels', () => {
    const { lines, logger } = capture();
    logger.info({
      ssn: '999-25-1225',
      row: { mrn: '53a96042', first: 'Dakota806', zip: '93514' },
      upload: { rows: { last: 'Bernhard322', birthdate: '1938-05-28' } },
      code: '1742-6',
    });
    const line = lines.join('');
    for (const value of ['999-25-1225', '53a96042', 'Dakota806', '93514', 'Bernhard322', '1938']) {
      expect(line).not.toContain(value);
    }
    // Fields that do not identify anyone pass through.
    expect(line).toContain('1742-6');
  });
});
