import { sql, type Selectable } from 'kysely';
import type { UserChanges, UserRecord, UserStore } from '../identity/store-types.js';
import type { DatabaseHandle, Db } from './database.js';
import { preparedQuery } from './prepared.js';
import { bumpRevision } from './revisions.js';
import type { Database } from './schema.js';

type Row = Selectable<Database['users']>;

const toUser = (row: Row): UserRecord => ({
  tenantId: row.tenant_id,
  id: row.id,
  email: row.email,
  emailKey: row.email_key,
  emailVerified: Number(row.email_verified) === 1,
  name: row.name,
  givenName: row.given_name,
  familyName: row.family_name,
  picture: row.picture,
  locale: row.locale,
  disabled: Number(row.disabled) === 1,
  passwordHash: row.password_hash,
  passwordChangedAt: row.password_changed_at === null ? null : Number(row.password_changed_at),
  createdAt: Number(row.created_at),
  updatedAt: Number(row.updated_at),
});

/** The columns of the fields a change names; absent fields stay as they are. */
function columnsOf(changes: UserChanges): Partial<Row> {
  const columns: Partial<Row> = {};
  if (changes.updatedAt !== undefined) columns.updated_at = changes.updatedAt;
  if (changes.email !== undefined) columns.email = changes.email;
  if (changes.emailKey !== undefined) columns.email_key = changes.emailKey;
  if (changes.emailVerified !== undefined) columns.email_verified = changes.emailVerified ? 1 : 0;
  if (changes.name !== undefined) columns.name = changes.name;
  if (changes.givenName !== undefined) columns.given_name = changes.givenName;
  if (changes.familyName !== undefined) columns.family_name = changes.familyName;
  if (changes.picture !== undefined) columns.picture = changes.picture;
  if (changes.locale !== undefined) columns.locale = changes.locale;
  if (changes.disabled !== undefined) columns.disabled = changes.disabled ? 1 : 0;
  if (changes.passwordHash !== undefined) columns.password_hash = changes.passwordHash;
  if (changes.passwordChangedAt !== undefined) columns.password_changed_at = changes.passwordChangedAt;
  return columns;
}

const isUniqueViolation = (error: unknown) => {
  const code = (error as { code?: string }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
};

/** `%`, `_` and the escape character itself match literally in a LIKE prefix. */
const likePrefix = (prefix: string) => `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Kysely implementation of the user store (both dialects). Every write bumps the tenant's
 * revision with kind `users`, so caches of users on any node can follow the change feed.
 */
export function createIdentityRepository({ db, dialect }: Pick<DatabaseHandle, 'db' | 'dialect'>): UserStore {
  const tx = <T>(work: (trx: Db) => Promise<T>) => db.transaction().execute(work);
  const bump = (trx: Db, tenantId: string) => bumpRevision(trx, tenantId, 'users', dialect);
  const byId = (q: Db, tenantId: string, id: string) => q.selectFrom('users').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id);
  // Each sign-in and each use of a session or token reads its user: compiled once (see preparedQuery).
  const findById = preparedQuery(db, (v: { tenantId: string; id: string }) => byId(db, v.tenantId, v.id));
  const findByEmailKey = preparedQuery(db, (v: { tenantId: string; emailKey: string }) =>
    db.selectFrom('users').selectAll().where('tenant_id', '=', v.tenantId).where('email_key', '=', v.emailKey),
  );

  return {
    async insert(user) {
      try {
        await tx(async (trx) => {
          await trx
            .insertInto('users')
            .values({
              tenant_id: user.tenantId,
              id: user.id,
              email: user.email,
              email_key: user.emailKey,
              email_verified: user.emailVerified ? 1 : 0,
              name: user.name,
              given_name: user.givenName,
              family_name: user.familyName,
              picture: user.picture,
              locale: user.locale,
              disabled: user.disabled ? 1 : 0,
              password_hash: user.passwordHash,
              password_changed_at: user.passwordChangedAt,
              created_at: user.createdAt,
              updated_at: user.updatedAt,
            })
            .execute();
          await bump(trx, user.tenantId);
        });
        return true;
      } catch (error) {
        if (isUniqueViolation(error)) return false;
        throw error;
      }
    },

    async get(tenantId, id) {
      const [row] = (await findById({ tenantId, id })).rows;
      return row ? toUser(row) : undefined;
    },

    async getByEmailKey(tenantId, emailKey) {
      const [row] = (await findByEmailKey({ tenantId, emailKey })).rows;
      return row ? toUser(row) : undefined;
    },

    async list(tenantId, { emailKeyPrefix, afterEmailKey, limit }) {
      let query = db.selectFrom('users').selectAll().where('tenant_id', '=', tenantId);
      if (emailKeyPrefix) query = query.where(sql<boolean>`email_key like ${likePrefix(emailKeyPrefix)} escape '\\'`);
      if (afterEmailKey !== undefined) query = query.where('email_key', '>', afterEmailKey);
      const rows = await query.orderBy('email_key').limit(limit).execute();
      return rows.map(toUser);
    },

    async update(tenantId, id, changes) {
      try {
        return await tx(async (trx) => {
          const result = await trx.updateTable('users').set(columnsOf(changes)).where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
          if (Number(result.numUpdatedRows) === 0) return 'not_found' as const;
          await bump(trx, tenantId);
          return toUser(await byId(trx, tenantId, id).executeTakeFirstOrThrow());
        });
      } catch (error) {
        if (isUniqueViolation(error)) return 'email_taken';
        throw error;
      }
    },

    async replacePasswordHash(tenantId, id, expected, hash) {
      return tx(async (trx) => {
        // The condition is in the UPDATE itself: a reset that commits between the caller's read
        // and this write leaves `password_hash` different, so this updates no row.
        const result = await trx
          .updateTable('users')
          .set({ password_hash: hash })
          .where('tenant_id', '=', tenantId)
          .where('id', '=', id)
          .where('password_hash', '=', expected)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) === 0) return false;
        await bump(trx, tenantId);
        return true;
      });
    },

    async delete(tenantId, id) {
      return tx(async (trx) => {
        const result = await trx.deleteFrom('users').where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
        if (Number(result.numDeletedRows) === 0) return false;
        await bump(trx, tenantId);
        return true;
      });
    },
  };
}
