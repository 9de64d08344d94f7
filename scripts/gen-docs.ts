// Writes docs/configuration.md and docs/errors.md from the defaults module and the error
// catalogues, so the docs cannot drift from the code.
import { writeFileSync } from 'node:fs';
import { options, type OptionSpec } from '../packages/server/src/config/defaults.js';
import { errorCatalogues } from '../packages/server/src/error-catalogues.js';

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const rows = (Object.values(options) as OptionSpec<unknown>[]).map((spec) => {
  const fallback = spec.defaultText ?? (spec.default === undefined ? '(unset)' : typeof spec.default === 'function' ? '(computed)' : String(spec.default));
  return `| \`${spec.env}\` | ${cell(spec.description)} | \`${cell(fallback)}\` | \`${cell(spec.example)}\` | ${cell(spec.recommendation)} |`;
});

const doc = `# Configuration

Gatehouse is configured with environment variables only; the server and the CLI read the
same ones. Every value is validated at start-up: a bad value stops the process with a
message naming the variable and the fix. With \`NODE_ENV=production\`, Gatehouse refuses
to start on an \`http://\` public URL (other than localhost) or without
\`GATEHOUSE_MASTER_KEY\`.

This page is generated from \`packages/server/src/config/defaults.ts\` by
\`npm run docs:generate\`; a test fails when an option is missing here.

| variable | what it does | default | example | recommendation |
| --- | --- | --- | --- | --- |
${rows.join('\n')}
`;

writeFileSync(new URL('../docs/configuration.md', import.meta.url), doc);
console.log(`docs/configuration.md: ${rows.length} options`);

const errorRows = Object.entries(errorCatalogues).flatMap(([module, catalogue]) =>
  Object.entries(catalogue).map(([code, spec]) => `| \`${code}\` | ${module} | ${spec.status} | ${cell(spec.message)} |`),
);
writeFileSync(
  new URL('../docs/errors.md', import.meta.url),
  `# Admin API and CLI errors

Every error of the admin API is a JSON body \`{ code, message, details }\` with the HTTP
status below; match on \`code\`, never on the message. The CLI prints the message (or,
with \`--json\`, \`{ code, message }\` on stderr) and exits 1. OAuth endpoints answer with
RFC 6749 errors (\`invalid_request\`, \`invalid_client\`, …) instead.

Generated from the catalogues by \`npm run docs:generate\`.

| code | module | status | message |
| --- | --- | --- | --- |
${errorRows.join('\n')}
`,
);
console.log(`docs/errors.md: ${errorRows.length} codes`);
