// The per-tenant audit hash chain: h(n) = SHA-256(h(n-1) ‖ canonical(entry n)), checked by a walk.
import { canonicalJson, sha256 } from '../core/json.js';
import type { AuditEntry, AuditRecord } from '../core/ports.js';

/** The previous hash of a tenant's first record. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * The fields the chain covers, for `canonicalJson`, which sorts the keys and leaves out absent (undefined) ones: an
 * entry without `reason` hashes as it did before the field existed, so older chains still verify.
 */
function covered(seq: number, entry: AuditEntry) {
  const { id, at, tenant, actor, type, requestId, outcome, code, replayed, reason, payload } = entry;
  return { seq, id, at, tenant, actor, type, requestId, outcome, code, replayed, reason, payload };
}

/** The hash of an entry at position `seq` after `prevHash`; every audit store must use this. */
export function chainHash(prevHash: string, seq: number, entry: AuditEntry): string {
  return sha256(prevHash + canonicalJson(covered(seq, entry)));
}

/**
 * `chainHash` split around the sequence number, for a store that numbers and hashes in SQL (one statement):
 * `chainHash(prev, seq, entry) === sha256(prev + before + String(seq) + after)`.
 */
export function chainParts(entry: AuditEntry): readonly [before: string, after: string] {
  const json = canonicalJson(covered(0, entry));
  // Keys are sorted, so the top-level "seq" follows "payload", "reason", "replayed" and "requestId", and "tenant"
  // (always a string) follows it: the last occurrence is the top-level one even if the payload or the reason holds
  // the same text (in a string its quotes are escaped).
  const at0 = json.lastIndexOf('"seq":0,"tenant":');
  return [json.slice(0, at0 + 6), json.slice(at0 + 7)];
}

/** Chains an entry after the tenant's head (`undefined` or seq 0 starts the chain). */
export function chainAfter(
  previous: { readonly seq: number; readonly hash: string } | undefined,
  entry: AuditEntry,
): AuditRecord {
  const seq = (previous?.seq ?? 0) + 1;
  const prevHash = previous && previous.seq > 0 ? previous.hash : GENESIS_HASH;
  // Not `{ ...entry, seq, ... }`: a spread followed by more keys gets a fresh hidden class on every call once
  // optimized in V8 11 (Node 20), ~2.5 µs and map garbage per record. Object.assign copies the same keys.
  return Object.assign({}, entry, { seq, prevHash, hash: chainHash(prevHash, seq, entry) });
}

/**
 * Walks one tenant's records (oldest first) and reports the first that was edited, removed or reordered.
 * @example const check = verifyAuditChain(await store.list({ tenant: 't1', order: 'asc' }));
 */
export function verifyAuditChain(
  records: readonly AuditRecord[],
):
  | { readonly ok: true; readonly count: number }
  | { readonly ok: false; readonly index: number; readonly reason: string } {
  let prevHash = GENESIS_HASH;
  for (const [index, record] of records.entries()) {
    if (record.seq !== index + 1)
      return {
        ok: false,
        index,
        reason: `expected seq ${index + 1}, found ${record.seq} (a record was removed or reordered)`,
      };
    if (record.prevHash !== prevHash)
      return { ok: false, index, reason: 'prevHash does not match the previous record' };
    if (record.hash !== chainHash(prevHash, record.seq, record))
      return { ok: false, index, reason: 'hash does not match the record (it was edited)' };
    prevHash = record.hash;
  }
  return { ok: true, count: records.length };
}
