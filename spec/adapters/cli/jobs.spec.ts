// The usecasecore CLI's jobs commands on Postgres: list and show read the job records, cancel sends CancelJob in the
// job's tenant (audited), purge deletes settled records but keyed and unsettled ones.
import { randomUUID } from 'node:crypto';
import type { JobRecord } from '../../../lib/jobs/index.js';
import { expect } from '../../support/helpers.js';
import { db, run, t, usePostgres, useTables } from './support.js';

const HOUR = 3_600_000,
  DAY = 24 * HOUR;

/** A job record as the job store writes it, `enqueuedMsAgo` ago, settled `settledMsAgo` ago when it settled. */
function jobRow(type: string, state: JobRecord['state'], enqueuedMsAgo: number, extra: Record<string, unknown> = {}) {
  const at = new Date(Date.now() - enqueuedMsAgo);
  const settled = ['succeeded', 'failed', 'dead', 'cancelled'].includes(state);
  return {
    id: randomUUID(),
    type,
    queue: `usecasecore.jobs.${type}`,
    tenant: 'acme',
    key: null,
    state,
    attempts: state === 'queued' ? 0 : 1,
    result: state === 'succeeded' ? JSON.stringify({ sent: true }) : null,
    failure: state === 'dead' ? JSON.stringify({ kind: 'dead', message: 'the mail server refused it' }) : null,
    enqueued_at: at,
    run_at: at,
    started_at: state === 'queued' ? null : at,
    settled_at: settled ? at : null,
    ...extra,
  };
}

describe('usecasecore jobs (Postgres)', function () {
  this.timeout(30_000);
  usePostgres();
  useTables();

  it('should list jobs newest first, filter by type, state and age, and exit 1 while one is dead', async () => {
    const rows = [
      jobRow('SendMail', 'succeeded', 3 * DAY),
      jobRow('SendMail', 'dead', 2 * HOUR),
      jobRow('Invoice', 'queued', HOUR),
    ];
    await db(t.jobs).insert(rows);
    const all = await run('jobs', 'list');
    expect(all.code, all.stderr).to.equal(1);
    const lines = all.stdout.split('\n');
    expect(lines[0]).to.match(/^id +type +tenant +state +attempts +enqueued +failure$/);
    expect(lines.slice(1, 4).map((line) => line.split(/ +/)[0])).to.deep.equal(rows.map((r) => r.id).reverse());
    expect(all.stdout)
      .to.match(new RegExp(`^${rows[1]!.id} +SendMail +acme +dead +1 +\\S+ +dead: the mail server refused it$`, 'm'))
      .and.include('1 failed or dead: usecasecore jobs show <id>');

    const ids = async (...args: string[]) => {
      const listed = await run('jobs', 'list', ...args, '--json');
      return JSON.parse(listed.stdout).map((job: JobRecord) => job.jobId);
    };
    expect(await ids('--type', 'SendMail', '--state', 'succeeded')).to.deep.equal([rows[0]!.id]);
    expect(await ids('--older-than', '1d')).to.deep.equal([rows[0]!.id]);
    expect(await ids('--state', 'queued,running')).to.deep.equal([rows[2]!.id]);
    expect((await run('jobs', 'list', '--state', 'queued')).code, 'none listed is dead').to.equal(0);
  });

  it('should show a job with its times and failure (exit 1 when dead or unknown) or result (exit 0)', async () => {
    const [done, dead] = [jobRow('SendMail', 'succeeded', HOUR), jobRow('SendMail', 'dead', HOUR, { key: 'k-1' })];
    await db(t.jobs).insert([done, dead]);
    const shown = await run('jobs', 'show', dead.id);
    expect(shown.code).to.equal(1);
    expect(shown.stdout)
      .to.match(new RegExp(`^SendMail ${dead.id}: dead after 1 attempt$`, 'm'))
      .and.match(/^queue usecasecore\.jobs\.SendMail, tenant acme, key k-1$/m)
      .and.match(/^enqueued \S+, may start \S+, started \S+, settled \S+$/m)
      .and.match(/^failure: dead: the mail server refused it$/m);
    const json = await run('jobs', 'show', done.id, '--json');
    expect(json.code).to.equal(0);
    expect(JSON.parse(json.stdout)).to.deep.include({ jobId: done.id, state: 'succeeded', result: { sent: true } });
    const unknown = await run('jobs', 'show', randomUUID());
    expect([unknown.code, unknown.stdout]).to.satisfy(
      ([code, out]: [number, string]) => code === 1 && /^No job /.test(out),
    );
  });

  it('should cancel a queued job in its tenant, audited, and refuse one a worker took (exit 1)', async () => {
    const [queued, running] = [jobRow('Invoice', 'queued', HOUR), jobRow('Invoice', 'running', HOUR)];
    await db(t.jobs).insert([queued, running]);
    const cancelled = await run('jobs', 'cancel', queued.id, running.id, randomUUID());
    expect(cancelled.code).to.equal(1);
    const lines = cancelled.stdout.trim().split('\n');
    expect(lines[0]).to.equal(`${queued.id}: cancelled`);
    expect(lines[1]).to.equal(`${running.id}: Job ${running.id} is running: only a queued job can be cancelled`);
    expect(lines[2]).to.match(/: no such job$/);
    expect(await db(t.jobs).whereIn('id', [queued.id, running.id]).orderBy('state').pluck('state')).to.deep.equal([
      'cancelled',
      'running',
    ]);
    const audited = await db(t.audit).where({ type: 'CancelJob', outcome: 'ok' }).select('actor', 'tenant');
    expect(audited).to.have.length(1);
    expect(audited[0]).to.deep.include({ tenant: 'acme' });
    expect(audited[0].actor).to.equal('usecasecore-cli');
  });

  it('should purge records settled before the cut-off, never keyed, queued or running ones', async () => {
    const old = (state: JobRecord['state'], extra = {}) => jobRow('SendMail', state, 10 * DAY, extra);
    const rows = [old('succeeded'), old('dead'), old('succeeded', { key: 'welcome/1' }), old('queued'), old('running')];
    await db(t.jobs).insert([...rows, jobRow('SendMail', 'succeeded', HOUR)]);
    const purged = await run('jobs', 'purge', '--settled-before', '7d', '--json');
    expect(purged.code, purged.stderr).to.equal(0);
    expect(JSON.parse(purged.stdout).deleted).to.equal(2);
    expect(await db(t.jobs).count({ n: '*' }).first()).to.deep.equal({ n: '4' });
    expect((await run('jobs', 'purge')).stderr).to.include('e.g. --settled-before 30d');
  });
});
