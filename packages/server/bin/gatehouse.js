#!/usr/bin/env node
// Committed shim so the bin exists (and is executable) before `npm install` builds dist/.
import '../dist/cli/main.js';
