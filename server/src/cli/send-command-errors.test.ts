import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.ts';
import { errorOf } from './send-command.ts';

describe("medlake send and the server's errors", () => {
  it('keeps a known code with its status, so that it stops retrying a refusal', () => {
    const error = errorOf(409, { error: { code: 'upload_closed', message: 'The upload is done' } });
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'upload_closed', status: 409 });
  });

  it("keeps the words of a code from another server version, and says a body is not the API's", () => {
    expect(
      errorOf(409, { error: { code: 'future_cause', message: 'Not in this state' } }).message,
    ).toBe('the server answered 409 future_cause: Not in this state');
    expect(errorOf(502, '<html>Bad Gateway</html>').message).toBe('the server answered 502');
  });
});
