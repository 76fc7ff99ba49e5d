import type { SessionNeed, SessionView, UserView } from '@medlake/shared';
import type { Session } from '../../catalog/sessions-repository.ts';
import type { User } from '../../catalog/users-repository.ts';

export function presentUser(user: User): UserView {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    totpEnabled: user.totpEnabled,
    disabled: user.disabledAt !== null,
  };
}

export function presentSession(
  user: User,
  session: Session | null,
  needs: readonly SessionNeed[],
): SessionView {
  return {
    user: presentUser(user),
    csrfToken: session?.csrfToken ?? null,
    needs: [...needs],
    expiresAt: session?.expiresAt.toISOString() ?? null,
    method: session?.method ?? 'token',
  };
}
