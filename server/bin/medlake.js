#!/usr/bin/env node
// The medlake CLI. The code is TypeScript run by Node.js 24's type stripping, so refuse older
// Node.js versions with a clear message instead of a syntax error.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(
    `medlake needs Node.js 24 or newer; this is ${process.version}. ` +
      'Run it through npm (npm start, npx medlake …), which uses the Node.js 24 that npm ci installed.',
  );
  process.exit(1);
}
await import('../src/cli/main.ts');
