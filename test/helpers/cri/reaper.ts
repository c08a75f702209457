/**
 * The private containerd's watchdog (test/helpers/cri.ts starts it, detached): when the test process that
 * started containerd dies without stopping it (a runner's timeout, SIGKILL), it removes everything that
 * containerd made. It exits as soon as the work directory is gone (a clean stop removes it).
 *
 * usage: node --import tsx reaper.ts TEST_PID WORK CONTAINERD_PID CGROUP_PARENT MADE_RUN_CONTAINERD(true|false)
 */
import { existsSync } from 'node:fs';
import { removeLeftovers } from '../cri.js';

const [testPid, work, containerdPid, cgroupParent, madeRunContainerd] = process.argv.slice(2);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const timer = setInterval(() => {
  if (!existsSync(work!)) {
    clearInterval(timer);
    return;
  }
  if (!alive(Number(testPid))) {
    clearInterval(timer);
    removeLeftovers(work!, Number(containerdPid), cgroupParent!, madeRunContainerd === 'true');
  }
}, 500);
