// cursor(): a server-side cursor reads any number of rows a batch at a time and gives its connection back however
// the reading ends — on PGlite and on Postgres.
import type { Knex } from 'knex';
import { cursor } from '../../../adapters/knex/index.js';
import { postgres, sharedPglite } from '../../support/db.js';
import { expect } from '../../support/helpers.js';

function cursorOn(name: string, open: () => Promise<Knex | undefined>) {
  describe(`cursor() on ${name}`, function () {
    this.timeout(60_000);
    let db: Knex;
    before(async function () {
      const found = await open();
      if (!found) return this.skip();
      db = found;
    });
    const inUse = () => (db.client as { pool?: { numUsed(): number } }).pool?.numUsed() ?? 0;
    const series = (n: number) => `SELECT g AS n, repeat('x', 200) AS pad FROM generate_series(1, ${n}) AS g`;

    it('should read every row in order, one batch in memory at a time', async () => {
      let count = 0,
        last = 0;
      for await (const row of cursor<{ n: number }>(db, `${series(20_000)} WHERE g > ?`, [0], { batchSize: 1_000 })) {
        expect(row.n).to.equal(last + 1);
        last = row.n;
        count++;
      }
      expect(count).to.equal(20_000);
      expect(inUse()).to.equal(0);
    });

    it('should close the cursor and free the connection when the reader stops early', async () => {
      const seen: number[] = [];
      for await (const row of cursor<{ n: number }>(db, series(1_000_000), [], { batchSize: 100 })) {
        seen.push(row.n);
        if (seen.length === 150) break;
      }
      expect(seen.at(-1)).to.equal(150);
      expect(inUse(), 'connection back in the pool').to.equal(0);
      // The connection is usable: no cursor or transaction was left open on it.
      expect((await db.raw('SELECT 1 AS one')).rows[0].one).to.equal(1);
    });

    it('should free the connection when the query fails, and say how to fix a bad batch size', async () => {
      const reading = (async () => {
        for await (const _ of cursor(db, 'SELECT * FROM no_such_table', [])) expect.fail('read a row');
      })();
      await expect(reading).to.be.rejectedWith(/no_such_table/);
      expect(inUse()).to.equal(0);
      const bad = cursor(db, series(1), [], { batchSize: 0 });
      await expect(bad.next()).to.be.rejectedWith(/batchSize.*whole number ≥ 1, got 0/);
    });
  });
}

cursorOn('PGlite', sharedPglite);
cursorOn('Postgres', postgres);
