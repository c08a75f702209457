"""Plays the runtime's side of src/plan/PROTOCOL.md against dist/pocrun-init (tests only; run as root)."""
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import struct
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
HELPER = os.environ.get('POCRUN_INIT', os.path.join(REPO, 'dist', 'pocrun-init'))

MS = dict(RDONLY=1, NOSUID=2, NODEV=4, NOEXEC=8, REMOUNT=32, BIND=4096, MOVE=8192, REC=16384,
          UNBINDABLE=1 << 17, PRIVATE=1 << 18, SLAVE=1 << 19, SHARED=1 << 20, RELATIME=1 << 21, STRICTATIME=1 << 24)
ALL_CAPS = '1ffffffffff'
DEFAULT_CAPS = (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31)  # docker's default set


def capmask(caps):
    return format(sum(1 << c for c in caps), 'x')


libc = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


# Each step's field counts, from src/vocabulary/steps.ts (written by scripts/gen-native.ts when the helper is built).
with open(os.path.join(REPO, 'src', 'native', 'generated', 'step-counts.json')) as f:
    STEP_COUNTS = json.load(f)


def misfit(step):
    """Why a step does not fit the one definition of steps, or None; a plan of these tests must fit it."""
    counts = STEP_COUNTS.get(step[0]) if step else None
    if counts is None:
        return 'unknown step %r' % (step[:1],)
    n = len(step) - 1
    if n < counts['min'] or (counts['max'] >= 0 and n > counts['max']):
        return '%s: %d fields, expected %d to %d' % (step[0], n, counts['min'], counts['max'])
    return None


def encode(steps, malformed=False):
    """The plan's bytes. Unless `malformed` (a test of the helper's own check), a step that does not fit the table
    is the test's mistake, reported here rather than as the helper's `plan` error."""
    out = bytearray()
    for step in steps:
        bad = None if malformed else misfit(step)
        if bad:
            raise ValueError('test plan: ' + bad)
        out += struct.pack('<I', len(step))
        for field in step:
            b = str(field).encode()
            out += struct.pack('<I', len(b)) + b
    return bytes(out)


def make_rootfs(parent, owner=None):
    root = os.path.join(parent, 'rootfs')
    for d in ('bin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'root', 'home/user'):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy('/bin/busybox', os.path.join(root, 'bin', 'busybox'))
    for a in ('sh', 'ls', 'cat', 'echo', 'mount', 'hostname', 'id', 'sleep', 'true', 'grep', 'stat', 'touch',
              'tty', 'readlink', 'wc', 'head', 'mkdir', 'test', 'pwd', 'uptime', 'env', 'sed', 'tr', 'cut', 'stty'):
        os.symlink('busybox', os.path.join(root, 'bin', a))
    with open(os.path.join(root, 'etc', 'hostname'), 'w') as f:
        f.write('image\n')
    os.chmod(os.path.join(root, 'tmp'), 0o1777)
    if owner is not None:
        for dirpath, dirnames, filenames in os.walk(root):
            for n in [dirpath] + [os.path.join(dirpath, x) for x in dirnames + filenames]:
                os.lchown(n, owner, owner)
    return root


def spawn(argv, fdmap):
    """fork+exec with exactly the fds of fdmap (target -> source); everything else closed."""
    pid = os.fork()
    if pid == 0:
        try:
            high = {t: os.dup(s) + 1000 for t, s in fdmap.items()}
            for t, s in fdmap.items():
                os.dup2(s, high[t])
            for t in fdmap:
                os.dup2(high[t], t)
            top = max(fdmap)
            for fd in range(0, top):
                if fd not in fdmap:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            os.closerange(top + 1, 65536)
            os.execv(argv[0], argv)
        finally:
            os._exit(126)
    return pid


class Result:
    def __init__(self):
        self.lines = []       # messages from the helper
        self.pid = None       # the container init
        self.error = None     # (step, ref, errno, message)
        self.created = False
        self.output = b''     # container stdout+stderr
        self.status = None    # exit status of the container (detach) or the helper (wait)
        self.helper_status = None
        self.helper = None
        self.created_after = None

    @property
    def out(self):
        return self.output.decode(errors='replace')


def run(steps, *, state_dir, mode='detach', on_sync=None, preserve=(), start=True, timeout=15,
        after_created=None, stdin=None, stdio=True, malformed=False):
    """Runs one plan. on_sync(name, pid) returns None (ok) or a JSON string. after_created(result) runs
    between created and start."""
    res = Result()
    plan_r, plan_w = socket.socketpair()
    sync_h, sync_r = socket.socketpair()
    out_r, out_w = os.pipe()
    in_fd = stdin if stdin is not None else os.open('/dev/null', os.O_RDONLY)
    fdmap = {0: in_fd, 1: out_w, 2: out_w} if stdio else {}
    for i, fd in enumerate(preserve):
        fdmap[3 + i] = fd
    plan_fd = 3 + len(preserve)
    fdmap[plan_fd] = plan_r.fileno()
    fdmap[plan_fd + 1] = sync_h.fileno()
    t0 = time.monotonic()
    helper = spawn([HELPER, str(plan_fd), str(plan_fd + 1), str(plan_fd + 1)], fdmap)
    res.helper = helper
    plan_r.close()
    sync_h.close()
    os.close(out_w)
    if stdin is None:
        os.close(in_fd)
    plan_w.sendall(encode(steps, malformed))
    plan_w.shutdown(socket.SHUT_WR)
    plan_w.close()

    deadline = time.monotonic() + timeout
    buf = b''
    output = []
    eof = False
    try:
        while not eof:
            r, _, _ = select.select([sync_r, out_r], [], [], max(0, deadline - time.monotonic()))
            if not r:
                raise TimeoutError('helper timed out; lines so far: %r' % res.lines)
            if out_r in r:
                chunk = os.read(out_r, 65536)
                output.append(chunk)
            if sync_r in r:
                chunk = sync_r.recv(65536)
                if not chunk:
                    eof = True
                buf += chunk
                while b'\n' in buf:
                    line, buf = buf.split(b'\n', 1)
                    line = line.decode()
                    res.lines.append(line)
                    word, _, arg = line.partition(' ')
                    if word == 'pid':
                        res.pid = int(arg)
                    elif word == 'sync':
                        reply = on_sync(arg, res.pid) if on_sync else None
                        sync_r.sendall(b'ok\n' if reply is None else b'ok ' + reply.encode() + b'\n')
                    elif word == 'created':
                        res.created = True
                        res.created_after = time.monotonic() - t0
                    elif word == 'error':
                        res.error = tuple(arg.split('\t', 3))
        sync_r.close()
        if res.created and after_created:
            after_created(res)
        if res.created and start and mode != 'fork':
            start_container(state_dir, deadline)
        if res.created and not start:
            return res
        # the rest of the output, until every writer is gone
        while True:
            r, _, _ = select.select([out_r], [], [], max(0, deadline - time.monotonic()))
            if not r:
                raise TimeoutError('container timed out; output so far: %r' % b''.join(output))
            chunk = os.read(out_r, 65536)
            if not chunk:
                break
            output.append(chunk)
        res.output = b''.join(output)
        _, st = os.waitpid(helper, 0)
        res.helper_status = os.waitstatus_to_exitcode(st)
        if mode == 'wait':
            res.status = res.helper_status
        elif res.pid and res.created:
            _, st = os.waitpid(res.pid, 0)
            res.status = os.waitstatus_to_exitcode(st)
        elif res.pid:
            try:
                _, st = os.waitpid(res.pid, 0)
            except ChildProcessError:
                pass
        return res
    except BaseException:
        kill_started(helper, res.pid)
        raise
    finally:
        try:
            os.close(out_r)
        except OSError:
            pass


def start_container(state_dir, deadline):
    """`pocrun start`: read the byte the init writes into exec.fifo."""
    fifo = os.open(os.path.join(state_dir, 'exec.fifo'), os.O_RDONLY | os.O_NONBLOCK)
    try:
        while True:
            try:
                if os.read(fifo, 1):
                    return
            except BlockingIOError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError('the init never opened exec.fifo')
            time.sleep(0.001)
    finally:
        os.close(fifo)


def kill_started(*pids):
    """Kills the processes this harness started (by pid) and reaps them."""
    for pid in pids:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for pid in pids:
        if pid:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def reap_all():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Workdir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix='pocrun-native-test.')
        os.chmod(self.path, 0o755)

    def sub(self, name, mode=0o711):
        p = os.path.join(self.path, name)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        return p

    def cleanup(self):
        with open('/proc/self/mountinfo') as f:
            leaked = [l for l in f if self.path in l]
        if leaked:
            raise RuntimeError('mounts leaked under %s: %s' % (self.path, leaked))
        shutil.rmtree(self.path)
