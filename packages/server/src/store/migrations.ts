import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

/**
 * One migration set for SQLite and PostgreSQL. Kysely's migrator records what ran in
 * `kysely_migration` and runs pending ones in one transaction (both dialects have
 * transactional DDL), so start-up can call it every time.
 */
export type Dialect = 'sqlite' | 'postgres';

const migrations = (dialect: Dialect): Record<string, Migration> => ({
  '0001_foundation': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('gh_revision')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('value', 'bigint', (c) => c.notNull())
        .execute();
      await sql`insert into gh_revision (id, value) values (1, 0)`.execute(db);
      await db.schema
        .createTable('gh_changes')
        .addColumn('revision', 'bigint', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('tenants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('signing_keys')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
        .addColumn('kid', 'text', (c) => c.notNull())
        .addColumn('alg', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('public_jwk', 'text', (c) => c.notNull())
        .addColumn('private_jwk_enc', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('deactivated_at', 'bigint')
        .addColumn('retire_at', 'bigint')
        .addPrimaryKeyConstraint('signing_keys_pk', ['tenant_id', 'kid'])
        .execute();

      await db.schema
        .createTable('apis')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('identifier', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('access_token_ttl', 'integer', (c) => c.notNull())
        .addColumn('builtin', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('apis_pk', ['tenant_id', 'id'])
        .addUniqueConstraint('apis_identifier_uq', ['tenant_id', 'identifier'])
        .execute();

      await db.schema
        .createTable('clients')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('grant_types', 'text', (c) => c.notNull())
        .addColumn('redirect_uris', 'text', (c) => c.notNull())
        .addColumn('api_scopes', 'text', (c) => c.notNull())
        .addColumn('auth_method', 'text', (c) => c.notNull())
        .addColumn('builtin', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('clients_pk', ['tenant_id', 'client_id'])
        .execute();

      await db.schema
        .createTable('client_secrets')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addPrimaryKeyConstraint('client_secrets_pk', ['tenant_id', 'client_id', 'id'])
        .addForeignKeyConstraint('client_secrets_client_fk', ['tenant_id', 'client_id'], 'clients', ['tenant_id', 'client_id'], (fk) => fk.onDelete('cascade'))
        .execute();

      await db.schema
        .createTable('oidc_payloads')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('model', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('grant_id', 'text')
        .addColumn('user_code', 'text')
        .addColumn('uid', 'text')
        .addColumn('expires_at', 'bigint')
        .addColumn('consumed_at', 'bigint')
        .addPrimaryKeyConstraint('oidc_payloads_pk', ['tenant_id', 'model', 'id'])
        .execute();
      await db.schema.createIndex('oidc_payloads_grant_idx').on('oidc_payloads').columns(['tenant_id', 'grant_id']).execute();
      await db.schema.createIndex('oidc_payloads_uid_idx').on('oidc_payloads').columns(['tenant_id', 'model', 'uid']).execute();
      await db.schema.createIndex('oidc_payloads_user_code_idx').on('oidc_payloads').columns(['tenant_id', 'model', 'user_code']).execute();
      await db.schema.createIndex('oidc_payloads_expires_idx').on('oidc_payloads').column('expires_at').execute();

      await db.schema
        .createTable('revoked_tokens')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('jti', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('revoked_tokens_pk', ['tenant_id', 'jti'])
        .execute();

      await db.schema
        .createTable('audit_events')
        .addColumn('id', dialect === 'postgres' ? 'bigint' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target', 'text')
        .addColumn('result', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text')
        .addColumn('ip', 'text')
        .addColumn('details', 'text')
        .execute();
      await db.schema.createIndex('audit_events_tenant_time_idx').on('audit_events').columns(['tenant_id', 'time']).execute();
      await db.schema.createIndex('audit_events_action_idx').on('audit_events').columns(['tenant_id', 'action', 'time']).execute();
    },
  },
  '0002_authz': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('authz_schemas')
        .addColumn('tenant_id', 'text', (c) => c.primaryKey().references('tenants.id').onDelete('cascade'))
        .addColumn('text', 'text', (c) => c.notNull())
        .addColumn('revision', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('relationships')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('resource_type', 'text', (c) => c.notNull())
        .addColumn('resource_id', 'text', (c) => c.notNull())
        .addColumn('relation', 'text', (c) => c.notNull())
        .addColumn('subject_type', 'text', (c) => c.notNull())
        .addColumn('subject_id', 'text', (c) => c.notNull())
        // '...' for a direct subject, so the column can be part of the key.
        .addColumn('subject_relation', 'text', (c) => c.notNull())
        .addColumn('caveat_name', 'text')
        .addColumn('caveat_context', 'text')
        .addColumn('expires_at', 'bigint')
        .addColumn('revision', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('relationships_pk', ['tenant_id', 'resource_type', 'resource_id', 'relation', 'subject_type', 'subject_id', 'subject_relation'])
        .execute();
      await db.schema.createIndex('relationships_subject_idx').on('relationships').columns(['tenant_id', 'subject_type', 'subject_id', 'subject_relation']).execute();
      await db.schema.createIndex('relationships_shape_idx').on('relationships').columns(['tenant_id', 'resource_type', 'relation', 'subject_type']).execute();
    },
  },
  '0003_authz_policies': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('authz_policies')
        .addColumn('tenant_id', 'text', (c) => c.primaryKey().references('tenants.id').onDelete('cascade'))
        .addColumn('text', 'text', (c) => c.notNull())
        .addColumn('revision', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '0004_sign_in': {
    async up(db: Kysely<unknown>) {
      // Applications people sign in to: logout URIs, consent, refresh token lifetimes.
      await db.schema.alterTable('clients').addColumn('post_logout_redirect_uris', 'text', (c) => c.notNull().defaultTo('[]')).execute();
      await db.schema.alterTable('clients').addColumn('first_party', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.alterTable('clients').addColumn('backchannel_logout_uri', 'text').execute();
      await db.schema.alterTable('clients').addColumn('refresh_idle_ttl', 'integer').execute();
      await db.schema.alterTable('clients').addColumn('refresh_absolute_ttl', 'integer').execute();
      // Sessions, grants, codes and refresh tokens of a user, found by user to end them all.
      await db.schema.alterTable('oidc_payloads').addColumn('account_id', 'text').execute();
      await db.schema.createIndex('oidc_payloads_account_idx').on('oidc_payloads').columns(['tenant_id', 'account_id']).execute();
    },
  },
  '0005_users': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('users')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('email', 'text', (c) => c.notNull())
        // Byte-wise comparison on PostgreSQL too (SQLite's default): the key is normalised
        // already, and a locale collation would order and match prefixes differently per server.
        .addColumn('email_key', 'text', (c) => (dialect === 'postgres' ? c.notNull().modifyEnd(sql`collate "C"`) : c.notNull()))
        .addColumn('email_verified', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('name', 'text')
        .addColumn('given_name', 'text')
        .addColumn('family_name', 'text')
        .addColumn('picture', 'text')
        .addColumn('locale', 'text')
        .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('password_hash', 'text')
        .addColumn('password_changed_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('users_pk', ['tenant_id', 'id'])
        .execute();
      // One account per address and tenant, whatever its case or Unicode form.
      await db.schema.createIndex('users_email_key_uq').on('users').columns(['tenant_id', 'email_key']).unique().execute();
    },
  },
  '0006_tenant_logo': {
    async up(db: Kysely<unknown>) {
      // The logo pages show, kept here and served from our own origin (base64: one type on both dialects).
      await db.schema.alterTable('tenants').addColumn('logo_type', 'text').execute();
      await db.schema.alterTable('tenants').addColumn('logo_data', 'text').execute();
    },
  },
  '0007_node_urls': {
    async up(db: Kysely<unknown>) {
      // The public URL each node serves, so a node that disagrees with the others says so at start-up.
      await db.schema
        .createTable('gh_node_urls')
        .addColumn('public_url', 'text', (c) => c.primaryKey())
        .addColumn('seen_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '0008_client_tokens_valid_after': {
    async up(db: Kysely<unknown>) {
      // Access tokens of a client issued before this time (epoch ms) are refused by the admin
      // guard: a secret rotated without grace, or an explicit revoke-tokens, ends them.
      await db.schema.alterTable('clients').addColumn('tokens_valid_after', 'bigint').execute();
    },
  },
  '0009_api_resource_servers': {
    async up(db: Kysely<unknown>) {
      // RFC 7662 §2.1: the clients that are an API's resource servers may introspect its tokens.
      await db.schema.alterTable('apis').addColumn('resource_servers', 'text', (c) => c.notNull().defaultTo('[]')).execute();
    },
  },
  '0010_issued_tokens': {
    async up(db: Kysely<unknown>) {
      // JWT access tokens issued under a grant, kept until they expire: revoking the grant (or
      // every grant of the account) moves them to revoked_tokens, which introspection reads.
      await db.schema
        .createTable('issued_tokens')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('jti', 'text', (c) => c.notNull())
        .addColumn('grant_id', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text')
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('issued_tokens_pk', ['tenant_id', 'jti'])
        .execute();
      await db.schema.createIndex('issued_tokens_grant_idx').on('issued_tokens').columns(['tenant_id', 'grant_id']).execute();
      await db.schema.createIndex('issued_tokens_account_idx').on('issued_tokens').columns(['tenant_id', 'account_id']).execute();
      await db.schema.createIndex('issued_tokens_expires_idx').on('issued_tokens').column('expires_at').execute();
    },
  },
  '0011_client_id_token_alg': {
    async up(db: Kysely<unknown>) {
      // The client's registered id_token_signed_response_alg; null: RS256 (OIDC Registration §2).
      await db.schema.alterTable('clients').addColumn('id_token_alg', 'text').execute();
    },
  },
});

export async function migrate(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(dialect) };
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`database migration ${failed} failed`, { cause: error });
  }
}
