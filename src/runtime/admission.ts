import { closeSync, readlinkSync } from 'node:fs';

/**
 * The admission slot the native front took for create, run or exec (src/native/front/admission.c): an inherited
 * fd holding an OFD lock on one byte of ROOT/.create-slots. Closing it lets the next waiting command in.
 *
 * It is released once the container (or the exec'd process) is created, and before any hook runs: a hook is
 * somebody else's program, and one that starts a container must not wait for its own parent's slot.
 * Taken from the environment when create's or exec's code loads, before either spawns anything, so that no
 * child (helper, hook) sees the variable; Bun.spawn passes no fd beyond the ones listed, so none gets the lock.
 */
let slotFd = slotFdOf(process.env.POCRUN_SLOT_FD);
delete process.env.POCRUN_SLOT_FD;

function slotFdOf(text: string | undefined): number {
  const fd = Number(text);
  if (!text || !Number.isInteger(fd) || fd < 3) return -1;
  // Only an fd that is the slot file: a stray variable must never make pocrun close an fd it was given.
  try {
    return readlinkSync(`/proc/self/fd/${fd}`).endsWith('/.create-slots') ? fd : -1;
  } catch {
    return -1;
  }
}

export function releaseSlot(): void {
  if (slotFd < 0) return;
  try {
    closeSync(slotFd);
  } catch {
    /* already closed */
  }
  slotFd = -1;
}

/**
 * Releases the slot now if its fd is among those passed on with --preserve-fds (3 .. 2+n): the front put it
 * above 100, so it is there only where the caller left that fd unopened, and the container must not get it.
 */
export function releaseSlotIfPreserved(preserveFds: number): void {
  if (slotFd >= 3 && slotFd < 3 + preserveFds) releaseSlot();
}
