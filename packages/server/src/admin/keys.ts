import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { signingAlgs, type SigningAlg } from '../config/defaults.js';
import { errors, iso, TenantParams, type AdminRouteDeps } from './schemas.js';

const RotateKey = Type.Object({ alg: Type.Optional(Type.Union(signingAlgs.map((a) => Type.Literal(a)))) }, { additionalProperties: false });

/** Signing keys of a tenant: the operator's. */
export function keyRoutes(app: FastifyInstance, { core, guard, audit }: AdminRouteDeps): void {
  const { read, write } = guard;
  const KeyView = Type.Object({
    kid: Type.String(),
    alg: Type.String(),
    status: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
    retire_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    public_jwk: Type.Object({}, { additionalProperties: true }),
  });
  app.get<{ Params: Static<typeof TenantParams> }>(
    '/tenants/:tenant/keys',
    { onRequest: read, schema: { tags: ['keys'], params: TenantParams, response: { 200: Type.Object({ keys: Type.Array(KeyView) }), ...errors } } },
    async (request) => {
      await core.tenants.get(request.params.tenant);
      const keys = await core.keys.list(request.params.tenant);
      return {
        keys: keys.map((k) => ({ kid: k.kid, alg: k.alg, status: k.status, created_at: iso(k.createdAt), retire_at: k.retireAt === null ? null : iso(k.retireAt), public_jwk: k.publicJwk })),
      };
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof RotateKey> }>(
    '/tenants/:tenant/keys/rotate',
    {
      onRequest: write,
      schema: {
        tags: ['keys'],
        description:
          'Makes new signing keys active at once: the default key (of `alg`, else of the current default\'s algorithm), and unless that is RS256 an RS256 key beside it for ID tokens of clients that registered no algorithm (`id_token_kid`). The previous keys stay in JWKS until every token they signed has expired. 409 `KEYS_ALG_IN_USE` when a client registered an ID-token algorithm the new keys would not hold.',
        params: TenantParams,
        body: Type.Optional(RotateKey),
        response: {
          200: Type.Object({
            kid: Type.String(),
            alg: Type.String(),
            id_token_kid: Type.Union([Type.String(), Type.Null()]),
            previous_kid: Type.Union([Type.String(), Type.Null()]),
            previous_retire_at: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errors,
        },
      },
    },
    async (request) => {
      const { tenant } = request.params;
      await core.tenants.get(tenant);
      const rotated = await core.keys.rotate(tenant, request.body?.alg as SigningAlg | undefined);
      await audit(request, tenant, 'key.rotated', rotated.kid, { alg: rotated.alg, id_token_kid: rotated.idTokenKid, previous_kid: rotated.previousKid });
      return {
        kid: rotated.kid,
        alg: rotated.alg,
        id_token_kid: rotated.idTokenKid,
        previous_kid: rotated.previousKid,
        previous_retire_at: rotated.previousRetireAt === null ? null : iso(rotated.previousRetireAt),
      };
    },
  );
}
