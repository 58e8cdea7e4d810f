// The audit hash chain: chainParts (used by stores that hash in SQL) must agree with chainHash byte for byte.
import { sha256 } from '../../../lib/core/json.js';
import {
  GENESIS_HASH,
  chainAfter,
  chainHash,
  chainParts,
  verifyAuditChain,
  type AuditEntry,
} from '../../../lib/audit/index.js';
import { expect } from '../../support/helpers.js';

const base: AuditEntry = {
  id: 'e-1',
  at: '2026-01-01T00:00:00.000Z',
  tenant: 't',
  actor: 'alice',
  type: 'Deposit',
  requestId: 'r-1',
  outcome: 'ok',
  payload: { amount: 3 },
};

describe('chainParts()', () => {
  const tricky: Array<[string, AuditEntry]> = [
    ['a plain entry', base],
    [
      'a payload with its own seq and tenant keys',
      { ...base, payload: { seq: 0, tenant: 'x', nested: { seq: 0, tenant: '"seq":0,"tenant":' } } },
    ],
    [
      'a failure with a code and a replay flag',
      { ...base, outcome: 'domain', code: 'insufficient_funds', replayed: true, actor: null },
    ],
    ['unicode and quotes', { ...base, tenant: 'Zoë "t"', payload: { note: '✓ \u2028 \\' } }],
    [
      'a reason holding the seq and tenant keys',
      { ...base, outcome: 'forbidden', reason: 'no: "seq":0,"tenant":"x"', payload: { reason: 'seq' } },
    ],
  ];
  for (const [name, entry] of tricky) {
    it(`should split ${name} so that the SQL form hashes like chainHash`, () => {
      const [before, after] = chainParts(entry);
      for (const seq of [1, 9, 1234])
        expect(sha256(GENESIS_HASH + before + String(seq) + after)).to.equal(chainHash(GENESIS_HASH, seq, entry));
    });
  }
});

describe('chainHash()', () => {
  it('should hash an entry without a reason exactly as before the field existed', () => {
    // Pinned before `reason` joined the chain: every chain sealed until then must still verify.
    expect(chainHash(GENESIS_HASH, 1, base)).to.equal(
      'f29cc8a73b2e22be2a504d41b860f5ac6d6a64cd66177e9dc99a45b9271a2a55',
    );
    expect(chainHash(GENESIS_HASH, 1, { ...base, outcome: 'forbidden', reason: undefined })).to.equal(
      '10b4860c93b74072afa00fb2db93e1060d571047c40de970e4c3d49620e1772b',
    );
  });

  it('should cover the reason: another reason, another hash', () => {
    const denied: AuditEntry = { ...base, outcome: 'forbidden', reason: 'No policy rule for Deposit' };
    const hashes = new Set(
      [denied, { ...denied, reason: 'alice may not Deposit' }, { ...denied, reason: undefined }].map((e) =>
        chainHash(GENESIS_HASH, 1, e),
      ),
    );
    expect(hashes.size).to.equal(3);
  });
});

describe('verifyAuditChain()', () => {
  const chain = () => {
    const records = [chainAfter(undefined, base)];
    for (let i = 2; i <= 4; i++) records.push(chainAfter(records.at(-1), { ...base, id: `e-${i}` }));
    return records;
  };
  it('should pass an intact chain and name the first broken record otherwise', () => {
    expect(verifyAuditChain(chain())).to.deep.equal({ ok: true, count: 4 });
    const edited = chain();
    edited[2] = { ...edited[2]!, outcome: 'forbidden' };
    const removed = chain();
    removed.splice(1, 1);
    const swapped = chain();
    [swapped[1], swapped[2]] = [swapped[2]!, swapped[1]!];
    expect(verifyAuditChain(edited)).to.include({ ok: false, index: 2 });
    expect(verifyAuditChain(removed)).to.include({ ok: false, index: 1 });
    expect(verifyAuditChain(swapped)).to.include({ ok: false, index: 1 });
  });
});
