/**
 * The device filter of cgroup v2: `linux.resources.devices` compiled into an eBPF program of type
 * BPF_PROG_TYPE_CGROUP_DEVICE (cgroup v2 has no devices.allow; the kernel runs this program on every open and
 * mknod of a device node by a process in the cgroup, and denies with EPERM when it returns 0). Pure: rules in,
 * instruction bytes out; the helper loads and attaches them (src/native/device-filter.c, which names the program
 * and gives its license).
 *
 * What a rule list means, as runc's and crun's generators read it: the rules in order, the last matching one
 * decides, and a request no rule matches is denied. Type `a` (or none), and a major or minor that is -1 or
 * absent, match anything. One difference, on purpose: each access a request asks for is decided on its own by
 * the last rule that matches the device and names that access. The kernel asks for read and write at once for
 * an O_RDWR open; runc's and crun's programs match a rule only when it names every access asked for, so after
 * [allow a rwm, deny c 1:3 w] they let an O_RDWR open of 1:3 through, and after [deny a, allow c 1:3 r,
 * allow c 1:3 w] they refuse it. cgroup v1 does the opposite in both cases, and so does this program.
 *
 * The layout (struct bpf_cgroup_dev_ctx is { u32 access_type; u32 major; u32 minor }, access_type being
 * (access << 16) | type). r3 holds the accesses asked for that no rule has decided yet; the rules are read last
 * first, so the first rule to name an access is the last one in the list that does:
 *
 *     r2 = type; r3 = access; r4 = major; r5 = minor       the prologue, as in runc and crun (from systemd)
 *     for each rule, last first:
 *       if r2 != type or r4 != major or r5 != minor: next rule          (only the parts the rule sets)
 *       allow: r3 &= ~access; if r3 == 0: return 1           (allow rwm: return 1)
 *       deny:  if r3 & access: return 0                     (deny rwm: return 0)
 *     return 0                                              (an access no rule names: denied)
 *
 * A rule with every access that matches every device ends the chain (the verifier refuses unreachable
 * instructions, so the rules before it and the final denial are not emitted), as crun's HAS_WILDCARD does.
 * Each rule costs one instruction per part it sets and one or two for its decision: fewer than runc's and
 * crun's layout, and the verifier's time follows their number (~0.3 ms for pocrun's default list).
 */
import { PocrunError } from '../errors.js';
import type { LinuxDeviceCgroup } from './resources.js';

// include/uapi/linux/bpf.h
export const BPF_DEVCG_ACC_MKNOD = 1;
export const BPF_DEVCG_ACC_READ = 2;
export const BPF_DEVCG_ACC_WRITE = 4;
export const BPF_DEVCG_DEV_BLOCK = 1;
export const BPF_DEVCG_DEV_CHAR = 2;

const ACCESS: Record<string, number> = { r: BPF_DEVCG_ACC_READ, w: BPF_DEVCG_ACC_WRITE, m: BPF_DEVCG_ACC_MKNOD };
const TYPES: Record<string, number | undefined> = { a: undefined, b: BPF_DEVCG_DEV_BLOCK, c: BPF_DEVCG_DEV_CHAR };

/** Opcodes used (class | op | source), from include/uapi/linux/bpf_common.h and bpf.h. */
export const OP = {
  LDXW: 0x61, // r[dst] = *(u32 *)(r[src] + off)
  AND32: 0x54, // w[dst] &= imm
  RSH32: 0x74, // w[dst] >>= imm
  MOV32: 0xb4, // w[dst] = imm
  JEQ: 0x15, // if r[dst] == imm goto +off
  JNE: 0x55, // if r[dst] != imm goto +off
  JSET: 0x45, // if r[dst] & imm goto +off
  EXIT: 0x95, // return r0
} as const;

/** One rule, checked and in the program's terms: undefined for "any". */
interface Rule {
  allow: boolean;
  type?: number;
  major?: number;
  minor?: number;
  access: number;
}

const U32_MAX = 0xffffffff;
const ALL_ACCESS = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;

/** Checks one OCI rule; errors name it as linux.resources.devices/<index>. */
function checkRule(rule: LinuxDeviceCgroup, i: number): Rule {
  const field = `linux.resources.devices/${i}`;
  const typeName = rule.type ?? 'a';
  if (!(typeName in TYPES)) throw new PocrunError(`${field}/type: ${JSON.stringify(typeName)} is not a, b or c`);
  const accessText = rule.access ?? 'rwm';
  let access = 0;
  for (const ch of accessText) {
    const bit = ACCESS[ch];
    if (bit === undefined) throw new PocrunError(`${field}/access: ${JSON.stringify(accessText)} is not made of r, w and m`);
    access |= bit;
  }
  const num = (n: number | undefined, name: string) => {
    if (n === undefined || n === -1) return undefined;
    if (!Number.isInteger(n) || n < 0 || n > U32_MAX) throw new PocrunError(`${field}/${name}: ${n} is not -1 or a number from 0 to ${U32_MAX}`);
    return n;
  };
  return { allow: rule.allow, type: TYPES[typeName], major: num(rule.major, 'major'), minor: num(rule.minor, 'minor'), access };
}

/** An instruction before its jump is resolved: `to` names the label it jumps to. */
interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  to?: number;
}

/**
 * The program for a rule list (rules in order; the caller has appended the devices every container may use).
 * Returns the instructions as the kernel takes them: 8 bytes each, little-endian struct bpf_insn.
 */
export function deviceFilter(rules: readonly LinuxDeviceCgroup[]): Uint8Array {
  const checked = rules.map(checkRule).reverse();
  const insns: Insn[] = [];
  const labels: number[] = [];
  const emit = (code: number, dst: number, src: number, off: number, imm: number, to?: number) =>
    void insns.push({ code, dst, src, off, imm, to });
  const newLabel = () => labels.push(-1) - 1;
  const place = (label: number) => void (labels[label] = insns.length);
  const used = new Set<number>();
  const jump = (code: number, dst: number, imm: number, label: number) => {
    used.add(label);
    emit(code, dst, 0, 0, imm, label);
  };
  const ret = (value: number) => {
    emit(OP.MOV32, 0, 0, 0, value);
    emit(OP.EXIT, 0, 0, 0, 0);
  };
  const [allowed, denied] = [newLabel(), newLabel()];

  emit(OP.LDXW, 2, 1, 0, 0);
  emit(OP.AND32, 2, 0, 0, 0xffff);
  emit(OP.LDXW, 3, 1, 0, 0);
  emit(OP.RSH32, 3, 0, 0, 16);
  emit(OP.LDXW, 4, 1, 4, 0);
  emit(OP.LDXW, 5, 1, 8, 0);

  let everything = false;
  for (const rule of checked) {
    const next = newLabel();
    if (rule.type !== undefined) jump(OP.JNE, 2, rule.type, next);
    // A number from 2^31 is sign-extended by the 64-bit compare and then matches nothing, which is right: the
    // kernel's majors have 12 bits and its minors 20.
    if (rule.major !== undefined) jump(OP.JNE, 4, rule.major | 0, next);
    if (rule.minor !== undefined) jump(OP.JNE, 5, rule.minor | 0, next);
    const all = rule.access === ALL_ACCESS;
    if (rule.allow && all) ret(1);
    else if (rule.allow) {
      emit(OP.AND32, 3, 0, 0, ~rule.access);
      jump(OP.JEQ, 3, 0, allowed);
    } else if (all) ret(0);
    else jump(OP.JSET, 3, rule.access, denied);
    place(next);
    everything = all && rule.type === undefined && rule.major === undefined && rule.minor === undefined;
    if (everything) break;
  }
  if (!everything || used.has(denied)) {
    place(denied);
    ret(0);
  }
  if (used.has(allowed)) {
    place(allowed);
    ret(1);
  }

  const out = new Uint8Array(insns.length * 8);
  const view = new DataView(out.buffer);
  insns.forEach((insn, pc) => {
    const off = insn.to === undefined ? insn.off : labels[insn.to]! - pc - 1;
    view.setUint8(pc * 8, insn.code);
    view.setUint8(pc * 8 + 1, (insn.src << 4) | insn.dst);
    view.setInt16(pc * 8 + 2, off, true);
    view.setInt32(pc * 8 + 4, insn.imm, true);
  });
  return out;
}
