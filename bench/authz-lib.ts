/**
 * Helpers for the permission-service benchmark: a seeded PRNG, the synthetic tenant
 * (organisations, nested teams, a 5-deep folder forest, documents) and percentiles.
 */
import type { Relationship } from '../packages/server/src/authz/types.js';

/** mulberry32: small, fast, deterministic. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n) };
}

/** Nearest-rank percentile of an ascending array. */
export const percentile = (sorted: ArrayLike<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;

export const SCHEMA = `definition user {}

definition organization {
  relation member: user
  relation admin: user
}

definition team {
  relation org: organization
  relation member: user | team#member
}

definition folder {
  relation parent: folder
  relation org: organization
  relation viewer: user | team#member
  permission view = viewer + parent->view + org->admin
}

definition document {
  relation folder: folder
  relation viewer: user | team#member
  relation owner: user
  permission view = viewer + owner + folder->view
}
`;

export const FOLDER_DEPTH = 5;
const FOLDER_LEVEL_SHARE = [0.05, 0.15, 0.2, 0.25, 0.35];
/** A grant: a user (`kind` 0) or the members of a team (`kind` 1). */
export interface Grant {
  kind: 0 | 1;
  id: number;
}

export interface Dataset {
  users: number;
  orgs: number;
  teams: number;
  folders: number;
  documents: number;
  /** The user who sees exactly `targetDocuments` documents, through team t2 ⊂ t1 ⊂ t0 viewing folder 0. */
  targetUser: number;
  targetTeams: [number, number, number];
  targetDocuments: number;
  orgAdmins: number[][];
  userOrg: (u: number) => number;
  teamOrg: Int32Array;
  teamParent: Int32Array;
  teamUsers: number[][];
  teamChildren: number[][];
  userTeams: number[][];
  folderParent: Int32Array;
  folderOrg: Int32Array;
  folderLevel: Int8Array;
  folderGrants: (Grant | undefined)[][];
  docFolder: Int32Array;
  docOwner: Int32Array;
  /** -1: none, else a grant encoded as kind * 2^24 + id. */
  docViewer: Int32Array;
  /** Number of relationships `relationships()` yields. */
  count: number;
}

export const userId = (u: number) => `u${u}`;
export const teamId = (t: number) => `t${t}`;
export const folderId = (f: number) => `f${f}`;
export const docId = (d: number) => `d${d}`;
export const orgId = (o: number) => `o${o}`;
export const decodeGrant = (g: number): Grant => ({ kind: (g >>> 24) as 0 | 1, id: g & 0xffffff });

/** The synthetic tenant, deterministic for a seed; sizes scale linearly with `scale`. */
export function generate(scale: number, seed = 42): Dataset {
  const rnd = prng(seed);
  const users = Math.max(1000, Math.round(100_000 * scale));
  const orgs = Math.max(5, Math.round(50 * scale));
  const teams = Math.max(100, Math.round(5_000 * scale));
  const folders = Math.max(200, Math.round(20_000 * scale));
  const documents = Math.max(5000, Math.round(350_000 * scale));
  const targetDocuments = Math.max(100, Math.round(10_000 * scale));
  const targetUser = 0;
  const otherUser = () => 1 + rnd.int(users - 1);

  const orgAdmins: number[][] = [];
  for (let o = 0; o < orgs; o++) orgAdmins.push([otherUser(), otherUser()]);
  const userOrg = (u: number) => u % orgs;

  // Teams: 20 % top level, 40 % nested in a top team, 40 % nested one level deeper.
  const l0 = Math.round(teams * 0.2);
  const l1 = l0 + Math.round(teams * 0.4);
  const teamOrg = new Int32Array(teams);
  const teamParent = new Int32Array(teams).fill(-1);
  const teamChildren: number[][] = Array.from({ length: teams }, () => []);
  for (let t = 0; t < teams; t++) {
    if (t >= l0) {
      const p = t < l1 ? rnd.int(l0) : l0 + rnd.int(l1 - l0);
      teamParent[t] = p;
      teamChildren[p]!.push(t);
      teamOrg[t] = teamOrg[p]!;
    } else teamOrg[t] = rnd.int(orgs);
  }
  const t2 = teams - 1;
  const t1 = teamParent[t2]!;
  const t0 = teamParent[t1]!;
  const targetTeams: [number, number, number] = [t0, t1, t2];
  const otherTeam = () => {
    for (;;) {
      const t = rnd.int(teams);
      if (t !== t0 && t !== t1 && t !== t2) return t;
    }
  };
  const teamUsers: number[][] = Array.from({ length: teams }, () => []);
  const userTeams: number[][] = Array.from({ length: users }, () => []);
  teamUsers[t2]!.push(targetUser);
  userTeams[targetUser]!.push(t2);
  for (let u = 1; u < users; u++) {
    const n = 1 + (rnd.next() < 0.5 ? 1 : 0);
    for (let i = 0; i < n; i++) {
      const t = rnd.int(teams);
      if (userTeams[u]!.includes(t)) continue;
      teamUsers[t]!.push(u);
      userTeams[u]!.push(t);
    }
  }

  // Folders: five levels; each folder's parent is a random folder of the level above. The
  // first folder of each level hangs under the first of the level above, so folder 0 has a
  // subtree five deep.
  const folderParent = new Int32Array(folders).fill(-1);
  const folderOrg = new Int32Array(folders);
  const folderLevel = new Int8Array(folders);
  const levelStart: number[] = [];
  let start = 0;
  for (let level = 0; level < FOLDER_DEPTH; level++) {
    levelStart.push(start);
    start += level === FOLDER_DEPTH - 1 ? folders - start : Math.round(folders * FOLDER_LEVEL_SHARE[level]!);
  }
  levelStart.push(folders);
  const inTarget = new Uint8Array(folders);
  for (let level = 0; level < FOLDER_DEPTH; level++) {
    for (let f = levelStart[level]!; f < levelStart[level + 1]!; f++) {
      folderLevel[f] = level;
      if (level === 0) {
        folderOrg[f] = rnd.int(orgs);
        inTarget[f] = f === 0 ? 1 : 0;
      } else {
        const p = f === levelStart[level]! ? levelStart[level - 1]! : levelStart[level - 1]! + rnd.int(levelStart[level]! - levelStart[level - 1]!);
        folderParent[f] = p;
        folderOrg[f] = folderOrg[p]!;
        inTarget[f] = inTarget[p]!;
      }
    }
  }
  const folderGrants: (Grant | undefined)[][] = Array.from({ length: folders }, () => []);
  folderGrants[0]!.push({ kind: 1, id: t0 });
  for (let f = 0; f < folders; f++) {
    if (rnd.next() < 0.3) folderGrants[f]!.push({ kind: 1, id: otherTeam() });
    if (rnd.next() < 0.2) folderGrants[f]!.push({ kind: 0, id: otherUser() });
  }
  const targetFolders: number[] = [];
  const otherFolders: number[] = [];
  for (let f = 0; f < folders; f++) (inTarget[f] ? targetFolders : otherFolders).push(f);
  // Folder 0's subtree gets exactly the target's documents, mostly at the deepest levels.
  const deepTarget = targetFolders.filter((f) => folderLevel[f]! >= 3);

  const docFolder = new Int32Array(documents);
  const docOwner = new Int32Array(documents);
  const docViewer = new Int32Array(documents).fill(-1);
  for (let d = 0; d < documents; d++) {
    if (d < targetDocuments) docFolder[d] = rnd.next() < 0.8 && deepTarget.length > 0 ? deepTarget[rnd.int(deepTarget.length)]! : targetFolders[rnd.int(targetFolders.length)]!;
    else docFolder[d] = otherFolders[rnd.int(otherFolders.length)]!;
    docOwner[d] = otherUser();
    const v = rnd.next();
    if (v < 0.1) docViewer[d] = otherUser();
    else if (v < 0.2) docViewer[d] = (1 << 24) + otherTeam();
  }

  const data: Dataset = {
    users, orgs, teams, folders, documents, targetUser, targetTeams, targetDocuments, orgAdmins, userOrg,
    teamOrg, teamParent, teamUsers, teamChildren, userTeams, folderParent, folderOrg, folderLevel, folderGrants, docFolder, docOwner, docViewer,
    count: 0,
  };
  let count = 0;
  for (const _ of relationships(data)) count++;
  data.count = count;
  return data;
}

const grantSubject = (g: Grant) => (g.kind === 0 ? { subjectType: 'user', subjectId: userId(g.id) } : { subjectType: 'team', subjectId: teamId(g.id), subjectRelation: 'member' });

/** Every relationship of the dataset, generated on the fly (no million-object array). */
export function* relationships(d: Dataset): Generator<Relationship> {
  for (let o = 0; o < d.orgs; o++) for (const u of d.orgAdmins[o]!) yield { resourceType: 'organization', resourceId: orgId(o), relation: 'admin', subjectType: 'user', subjectId: userId(u) };
  for (let u = 0; u < d.users; u++) yield { resourceType: 'organization', resourceId: orgId(d.userOrg(u)), relation: 'member', subjectType: 'user', subjectId: userId(u) };
  for (let t = 0; t < d.teams; t++) {
    yield { resourceType: 'team', resourceId: teamId(t), relation: 'org', subjectType: 'organization', subjectId: orgId(d.teamOrg[t]!) };
    const p = d.teamParent[t]!;
    if (p >= 0) yield { resourceType: 'team', resourceId: teamId(p), relation: 'member', subjectType: 'team', subjectId: teamId(t), subjectRelation: 'member' };
    for (const u of d.teamUsers[t]!) yield { resourceType: 'team', resourceId: teamId(t), relation: 'member', subjectType: 'user', subjectId: userId(u) };
  }
  for (let f = 0; f < d.folders; f++) {
    const p = d.folderParent[f]!;
    if (p >= 0) yield { resourceType: 'folder', resourceId: folderId(f), relation: 'parent', subjectType: 'folder', subjectId: folderId(p) };
    else yield { resourceType: 'folder', resourceId: folderId(f), relation: 'org', subjectType: 'organization', subjectId: orgId(d.folderOrg[f]!) };
    for (const g of d.folderGrants[f]!) if (g) yield { resourceType: 'folder', resourceId: folderId(f), relation: 'viewer', ...grantSubject(g) };
  }
  for (let i = 0; i < d.documents; i++) {
    yield { resourceType: 'document', resourceId: docId(i), relation: 'folder', subjectType: 'folder', subjectId: folderId(d.docFolder[i]!) };
    yield { resourceType: 'document', resourceId: docId(i), relation: 'owner', subjectType: 'user', subjectId: userId(d.docOwner[i]!) };
    const v = d.docViewer[i]!;
    if (v >= 0) yield { resourceType: 'document', resourceId: docId(i), relation: 'viewer', ...grantSubject(decodeGrant(v)) };
  }
}

/** Folder ancestry of a document, nearest first. */
export function folderChain(d: Dataset, doc: number): number[] {
  const chain: number[] = [];
  for (let f = d.docFolder[doc]!; f >= 0; f = d.folderParent[f]!) chain.push(f);
  return chain;
}

/** A team's ancestors, itself included (members of a team are members of its ancestors). */
export function teamChain(d: Dataset, team: number): number[] {
  const chain: number[] = [];
  for (let t = team; t >= 0; t = d.teamParent[t]!) chain.push(t);
  return chain;
}

/**
 * `n` (document, user) pairs: a quarter owners, about a third users reached through a grant
 * on the document or one of its folders (teams walked down into nested teams), a few target
 * lookups, the rest random users (mostly denied).
 */
export function checkPairs(d: Dataset, n: number, seed = 7): [number, number][] {
  const rnd = prng(seed);
  const pairs: [number, number][] = [];
  const memberOf = (team: number): number | undefined => {
    let t = team;
    // Walk down into nested teams now and then.
    while (d.teamChildren[t]!.length > 0 && rnd.next() < 0.5) t = d.teamChildren[t]![rnd.int(d.teamChildren[t]!.length)]!;
    const members = d.teamUsers[t]!;
    return members.length > 0 ? members[rnd.int(members.length)] : undefined;
  };
  while (pairs.length < n) {
    const r = rnd.next();
    if (r < 0.05) {
      pairs.push([rnd.int(d.targetDocuments), d.targetUser]);
      continue;
    }
    const doc = rnd.int(d.documents);
    if (r < 0.3) {
      pairs.push([doc, d.docOwner[doc]!]);
    } else if (r < 0.65) {
      const grants: Grant[] = [];
      if (d.docViewer[doc]! >= 0) grants.push(decodeGrant(d.docViewer[doc]!));
      for (const f of folderChain(d, doc)) for (const g of d.folderGrants[f]!) if (g) grants.push(g);
      const g = grants.length > 0 ? grants[rnd.int(grants.length)]! : undefined;
      const user = g === undefined ? undefined : g.kind === 0 ? g.id : memberOf(g.id);
      pairs.push([doc, user ?? rnd.int(d.users)]);
    } else {
      pairs.push([doc, rnd.int(d.users)]);
    }
  }
  return pairs;
}
