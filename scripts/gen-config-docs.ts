// Writes docs/configuration.md from the one defaults module, so the docs cannot drift.
import { writeFileSync } from 'node:fs';
import { options, type OptionSpec } from '../packages/server/src/config/defaults.js';

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
\`npm run docs:config\`; a test fails when an option is missing here.

| variable | what it does | default | example | recommendation |
| --- | --- | --- | --- | --- |
${rows.join('\n')}
`;

writeFileSync(new URL('../docs/configuration.md', import.meta.url), doc);
console.log(`docs/configuration.md: ${rows.length} options`);
