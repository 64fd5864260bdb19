#!/usr/bin/env node
'use strict';
// Runs the compiled CLI (built by `npm run build`, which `npm ci` runs through `prepare`).
require('../dist/cli/meshctl.js')
  .meshctl()
  .parseAsync(process.argv)
  .catch((err) => {
    process.stderr.write(`meshctl: ${err && err.message ? err.message : err}\n`);
    process.exit(1);
  });
