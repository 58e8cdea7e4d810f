// The audit feature: the newest audit records (GET /audit, readable by anyone) and the whole log as NDJSON
// (GET /audit/export, managers only), read through the mediator so the input is validated and the read audited.
import { everyone, rule } from '../../middleware/index.js';
import type { Feature } from '../shared/feature.js';
import { hasAnyRole } from '../shared/roles.js';
import { ExportAuditHandler, GetAuditLogHandler } from './handlers.js';
import { ExportAudit, GetAuditLog } from './requests.js';

export * from './export.js';
export * from './handlers.js';
export * from './requests.js';

/** Audit: anyone reads the newest records, as the sample's HTTP contract says; only managers export the whole log. */
export const auditLog: Feature = {
  handlers: [GetAuditLogHandler, ExportAuditHandler],
  rules: [
    everyone(GetAuditLog),
    rule(
      ExportAudit,
      (ctx) => hasAnyRole(ctx, 'manager') || { allow: false, reason: 'Only managers may export the audit log' },
    ),
  ],
};
