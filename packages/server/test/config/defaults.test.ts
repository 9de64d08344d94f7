import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, options } from '../../src/config/defaults.js';

const key = randomBytes(32).toString('base64url');

describe('configuration', () => {
  it('has working defaults for development', () => {
    const config = loadConfig({});
    assert.equal(config.port, 4455);
    assert.equal(config.publicUrl, 'http://localhost:4455');
    assert.equal(config.dataDir, './data');
    assert.equal(config.signingAlg, 'ES256');
    assert.equal(config.accessTokenTtl, 600);
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.production, false);
  });

  it('derives the public URL from the port and strips a trailing slash', () => {
    assert.equal(loadConfig({ GATEHOUSE_PORT: '8080' }).publicUrl, 'http://localhost:8080');
    assert.equal(loadConfig({ GATEHOUSE_PUBLIC_URL: 'https://id.example.com/' }).publicUrl, 'https://id.example.com');
  });

  const bad: [Record<string, string>, string][] = [
    [{ GATEHOUSE_PORT: 'eighty' }, 'GATEHOUSE_PORT'],
    [{ GATEHOUSE_PORT: '70000' }, 'GATEHOUSE_PORT'],
    [{ GATEHOUSE_PUBLIC_URL: 'id.example.com' }, 'GATEHOUSE_PUBLIC_URL'],
    [{ GATEHOUSE_PUBLIC_URL: 'ftp://id.example.com' }, 'GATEHOUSE_PUBLIC_URL'],
    [{ DATABASE_URL: 'mysql://db/x' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'http://cache' }, 'REDIS_URL'],
    [{ GATEHOUSE_MASTER_KEY: 'too-short' }, 'GATEHOUSE_MASTER_KEY'],
    [{ GATEHOUSE_SIGNING_ALG: 'HS256' }, 'GATEHOUSE_SIGNING_ALG'],
    [{ GATEHOUSE_SIGNING_ALG: 'none' }, 'GATEHOUSE_SIGNING_ALG'],
    [{ GATEHOUSE_ACCESS_TOKEN_TTL: '5' }, 'GATEHOUSE_ACCESS_TOKEN_TTL'],
    [{ GATEHOUSE_TRUST_PROXY: 'maybe' }, 'GATEHOUSE_TRUST_PROXY'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV'],
  ];
  for (const [env, variable] of bad) {
    it(`rejects ${JSON.stringify(env)} naming ${variable} and the fix`, () => {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => error instanceof ConfigError && error.variable === variable && error.message.startsWith(variable) && /Fix: \S/.test(error.message),
      );
    });
  }

  it('accepts a master key as base64url or hex', () => {
    assert.equal(loadConfig({ GATEHOUSE_MASTER_KEY: key }).masterKey?.length, 32);
    assert.equal(loadConfig({ GATEHOUSE_MASTER_KEY: randomBytes(32).toString('hex') }).masterKey?.length, 32);
  });

  it('refuses a master key nobody generated: zeros, a repeated byte or pattern, a counting sequence', () => {
    const degenerate = [
      Buffer.alloc(32),
      Buffer.alloc(32, 0xab),
      Buffer.from('abcd'.repeat(16), 'hex'),
      Buffer.from('0123456789abcdef'.repeat(4), 'hex'),
      Buffer.from(Array.from({ length: 32 }, (_, i) => i)),
      Buffer.from(Array.from({ length: 32 }, (_, i) => (250 + 3 * i) % 256)),
    ];
    for (const bytes of degenerate) {
      for (const text of [bytes.toString('base64'), bytes.toString('hex')]) {
        assert.throws(() => loadConfig({ GATEHOUSE_MASTER_KEY: text }), (e: ConfigError) => e.variable === 'GATEHOUSE_MASTER_KEY' && /not random/.test(e.message), text);
      }
    }
  });

  it('refuses a public URL with a query, a fragment or credentials (issuers are built from it)', () => {
    for (const url of ['https://id.example.com/?tenant=x', 'https://id.example.com#top', 'https://id.example.com/#', 'https://id.example.com?', 'https://user:pw@id.example.com']) {
      assert.throws(() => loadConfig({ GATEHOUSE_PUBLIC_URL: url }), (e: ConfigError) => e.variable === 'GATEHOUSE_PUBLIC_URL', url);
    }
    assert.equal(loadConfig({ GATEHOUSE_PUBLIC_URL: 'https://example.com/id/' }).publicUrl, 'https://example.com/id');
  });

  it('reads GATEHOUSE_TRUST_PROXY as false, a hop count or proxy addresses', () => {
    assert.equal(loadConfig({}).trustProxy, false);
    assert.deepEqual(loadConfig({ GATEHOUSE_TRUST_PROXY: 'true' }).trustProxy, { hops: 1 });
    assert.deepEqual(loadConfig({ GATEHOUSE_TRUST_PROXY: '2' }).trustProxy, { hops: 2 });
    assert.deepEqual(loadConfig({ GATEHOUSE_TRUST_PROXY: '10.0.0.0/8,::1' }).trustProxy, { addresses: ['10.0.0.0/8', '::1'] });
  });

  describe('in production', () => {
    it('refuses an http public URL other than localhost', () => {
      assert.throws(() => loadConfig({ NODE_ENV: 'production', GATEHOUSE_MASTER_KEY: key, GATEHOUSE_PUBLIC_URL: 'http://id.example.com' }), (e: ConfigError) => e.variable === 'GATEHOUSE_PUBLIC_URL');
    });
    it('refuses to start without a master key', () => {
      assert.throws(() => loadConfig({ NODE_ENV: 'production', GATEHOUSE_PUBLIC_URL: 'https://id.example.com' }), (e: ConfigError) => e.variable === 'GATEHOUSE_MASTER_KEY');
    });
    it('allows http on localhost and https elsewhere', () => {
      assert.equal(loadConfig({ NODE_ENV: 'production', GATEHOUSE_MASTER_KEY: key }).production, true);
      assert.equal(loadConfig({ NODE_ENV: 'production', GATEHOUSE_MASTER_KEY: key, GATEHOUSE_PUBLIC_URL: 'https://id.example.com' }).publicUrl, 'https://id.example.com');
    });
  });

  it('documents every option in docs/configuration.md', () => {
    const doc = readFileSync(new URL('../../../../docs/configuration.md', import.meta.url), 'utf8');
    for (const spec of Object.values(options)) {
      assert.ok(doc.includes(`\`${spec.env}\``), `${spec.env} is missing from docs/configuration.md (run npm run docs:generate)`);
      assert.ok(spec.description.length > 10 && spec.recommendation.length > 5, spec.env);
    }
  });
});
