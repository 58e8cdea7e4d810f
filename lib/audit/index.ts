// usecasecore/audit: the per-tenant hash chain (hashing, verifying), the sealer, and the AuditStore port.
export { chainAfter, chainHash, chainParts, verifyAuditChain, GENESIS_HASH } from './chain.js';
export { auditSealer, type AuditSealer, type AuditSealerOptions } from './sealer.js';
export type { AuditEntry, AuditRecord, AuditStore } from '../core/ports.js';
