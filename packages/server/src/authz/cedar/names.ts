import type { EntityUidJson } from '@cedar-policy/cedar-wasm/nodejs';
import type { ObjectRef } from '../types.js';

/**
 * Our object types are SpiceDB names, optionally slash-qualified (`example/user`); Cedar
 * spells a namespaced entity type with `::` (`example::user`). Every `/` becomes `::` —
 * in principals, resources, entity uids and parents alike — so a Cedar policy names our
 * `example/user` as `example::user::"alice"`. SpiceDB type names cannot contain `:`, so
 * the mapping is one-to-one.
 */
export const cedarTypeName = (type: string): string => type.replaceAll('/', '::');

/** Our object reference as a Cedar entity uid. */
export const cedarUid = (ref: ObjectRef): EntityUidJson => ({ type: cedarTypeName(ref.type), id: ref.id });

/**
 * An entity reference for use inside attribute values or context (`{ __entity: … }`),
 * so a policy can compare `resource.owner == principal`.
 */
export const cedarEntityRef = (ref: ObjectRef) => ({ __entity: { type: cedarTypeName(ref.type), id: ref.id } });

/** Every permission is a Cedar action `Action::"<permission>"`. */
export const cedarAction = (permission: string): EntityUidJson => ({ type: 'Action', id: permission });
