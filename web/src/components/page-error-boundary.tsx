import { Alert, AlertTitle, Button } from '@mui/material';
import { Component, type ReactNode } from 'react';

/**
 * Whether an error is a page's code failing to load: the server was rebuilt while this tab
 * was open and the old build's files are gone, or the network dropped.
 */
function isLoadFailure(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /dynamically imported module|Importing a module script failed|error loading dynamically|Failed to fetch/i.test(
    message,
  );
}

/**
 * Catches what would otherwise leave the page white: a page whose code cannot be loaded (a new
 * build of medlake was installed while the tab was open) or that fails as it renders. It says
 * what happened and offers a reload; `resetKey` (the path) clears it when the user moves on.
 */
export class PageErrorBoundary extends Component<
  { resetKey: string; children: ReactNode },
  { error: unknown; resetKey: string }
> {
  override state = { error: undefined as unknown, resetKey: this.props.resetKey };

  static getDerivedStateFromError(error: unknown) {
    return { error };
  }

  static getDerivedStateFromProps(
    props: { resetKey: string },
    state: { error: unknown; resetKey: string },
  ) {
    return props.resetKey === state.resetKey
      ? null
      : { error: undefined, resetKey: props.resetKey };
  }

  override render() {
    if (this.state.error === undefined) return this.props.children;
    const updated = isLoadFailure(this.state.error);
    return (
      <Alert
        severity={updated ? 'info' : 'error'}
        action={
          <Button color="inherit" onClick={() => window.location.reload()}>
            Reload
          </Button>
        }
      >
        <AlertTitle>
          {updated ? 'medlake was updated while this page was open' : 'This page failed'}
        </AlertTitle>
        {updated
          ? 'Reload to get the new version; what you saved is kept.'
          : 'Something went wrong showing this page. Reload to try again; if it happens again, tell an administrator what you did.'}
      </Alert>
    );
  }
}
