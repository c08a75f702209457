import fc from 'fast-check';
import t from 'tap';
import {
  BPF_DEVCG_ACC_MKNOD,
  BPF_DEVCG_ACC_READ,
  BPF_DEVCG_ACC_WRITE,
  BPF_DEVCG_DEV_BLOCK,
  BPF_DEVCG_DEV_CHAR,
  OP,
  deviceFilter,
} from '../../src/cgroups/device-filter.js';
import type { LinuxDeviceCgroup } from '../../src/cgroups/resources.js';
import { deviceCgroupRules } from '../../src/plan/devices.js';

const decode = (prog: Uint8Array) => {
  const v = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  return Array.from({ length: prog.length / 8 }, (_, pc) => ({
    code: v.getUint8(pc * 8),
    dst: v.getUint8(pc * 8 + 1) & 15,
    src: v.getUint8(pc * 8 + 1) >> 4,
    off: v.getInt16(pc * 8 + 2, true),
    imm: v.getInt32(pc * 8 + 4, true),
  }));
};

/**
 * The kernel's eBPF semantics for the opcodes the generator uses (64-bit registers, 32-bit ALU operations
 * zero-extending, immediates sign-extended for 64-bit compares). Throws on anything else, a jump out of the
 * program or backwards, and a read of the context outside its 12 bytes.
 */
function run(prog: Uint8Array, type: number, access: number, major: number, minor: number): number {
  const insns = decode(prog);
  const ctx = [((access << 16) | type) >>> 0, major >>> 0, minor >>> 0];
  const r: bigint[] = Array(11).fill(0n);
  const imm64 = (imm: number) => BigInt.asUintN(64, BigInt(imm));
  for (let pc = 0; ;) {
    const i = insns[pc];
    if (!i) throw new Error(`pc ${pc} is outside the program`);
    pc++;
    if (i.off < 0) throw new Error('a backward jump');
    switch (i.code) {
      case OP.LDXW:
        if (i.src !== 1 || i.off % 4 || i.off > 8) throw new Error(`bad context read at ${i.off}`);
        r[i.dst] = BigInt(ctx[i.off / 4]!);
        break;
      case OP.AND32: r[i.dst] = (r[i.dst]! & 0xffffffffn) & BigInt(i.imm >>> 0); break;
      case OP.RSH32: r[i.dst] = (r[i.dst]! & 0xffffffffn) >> BigInt(i.imm); break;
      case OP.MOV32: r[i.dst] = BigInt(i.imm >>> 0); break;
      case OP.JEQ: if (r[i.dst] === imm64(i.imm)) pc += i.off; break;
      case OP.JNE: if (r[i.dst] !== imm64(i.imm)) pc += i.off; break;
      case OP.JSET: if ((r[i.dst]! & imm64(i.imm)) !== 0n) pc += i.off; break;
      case OP.EXIT: return Number(r[0]);
      default: throw new Error(`unknown opcode 0x${i.code.toString(16)}`);
    }
  }
}

/** The instructions no path reaches (the verifier refuses a program that has any). */
function unreachable(prog: Uint8Array): number[] {
  const insns = decode(prog);
  const seen = new Set<number>();
  const todo = [0];
  while (todo.length) {
    const pc = todo.pop()!;
    if (seen.has(pc) || pc >= insns.length) continue;
    seen.add(pc);
    const { code, off } = insns[pc]!;
    if (code === OP.EXIT) continue;
    if (code === OP.JEQ || code === OP.JNE || code === OP.JSET) todo.push(pc + 1, pc + 1 + off);
    else todo.push(pc + 1);
  }
  return insns.map((_, pc) => pc).filter((pc) => !seen.has(pc));
}

const TYPE = { b: BPF_DEVCG_DEV_BLOCK, c: BPF_DEVCG_DEV_CHAR };
const ACC: Record<string, number> = { r: BPF_DEVCG_ACC_READ, w: BPF_DEVCG_ACC_WRITE, m: BPF_DEVCG_ACC_MKNOD };
const mask = (access: string) => [...access].reduce((m, a) => m | ACC[a]!, 0);

/** What the rules mean, written the plain way: each access asked for, by the last rule naming it; else denied. */
function decide(rules: readonly LinuxDeviceCgroup[], type: 'b' | 'c', major: number, minor: number, access: string): boolean {
  const any = (n: number | undefined) => n === undefined || n === -1;
  return [...access].every((a) => {
    let allowed = false;
    for (const rule of rules) {
      const ruleType = rule.type ?? 'a';
      if (ruleType !== 'a' && ruleType !== type) continue;
      if (!any(rule.major) && rule.major !== major) continue;
      if (!any(rule.minor) && rule.minor !== minor) continue;
      if ((rule.access ?? 'rwm').includes(a)) allowed = rule.allow;
    }
    return allowed;
  });
}

const allows = (rules: LinuxDeviceCgroup[], type: 'b' | 'c', major: number, minor: number, access: string) =>
  run(deviceFilter(rules), TYPE[type], mask(access), major, minor) === 1;

const denyAll: LinuxDeviceCgroup = { allow: false, access: 'rwm' };

t.test('the instructions for a deny-all and one allowed device, byte for byte', async (t) => {
  const hex = (prog: Uint8Array) => decode(prog).map((_, pc) => Buffer.from(prog.subarray(pc * 8, pc * 8 + 8)).toString('hex'));
  t.same(hex(deviceFilter([denyAll, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }])), [
    // prologue: r2 = type, r3 = access, r4 = major, r5 = minor
    '6112000000000000', '54020000ffff0000', '6113000000000000', '7403000010000000', '6114040000000000', '6115080000000000',
    // c 1:3 rwm, the last rule: if type != c, major != 1 or minor != 3, the next rule; else allowed
    '5502040002000000', '5504030001000000', '5505020003000000', 'b400000001000000', '9500000000000000',
    // deny-all: denied, and the chain ends (nothing before it can be reached)
    'b400000000000000', '9500000000000000',
  ]);
  // Accesses apart: r3 &= ~r, then allowed if nothing is left; deny w: if r3 & w, denied.
  t.same(hex(deviceFilter([{ allow: false, type: 'b', access: 'w' }, { allow: true, type: 'c', access: 'r' }])).slice(6), [
    '5502020002000000', '54030000fdffffff', '1503040000000000',
    '5502010001000000', '4503000004000000',
    'b400000000000000', '9500000000000000', // no rule named what is left: denied
    'b400000001000000', '9500000000000000', // allowed
  ]);
});

t.test('an empty list denies everything; an allow-all allows everything', async (t) => {
  for (const [type, access] of [['c', 'r'], ['b', 'rw'], ['c', 'm']] as const) {
    t.notOk(allows([], type, 1, 3, access), `${type} ${access}: empty list`);
    t.ok(allows([{ allow: true }], type, 1, 3, access), `${type} ${access}: allow a`);
    t.notOk(allows([{ allow: true }, denyAll], type, 1, 3, access), `${type} ${access}: allow-all then deny-all`);
  }
});

t.test('decisions over engine configs and the special cases', async (t) => {
  // moby's and podman's defaults, and containerd's CRI: deny everything, then allow a list.
  const engine: LinuxDeviceCgroup[] = [
    denyAll,
    { allow: true, type: 'c', access: 'm' },
    { allow: true, type: 'b', access: 'm' },
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: true, type: 'c', major: 136, access: 'rwm' },
    { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
  ];
  const cases: [string, LinuxDeviceCgroup[], 'b' | 'c', number, number, string, boolean][] = [
    ['engine: /dev/null read', engine, 'c', 1, 3, 'r', true],
    ['engine: /dev/null O_RDWR', engine, 'c', 1, 3, 'rw', true],
    ['engine: /dev/pts/7 (minor wildcard)', engine, 'c', 136, 7, 'rw', true],
    ['engine: /dev/fuse read', engine, 'c', 10, 229, 'r', false],
    ['engine: mknod of any char device', engine, 'c', 10, 229, 'm', true],
    ['engine: mknod of any block device', engine, 'b', 8, 0, 'm', true],
    ['engine: a block device read', engine, 'b', 8, 0, 'r', false],
    ['engine: b 1:3 is not c 1:3', engine, 'b', 1, 3, 'r', false],
    ['the last match wins: allow then deny', [{ allow: true, type: 'c', major: 1, minor: 3 }, { allow: false, type: 'c', major: 1, minor: 3 }], 'c', 1, 3, 'r', false],
    ['the last match wins: deny then allow', [{ allow: false, type: 'c', major: 1, minor: 3 }, { allow: true, type: 'c', major: 1, minor: 3 }], 'c', 1, 3, 'r', true],
    ['a hole in a wildcard allow', [{ allow: true, type: 'c' }, { allow: false, type: 'c', major: 1, minor: 3 }], 'c', 1, 3, 'w', false],
    ['...and the rest of the wildcard stays', [{ allow: true, type: 'c' }, { allow: false, type: 'c', major: 1, minor: 3 }], 'c', 1, 5, 'w', true],
    ['deny w alone refuses O_RDWR (runc and crun would allow)', [{ allow: true }, { allow: false, type: 'c', major: 1, minor: 3, access: 'w' }], 'c', 1, 3, 'rw', false],
    ['deny w alone leaves read', [{ allow: true }, { allow: false, type: 'c', major: 1, minor: 3, access: 'w' }], 'c', 1, 3, 'r', true],
    ['r and w allowed apart grant O_RDWR (runc and crun would deny)', [denyAll, { allow: true, type: 'c', major: 1, minor: 3, access: 'r' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'w' }], 'c', 1, 3, 'rw', true],
    ['allow r does not grant O_RDWR', [denyAll, { allow: true, type: 'c', major: 1, minor: 3, access: 'r' }], 'c', 1, 3, 'rw', false],
    ['type a with a major matches both types', [{ allow: true, major: 8 }], 'b', 8, 1, 'r', true],
    ['type a with a major: char too', [{ allow: true, major: 8 }], 'c', 8, 1, 'r', true],
    ['major -1 is a wildcard', [{ allow: true, type: 'c', major: -1, minor: 3 }], 'c', 7, 3, 'r', true],
    ['deny a r leaves write', [{ allow: true }, { allow: false, access: 'r' }], 'c', 1, 3, 'w', true],
    ['deny a r refuses read', [{ allow: true }, { allow: false, access: 'r' }], 'c', 1, 3, 'r', false],
    ['a major from 2^31 matches no real device', [{ allow: true, type: 'c', major: 2 ** 31 }], 'c', 0, 0, 'r', false],
  ];
  for (const [name, rules, type, major, minor, access, want] of cases) {
    t.equal(allows(rules, type, major, minor, access), want, name);
    t.equal(decide(rules, type, major, minor, access), want, `${name} (the plain reading agrees)`);
  }
});

t.test('pocrun\'s own list (config, then defaults) leaves no instruction unreachable', async (t) => {
  const rules = deviceCgroupRules([denyAll, { allow: true, type: 'c', major: 10, minor: 229, access: 'r' }]);
  const prog = deviceFilter(rules);
  t.same(unreachable(prog), []);
  t.ok(allows(rules, 'c', 10, 229, 'r'), "a device the config's rules allow");
  t.notOk(allows(rules, 'c', 10, 229, 'w'), 'only as they allow it');
  t.ok(allows(rules, 'c', 5, 1, 'rw'), 'the console');
  t.notOk(allows(rules, 'c', 10, 228, 'r'), 'another misc device');
  t.ok(prog.length / 8 < 4096, `${prog.length / 8} instructions: under even the unprivileged limit`);
});

t.test('any rule list: the program decides as the plain reading, and has no unreachable instruction', async (t) => {
  const rule = fc.record(
    {
      allow: fc.boolean(),
      type: fc.constantFrom('a', 'b', 'c'),
      major: fc.constantFrom(-1, 1, 5),
      minor: fc.constantFrom(-1, 3, 9),
      access: fc.subarray(['r', 'w', 'm'], { minLength: 1 }).map((a) => a.join('')),
    },
    { requiredKeys: ['allow'] },
  );
  const probes: ['b' | 'c', number, number, string][] = [];
  for (const type of ['b', 'c'] as const) {
    for (const major of [1, 5, 7]) for (const minor of [3, 9, 4]) for (const access of ['r', 'w', 'm', 'rw']) probes.push([type, major, minor, access]);
  }
  fc.assert(
    fc.property(fc.array(rule, { maxLength: 8 }), (rules) => {
      const prog = deviceFilter(rules);
      if (unreachable(prog).length) return false;
      return probes.every(([type, major, minor, access]) =>
        (run(prog, TYPE[type], mask(access), major, minor) === 1) === decide(rules, type, major, minor, access));
    }),
    { numRuns: 300 },
  );
  t.pass('300 random lists, 72 probes each');
});

t.test('a bad rule is an error naming it', async (t) => {
  t.throws(() => deviceFilter([denyAll, { allow: true, type: 'x' }]), { message: 'linux.resources.devices/1/type: "x" is not a, b or c' });
  t.throws(() => deviceFilter([{ allow: true, access: 'rx' }]), { message: 'linux.resources.devices/0/access: "rx" is not made of r, w and m' });
  t.throws(() => deviceFilter([{ allow: true, major: 2 ** 32 }]), /devices\/0\/major: 4294967296 is not -1 or a number/);
  t.throws(() => deviceFilter([{ allow: true, minor: -2 }]), /devices\/0\/minor: -2/);
});
