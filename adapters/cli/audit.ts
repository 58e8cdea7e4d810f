// `usecasecore audit verify [--tenant T]`: walks the audit hash chains and names the first broken record.
import { KnexAuditStore } from '../knex/audit-store.js';
import { KnexUnitOfWork } from '../knex/unit-of-work.js';
import { EXIT, table, type Command } from './common.js';

/**
 * The `audit verify` command.
 * @example usecasecore audit verify --tenant acme
 */
export const auditVerifyCommand: Command = {
  name: 'audit verify',
  summary: "walk the audit chains (exit 1 naming the first bad record's tenant, seq and id)",
  usage: '[--tenant <tenant>] [options]',
  help: `Walks each tenant's audit chain in seq order, a page at a time, and checks every record's hash and link, and
the last record against the tenant's head row. Reports the first bad record of each broken tenant: a record that
was edited, deleted (in the middle or at the end) or inserted. Records committed but not sealed into the chain yet
(the relay seals them within a second, see \`usecasecore relay --help\`) are counted as pending, never as a break.

Options:
  --tenant <tenant>   check this tenant only (default: every tenant)

Exit codes: 0 every chain is intact, 1 a chain is broken (or --tenant has no records, or the database failed),
2 bad usage.`,
  options: { tenant: { type: 'string' } },
  async run(cli) {
    const tenant = cli.string('tenant');
    const store = new KnexAuditStore(new KnexUnitOfWork(cli.db()), cli.tables.audit, cli.tables.auditHeads);
    const result = await store.verify(tenant === undefined ? {} : { tenant });
    if (tenant !== undefined && result.ok && result.records === 0 && result.pending === 0) {
      // Neither a record nor a head row: most likely a misspelt tenant, not an intact chain.
      const reason = `no audit records or head for tenant "${tenant}"`;
      cli.print(
        `N${reason.slice(1)} — check the name (tenants are case-sensitive); without --tenant every tenant is checked`,
        {
          ...result,
          ok: false,
          problems: [{ tenant, seq: 0, id: null, reason }],
        },
      );
      return EXIT.problem;
    }
    const checked =
      `${result.records} record${result.records === 1 ? '' : 's'} of ${result.tenants} ` +
      `tenant${result.tenants === 1 ? '' : 's'}` +
      (result.pending > 0 ? ` (${result.pending} not sealed yet, not checked)` : '');
    const human = result.ok
      ? `Audit chains intact: ${checked}`
      : [
          `Audit chain broken in ${result.problems.length} tenant${result.problems.length === 1 ? '' : 's'}:`,
          table([
            ['tenant', 'seq', 'id', 'problem'],
            ...result.problems.map((p) => [p.tenant, String(p.seq), p.id ?? '(gone)', p.reason]),
          ]),
        ].join('\n');
    cli.print(human, result);
    return result.ok ? EXIT.ok : EXIT.problem;
  },
};
