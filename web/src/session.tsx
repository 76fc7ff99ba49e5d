import { sessionViewSchema, type SessionView } from '@medlake/shared';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, useContext, type ReactNode } from 'react';
import { api, ApiError, setCsrfToken } from './api.ts';

type SessionState = {
  /** Undefined while it loads; null when nobody is signed in. */
  session: SessionView | null | undefined;
  /** Takes a new session (after sign-in or a password change) without asking the server. */
  adopt(session: SessionView): void;
  signOut(): Promise<void>;
};

const SessionContext = createContext<SessionState | undefined>(undefined);

/** The signed-in user for the whole app, read once from the server and kept up to date. */
export function SessionProvider({ children }: { children: ReactNode }) {
  const client = useQueryClient();
  const query = useQuery({
    queryKey: ['session'],
    queryFn: async () => {
      try {
        const session = await api(sessionViewSchema, 'GET', '/api/v1/session');
        setCsrfToken(session.csrfToken);
        return session;
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) return null;
        throw error;
      }
    },
    staleTime: 60_000,
    retry: false,
  });
  const adopt = (session: SessionView) => {
    setCsrfToken(session.csrfToken);
    client.setQueryData(['session'], session);
  };
  const signOut = async () => {
    await api(sessionViewSchema.nullable(), 'DELETE', '/api/v1/session').catch(() => null);
    setCsrfToken(null);
    client.setQueryData(['session'], null);
    // Nothing the signed-out user read stays in memory.
    client.removeQueries({ predicate: (query) => query.queryKey[0] !== 'session' });
  };
  return (
    <SessionContext.Provider value={{ session: query.data, adopt, signOut }}>
      {children}
    </SessionContext.Provider>
  );
}

export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error('useSession outside SessionProvider');
  return state;
}
