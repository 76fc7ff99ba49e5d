import { querySpecSchema } from '@medlake/shared';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../catalog/datasets-repository.ts';
import type { User } from '../catalog/users-repository.ts';
import { rememberSubmitChecks, takeFreshSubmitChecks } from './fresh-checks.ts';

const checks = {
  user: { id: 'u' } as User,
  dataset: { id: 'd' } as Dataset,
  access: { level: 'aggregate' as const, hospitals: null, holder: 'user:u1' },
};

describe('checks a submit hands to the worker', () => {
  it('are used by a job that starts at once, and only once', () => {
    const spec = querySpecSchema.parse({ dataset: 'lab-results', measures: [{ fn: 'patients' }] });
    rememberSubmitChecks('job-1', { ...checks, spec }, 1_000);
    const taken = takeFreshSubmitChecks('job-1', 1_400);
    expect(taken).toMatchObject({ access: checks.access });
    // The spec as the submit parsed it: the run does not parse it again.
    expect(taken?.spec).toBe(spec);
    expect(takeFreshSubmitChecks('job-1', 1_400)).toBeUndefined();
  });

  it('are not used by a job that waited: it checks the grants again', () => {
    rememberSubmitChecks('job-2', checks, 1_000);
    expect(takeFreshSubmitChecks('job-2', 2_001)).toBeUndefined();
  });

  it('are dropped when no worker of this process takes the job', () => {
    rememberSubmitChecks('job-3', checks, 1_000);
    rememberSubmitChecks('job-4', checks, 5_000);
    expect(takeFreshSubmitChecks('job-3', 1_100)).toBeUndefined();
    expect(takeFreshSubmitChecks('job-4', 5_100)).toBeDefined();
  });
});
