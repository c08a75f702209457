#!/usr/bin/env python3
"""Checks dist/pocrun-init against a busybox rootfs, playing the runtime (as root):
    make -C src/native && python3 test/native/run-tests.py [name-filter]
Everything made here lives under a temp dir (removed at the end) and in the containers' own mount namespaces;
the only cgroup touched is /sys/fs/cgroup/pids/pocrun-native-test (made and removed)."""
import sys
sys.dont_write_bytecode = True
import errno
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(__file__))
from harness import (ALL_CAPS, DEFAULT_CAPS, MS, Workdir, become_subreaper, capmask, kill_started, make_rootfs, misfit,  # noqa: E402
                     reap_all, run, start_container)

APPLETS_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
MASKED = ['/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/scsi', '/sys/firmware',
          '/proc/does-not-exist']
READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']
DEVICES = [('/dev/null', 1, 3), ('/dev/zero', 1, 5), ('/dev/full', 1, 7), ('/dev/random', 1, 8),
           ('/dev/urandom', 1, 9), ('/dev/tty', 5, 0)]
LINKS = [('/proc/self/fd', '/dev/fd'), ('/proc/self/fd/0', '/dev/stdin'), ('/proc/self/fd/1', '/dev/stdout'),
         ('/proc/self/fd/2', '/dev/stderr'), ('pts/ptmx', '/dev/ptmx')]


def f(*names):
    v = 0
    for n in names:
        v |= MS[n]
    return str(v)


def std_mounts(userns=False):
    return [
        ['mount', 'proc', '/proc', 'proc', f('NOSUID', 'NOEXEC', 'NODEV'), '', 'dir', '/mounts/0'],
        ['mount', 'tmpfs', '/dev', 'tmpfs', f('NOSUID', 'STRICTATIME'), 'mode=755,size=65536k', 'dir', '/mounts/1'],
        ['mount', 'devpts', '/dev/pts', 'devpts', f('NOSUID', 'NOEXEC'),
         'newinstance,ptmxmode=0666,mode=0620' + ('' if userns else ',gid=5'), 'dir', '/mounts/2'],
        ['mount', 'shm', '/dev/shm', 'tmpfs', f('NOSUID', 'NOEXEC', 'NODEV'), 'mode=1777,size=65536k', 'dir', '/mounts/3'],
        ['mount', 'mqueue', '/dev/mqueue', 'mqueue', f('NOSUID', 'NOEXEC', 'NODEV'), '', 'dir', '/mounts/4'],
        ['mount', 'sysfs', '/sys', 'sysfs', f('NOSUID', 'NOEXEC', 'NODEV', 'RDONLY'), '', 'dir', '/mounts/5'],
    ]


def plan(root, state, script, *, mode='detach', ns=('mnt', 'pid', 'uts', 'ipc', 'net'), userns=False,
         mounts=None, extra_mounts=(), pivot=True, hostname='box', uid=0, gid=0, groups=(),
         caps=None, before_pivot=(), after_pivot=(), process_extra=(), env=('FOO=bar',), cwd='/',
         argv=None, parent=(), root_id=0, preserve=0, start_hooks=False, no_fifo=False):
    steps = list(parent)
    if not no_fifo:
        steps.append(['exec-fifo', state, root_id, root_id])
    steps.append(['clone', mode] + list(ns) + (['user'] if userns else []))
    if userns:
        steps.append(['sync', 'maps'])
    steps += [['setsid'], ['propagation', '/', f('SLAVE', 'REC'), '/linux/rootfsPropagation'],
              ['rootfs', root, '/root/path']]
    steps += std_mounts(userns) if mounts is None else mounts
    steps += list(extra_mounts)
    for i, (path, major, minor) in enumerate(DEVICES):
        ref = 'default device ' + path
        steps.append(['bind-dev', path, path, ref] if userns
                     else ['mknod', path, 'c', major, minor, '666', root_id, root_id, ref])
    for target, link in LINKS:
        steps.append(['symlink', target, link, '/dev'])
    steps += list(before_pivot)
    steps.append(['pivot-root', '/root/path'] if pivot else ['chroot', '/root/path'])
    steps += list(after_pivot)
    for i, p in enumerate(MASKED):
        steps.append(['mask', p, '/linux/maskedPaths/%d' % i])
    for i, p in enumerate(READONLY):
        steps.append(['readonly', p, '/linux/readonlyPaths/%d' % i])
    if hostname:
        steps.append(['hostname', hostname, '/hostname'])
    steps += process_steps(script, uid=uid, gid=gid, groups=groups, caps=caps, extra=process_extra, env=env,
                           cwd=cwd, argv=argv, preserve=preserve, start_hooks=start_hooks, no_fifo=no_fifo)
    return steps


def process_steps(script, *, uid=0, gid=0, groups=(), caps=None, extra=(), env=('FOO=bar',), cwd='/', argv=None,
                  preserve=0, start_hooks=False, no_fifo=False):
    caps = caps or [capmask(DEFAULT_CAPS)] * 4 + ['0']
    argv = argv or ['sh', '-c', script]
    steps = [['chdir', cwd, '/process/cwd']] + list(extra)
    steps += [['keep-caps'], ['groups'] + list(groups), ['user', uid, gid, '/process/user'],
              ['caps'] + list(caps) + ['/process/capabilities']]
    steps += [['env', e] for e in env] + [['env', 'PATH=' + APPLETS_PATH]]
    steps += [['exec', len(argv)] + argv + ['/process/args'], ['created']]
    if not no_fifo:
        steps.append(['wait-start'])
    if start_hooks:
        steps.append(['run-hooks', 'startContainer'])
    steps += [['close-fds', 3 + preserve], ['execve']]
    return steps


def kv(out):
    d = {}
    for line in out.splitlines():
        k, sep, v = line.partition('=')
        if sep:
            d[k.strip()] = v.strip()
    return d


class Fail(Exception):
    pass


def check(cond, what, detail=''):
    if not cond:
        raise Fail('%s%s' % (what, (': ' + str(detail)) if detail else ''))


def status_caps(d):
    return {k: int(d[k], 16) for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')}


PROBE = r'''
echo pid=$$
echo host=$(hostname)
echo id=$(id -u):$(id -g)
echo groups=$(id -G)
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status | sed 's/:[[:space:]]*/=/'
echo fds=$(ls /proc/self/fd | tr '\n' ' ')
echo fd3=$(readlink /proc/self/fd/3)
echo null=$(stat -c '%F %t:%T' /dev/null)
echo tty=$(stat -c '%F %t:%T' /dev/tty)
echo ptmx=$(readlink /dev/ptmx)
echo stdout=$(readlink /dev/stdout)
echo kcore=$(cat /proc/timer_list | wc -c)
echo acpi=$(ls /proc/acpi | wc -l)
echo acpimnt=$(grep ' /proc/acpi ' /proc/mounts | cut -d' ' -f3,4)
echo procsys=$(grep ' /proc/sys ' /proc/mounts | cut -d' ' -f4)
echo procirq=$(grep ' /proc/irq ' /proc/mounts | cut -d' ' -f4)
echo mounts=$(cut -d' ' -f2,3 /proc/mounts | grep -E '^/(proc|sys|dev|dev/pts|dev/shm|dev/mqueue|tmp) ' | tr ' ' ':' | tr '\n' ',')
echo sysro=$(grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1)
echo cwd=$(pwd)
echo umask=$(umask)
echo env=$FOO
echo nofile=$(ulimit -n)
echo shmrmid=$(cat /proc/sys/kernel/shm_rmid_forced)
echo oom=$(cat /proc/self/oom_score_adj)
echo rootls=$(ls / | tr '\n' ' ')
echo sessleader=$(cut -d' ' -f6 /proc/self/stat)
'''


# ---------------------------------------------------------------- tests

def t_basic(w):
    """pivot_root, standard mounts, mknod devices, user 1000, caps with ambient, masks, read-only paths, sysctl,
    rlimit, oom_score_adj, umask, cwd, no-new-privs, a preserved fd, no leaked fds."""
    root = make_rootfs(w.sub('basic'))
    state = w.sub('basic-state')
    r_fd, w_fd = os.pipe()
    os.write(w_fd, b'x')
    amb = capmask([10])
    caps = [capmask(DEFAULT_CAPS), capmask(DEFAULT_CAPS), capmask(DEFAULT_CAPS), capmask(DEFAULT_CAPS), amb]
    steps = plan(root, state, PROBE, uid=1000, gid=1000, groups=(10, 20), caps=caps, cwd='/home/user',
                 preserve=1,
                 after_pivot=[['sysctl', 'kernel.shm_rmid_forced', '1', '/linux/sysctl/kernel.shm_rmid_forced'],
                              ['oom-score-adj', '100', '/process/oomScoreAdj'],
                              ['rlimit', '7', '1024', '2048', '/process/rlimits/0']],
                 process_extra=[['umask', '27', '/process/user/umask'], ['no-new-privs', '/process/noNewPrivileges']])
    # no-new-privs comes after caps in the real plan; putting it before is fine for the kernel as well
    res = run(steps, state_dir=state, preserve=[r_fd])
    os.close(r_fd)
    os.close(w_fd)
    check(res.error is None, 'no error', res.error)
    check(res.status == 0, 'exit 0', (res.status, res.out))
    d = kv(res.out)
    check(d.get('pid') == '1', 'pid 1 in the new pid namespace', d.get('pid'))
    check(d.get('host') == 'box', 'hostname', d.get('host'))
    check(d.get('id') == '1000:1000', 'uid:gid', d.get('id'))
    check(d.get('groups') == '1000 10 20', 'groups', d.get('groups'))
    c = status_caps(d)
    check(c['CapBnd'] == int(capmask(DEFAULT_CAPS), 16), 'bounding', hex(c['CapBnd']))
    check(c['CapAmb'] == 1 << 10 and c['CapPrm'] == 1 << 10 and c['CapEff'] == 1 << 10, 'ambient caps', c)
    check(c['CapInh'] == int(capmask(DEFAULT_CAPS), 16), 'inheritable', hex(c['CapInh']))
    check(d.get('NoNewPrivs') == '1', 'no_new_privs', d.get('NoNewPrivs'))
    fds = set(d.get('fds', '').split())
    check(fds == {'0', '1', '2', '3', '4'}, 'only stdio, the preserved fd and ls\'s own', fds)
    check(d.get('fd3', '').startswith('pipe:'), 'fd 3 is the preserved pipe', d.get('fd3'))
    check(d.get('null') == 'character special file 1:3', '/dev/null', d.get('null'))
    check(d.get('tty') == 'character special file 5:0', '/dev/tty', d.get('tty'))
    check(d.get('ptmx') == 'pts/ptmx', '/dev/ptmx link', d.get('ptmx'))
    check(d.get('kcore') == '0', '/proc/timer_list masked', d.get('kcore'))
    check(d.get('acpi') == '0' and d.get('acpimnt', '').startswith('tmpfs ro'), '/proc/acpi masked', d)
    check(d.get('procsys', '').startswith('ro,'), '/proc/sys read-only', d.get('procsys'))
    check(d.get('procirq', '').startswith('ro,'), '/proc/irq read-only', res.out)
    for m in ('/proc:proc', '/dev:tmpfs', '/dev/pts:devpts', '/dev/shm:tmpfs', '/dev/mqueue:mqueue', '/sys:sysfs'):
        check(m in d.get('mounts', ''), 'mount ' + m, d.get('mounts'))
    check(d.get('sysro') == 'ro', 'sysfs read-only', d.get('sysro'))
    check(d.get('cwd') == '/home/user', 'cwd', d.get('cwd'))
    check(d.get('umask') == '0027', 'umask', d.get('umask'))
    check(d.get('env') == 'bar', 'env', d.get('env'))
    check(d.get('nofile') == '1024', 'rlimit', d.get('nofile'))
    check(d.get('shmrmid') == '1', 'sysctl', d.get('shmrmid'))
    check(d.get('oom') == '100', 'oom_score_adj', d.get('oom'))
    check('bin' in d.get('rootls', '') and 'rootfs' not in d.get('rootls', ''), 'root is the rootfs', d.get('rootls'))
    check(d.get('sessleader') == '1', 'setsid: session of pid 1', d.get('sessleader'))
    check(res.lines[0].startswith('pid ') and res.lines[-1] == 'created', 'messages', res.lines)
    return 'created after %.1f ms' % (res.created_after * 1000)


def t_root_caps(w):
    """uid 0 with a reduced bounding set; a read-only rootfs; exec by absolute path."""
    root = make_rootfs(w.sub('rootcaps'))
    state = w.sub('rootcaps-state')
    script = PROBE + '\ntouch /newfile 2>&1; echo rc=$?'
    steps = plan(root, state, script, after_pivot=[['remount-root', str(MS['RDONLY']), '/root/readonly']],
                 argv=['/bin/sh', '-c', script])
    res = run(steps, state_dir=state)
    check(res.error is None and res.status == 0, 'ran', (res.error, res.status, res.out))
    d = kv(res.out)
    c = status_caps(d)
    want = int(capmask(DEFAULT_CAPS), 16)
    check(c['CapBnd'] == want and c['CapEff'] == want and c['CapPrm'] == want and c['CapAmb'] == 0, 'caps', c)
    check('Read-only file system' in res.out and d.get('rc') == '1', 'rootfs read-only', res.out)


def t_chroot(w):
    """--no-pivot: MS_MOVE + chroot."""
    root = make_rootfs(w.sub('chroot'))
    state = w.sub('chroot-state')
    res = run(plan(root, state, PROBE, pivot=False), state_dir=state)
    check(res.error is None and res.status == 0, 'ran', (res.error, res.status, res.out))
    d = kv(res.out)
    check(d.get('pid') == '1' and d.get('host') == 'box', 'pid/host', d)
    check('bin' in d.get('rootls', '') and d.get('kcore') == '0', 'root and masks', d)
    check(d.get('null') == 'character special file 1:3', '/dev/null', d.get('null'))


def t_errors(w):
    """Failing steps report one error line with step, ref, errno and a useful message."""
    root = make_rootfs(w.sub('errors'))
    state = w.sub('errors-state')

    def expect(steps, step, ref, err, message, regex=False, malformed=False):
        for name in os.listdir(state):
            os.unlink(os.path.join(state, name))
        res = run(steps, state_dir=state, malformed=malformed)
        check(res.error is not None, 'an error line for ' + message, res.lines)
        check(res.error[0] == step and res.error[1] == ref and res.error[2] == str(err), 'error fields', res.error)
        ok = re.search(message, res.error[3]) if regex else res.error[3] == message
        check(ok, 'error message', res.error[3])
        check(not res.created, 'not created', res.lines)
        check(res.lines[-1].startswith('error '), 'error is the last line', res.lines)

    bad = ['mount', 'nosuchfs', '/x', 'nosuchfs', '0', '', 'dir', '/mounts/9']
    expect(plan(root, state, 'true', extra_mounts=[bad]), 'mount', '/mounts/9', errno.ENODEV,
           'mount nosuchfs on /x: No such device')
    bad = ['mount', '/nonexistent-src', '/y', '', str(MS['BIND']), '', 'auto', '/mounts/7']
    expect(plan(root, state, 'true', extra_mounts=[bad]), 'mount', '/mounts/7', errno.ENOENT,
           'bind /nonexistent-src on /y: stat /nonexistent-src: No such file or directory')
    expect(plan(root, state, '', argv=['nosuch']), 'exec', '/process/args', errno.ENOENT,
           'exec: "nosuch": executable file not found in $PATH')
    expect(plan(root, state, '', argv=['/bin/nosuch']), 'exec', '/process/args', errno.ENOENT,
           'exec: "/bin/nosuch": No such file or directory')
    expect(plan(root, state, '', argv=['/bin']), 'exec', '/process/args', errno.EISDIR,
           'exec: "/bin": Is a directory')
    expect(plan(root, state, 'true', cwd='/nope'), 'chdir', '/process/cwd', errno.ENOENT,
           'chdir /nope: No such file or directory')
    expect(plan(root, state, 'true', process_extra=[['seccomp-init', 'bogus', '-', '', '/linux/seccomp/defaultAction']]),
           'seccomp-init', '/linux/seccomp/defaultAction', errno.EINVAL, 'bogus', regex=True)
    expect(plan(root, state, 'true', parent=[['setns', '/nonexistent/ns', 'net', '/linux/namespaces/3']]),
           'setns', '/linux/namespaces/3', errno.ENOENT,
           'open net namespace /nonexistent/ns: No such file or directory')
    expect(plan(root, state, 'true', after_pivot=[['rlimit', '7', '10', '5', '/process/rlimits/0']]),
           'rlimit', '/process/rlimits/0', errno.EINVAL, 'setrlimit RLIMIT_NOFILE (soft 10, hard 5): Invalid argument')
    expect(plan(root, state, 'true', after_pivot=[['sysctl', 'kernel.nosuchkey', '1', '/linux/sysctl/kernel.nosuchkey']]),
           'sysctl', '/linux/sysctl/kernel.nosuchkey', errno.ENOENT,
           'sysctl kernel.nosuchkey=1: open /proc/sys/kernel/nosuchkey: No such file or directory')
    expect([['clone', 'detach'], ['bogus-step', 'x']], 'plan', '-', errno.EINVAL, 'step 1: unknown step "bogus-step"',
           malformed=True)
    expect([['clone', 'detach'], ['mount', 'a', 'b']], 'plan', '-', errno.EINVAL,
           'step 1 (mount): 2 fields, expected 7', malformed=True)
    check(misfit(['mount', 'a', 'b']) == 'mount: 2 fields, expected 7 to 7', 'the harness checks plans', misfit(['mount', 'a', 'b']))
    # a failure in the parent stage, before clone: no pid line
    res = run([['exec-fifo', '/nonexistent-dir', '0', '0'], ['clone', 'detach'], ['execve']], state_dir=state)
    check(res.error and res.error[0] == 'exec-fifo' and res.pid is None, 'parent-stage error', res.lines)


def t_abort(w):
    """`abort` (or anything but ok) makes the child exit 1 without an error line."""
    root = make_rootfs(w.sub('abort'))
    state = w.sub('abort-state')
    steps = plan(root, state, 'true')
    steps.insert(steps.index(['setsid']), ['sync', 'hooks'])
    res = run_with_reply(steps, state, b'abort\n')
    check(res.error is None and not res.created, 'no error line, not created', res.lines)
    check(res.lines == ['pid %d' % res.pid, 'sync hooks'], 'messages', res.lines)


def run_with_reply(steps, state, reply):
    import harness
    real = socket.socket.sendall

    def sendall(self, data, *a):
        if data.startswith(b'ok'):
            data = reply
        return real(self, data, *a)
    socket.socket.sendall = sendall
    try:
        res = harness.run(steps, state_dir=state, on_sync=lambda n, p: None)
    finally:
        socket.socket.sendall = real
    # detach mode: collect the child's status
    return res


def t_evil_symlink(w):
    """A symlink in the rootfs pointing outside (evil -> /etc) used as a mount destination lands inside."""
    base = w.sub('evil')
    root = make_rootfs(base)
    state = w.sub('evil-state')
    os.symlink('/etc', os.path.join(root, 'evil'))
    os.symlink('../../../../../../tmp', os.path.join(root, 'evil2'))
    host_etc = os.stat('/etc')
    mounts = std_mounts() + [
        ['mount', 'tmpfs', '/evil', 'tmpfs', '0', 'size=1m', 'dir', '/mounts/6'],
        ['mount', 'tmpfs', '/evil2/pocrun-hostleak/deeper', 'tmpfs', '0', 'size=1m', 'dir', '/mounts/7'],
        ['mount', '/etc/hostname', '/evil2/boundfile', '', str(MS['BIND'] | MS['RDONLY']), '', 'auto', '/mounts/8'],
    ]
    script = ('echo etc=$(grep " /etc " /proc/mounts | cut -d" " -f3); echo deeper=$(grep " /tmp/pocrun-hostleak/deeper " '
              '/proc/mounts | cut -d" " -f3); echo boundfile=$(grep " /tmp/boundfile " /proc/mounts | cut -d" " -f4 | cut -d, -f1)')
    res = run(plan(root, state, script, mounts=mounts), state_dir=state)
    check(res.error is None and res.status == 0, 'ran', (res.error, res.status, res.out))
    d = kv(res.out)
    check(d.get('etc') == 'tmpfs', 'tmpfs on the container\'s /etc', res.out)
    check(d.get('deeper') == 'tmpfs', 'tmpfs on /tmp/pocrun-hostleak/deeper inside', res.out)
    check(d.get('boundfile') == 'ro', 'file bind read-only inside', res.out)
    check(not os.path.exists('/tmp/pocrun-hostleak') and not os.path.exists('/tmp/boundfile'), 'nothing made in the host /tmp')
    check(os.path.isdir(os.path.join(root, 'tmp', 'pocrun-hostleak', 'deeper')), 'made in the rootfs /tmp')
    check(os.path.isfile(os.path.join(root, 'tmp', 'boundfile')), 'file made in the rootfs /tmp')
    check(os.stat('/etc') == host_etc, 'host /etc untouched')
    with open('/proc/self/mountinfo') as fh:
        check(' /etc ' not in fh.read(), 'no mount on the host /etc')


def t_hooks(w):
    """createContainer and startContainer hooks: state on stdin, argv, env; failure and timeout messages."""
    root = make_rootfs(w.sub('hooks'))
    state = w.sub('hooks-state')
    out = w.sub('hooks-out', 0o777)
    hook = os.path.join(out, 'hook.sh')
    with open(hook, 'w') as fh:
        fh.write('#!/bin/sh\ncat > %s/state; echo "$1 $HOOKVAR" > %s/args\nls /proc/self/fd > %s/fds\n'
                 % (out, out, out))
    os.chmod(hook, 0o755)
    state_json = '{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":42,"bundle":"/b"}'
    hooks = [['sync', 'hooks'],
             ['hook', 'createContainer', '5', hook, '2', 'myhook', 'arg1', '1', 'HOOKVAR=v', '/hooks/createContainer/0'],
             ['hook', 'startContainer', '0', '/bin/sh', '3', 'sh', '-c', 'cat > /tmp/started', '0',
              '/hooks/startContainer/0'],
             ['run-hooks', 'createContainer']]
    mounts = std_mounts() + [['mount', 'tmpfs', '/tmp', 'tmpfs', '0', '', 'dir', '/mounts/6']]
    steps = plan(root, state, 'cat /tmp/started', mounts=mounts, before_pivot=hooks, start_hooks=True)
    res = run(steps, state_dir=state, on_sync=lambda name, pid: state_json if name == 'hooks' else None)
    check(res.error is None and res.status == 0, 'ran', (res.error, res.status, res.out))
    check(open(os.path.join(out, 'state')).read() == state_json, 'createContainer got the state on stdin')
    check(open(os.path.join(out, 'args')).read().strip() == 'arg1 v', 'argv and env',
          open(os.path.join(out, 'args')).read())
    fds = open(os.path.join(out, 'fds')).read().split()
    check(fds == ['0', '1', '2', '3'], 'the hook has only stdio', fds)
    check(res.out == state_json, 'startContainer got the state', res.out)

    def failing(body, timeout, message, err=0):
        for name in os.listdir(state):
            os.unlink(os.path.join(state, name))
        bad = os.path.join(out, 'bad.sh')
        with open(bad, 'w') as fh:
            fh.write('#!/bin/sh\n' + body)
        os.chmod(bad, 0o755)
        hs = [['sync', 'hooks'],
              ['hook', 'createContainer', '0', hook, '1', hook, '0', '/hooks/createContainer/0'],
              ['hook', 'createContainer', timeout, bad, '0', '0', '/hooks/createContainer/1'],
              ['run-hooks', 'createContainer']]
        t0 = time.monotonic()
        res = run(plan(root, state, 'true', before_pivot=hs), state_dir=state, on_sync=lambda n, p: state_json)
        check(res.error is not None, 'hook error', res.lines)
        check(res.error[:3] == ('run-hooks', '/hooks/createContainer/1', str(err)), 'error fields', res.error)
        check(res.error[3] == message, 'hook message', res.error[3])
        return time.monotonic() - t0

    failing('echo boom >&2; exit 3', '0', 'hook %s/bad.sh: exit status 3: boom' % out)
    failing('kill -9 $$', '0', 'hook %s/bad.sh: killed by signal 9' % out)
    took = failing('echo sleeping; exec sleep 30', '1', 'hook %s/bad.sh: timed out after 1s: sleeping' % out,
                   errno.ETIMEDOUT)
    check(took < 3, 'the timeout kills the hook', took)
    os.unlink(os.path.join(out, 'bad.sh'))
    failing_missing = [['sync', 'hooks'], ['hook', 'createContainer', '0', '/nonexistent/hook', '0', '0',
                                           '/hooks/createContainer/0'], ['run-hooks', 'createContainer']]
    for name in os.listdir(state):
        os.unlink(os.path.join(state, name))
    res = run(plan(root, state, 'true', before_pivot=failing_missing), state_dir=state)
    check(res.error and res.error[3] == 'hook /nonexistent/hook: exit status 127: exec /nonexistent/hook: No such file '
          'or directory', 'missing hook', res.error)


def t_console(w):
    """The pty master goes over the console socket; the slave is stdio, controlling tty and /dev/console."""
    root = make_rootfs(w.sub('console'))
    state = w.sub('console-state')
    sock_path = os.path.join(w.sub('console-sock'), 'console.sock')
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    script = ('echo tty=$(tty); echo console=$(stat -c "%F %t" /dev/console); echo ctty=$(cut -d" " -f7 /proc/self/stat); '
              'echo fds=$(ls /proc/self/fd | tr "\\n" " "); stty size')
    steps = plan(root, state, script, parent=[['console-connect', sock_path, '/process/terminal']],
                 after_pivot=[['console', '40', '100', '/process/terminal']])
    got = {}
    chunks = []

    def after_created(res):
        conn, _ = listener.accept()
        msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        conn.close()
        got['name'] = msg.decode()
        got['fd'] = fds[0]

        def reader():
            while True:
                try:
                    c = os.read(fds[0], 4096)
                except OSError:
                    break
                if not c:
                    break
                chunks.append(c)
        got['thread'] = threading.Thread(target=reader, daemon=True)
        got['thread'].start()

    try:
        res = run(steps, state_dir=state, after_created=after_created)
        got['thread'].join(5)
    finally:
        listener.close()
        if 'fd' in got:
            os.close(got['fd'])
    check(res.error is None and res.status == 0, 'ran', (res.error, res.status, res.out))
    out = b''.join(chunks).decode().replace('\r', '')
    d = kv(out)
    check(re.fullmatch(r'/dev/pts/\d+', got.get('name', '')), 'payload is the pty name', got.get('name'))
    check(d.get('tty') == got['name'], 'stdin is the pty', out)
    check(d.get('console', '').startswith('character special file 88'), '/dev/console is the pty', out)
    check(d.get('ctty', '0') != '0', 'controlling terminal', out)
    check(set(d.get('fds', '').split()) == {'0', '1', '2', '3'}, 'no leaked fds (console socket, master)', out)
    check('40 100' in out, 'console size', out)


def t_userns(w):
    """A new user namespace: maps written at `sync maps`, root of the namespace afterwards, bind-dev devices,
    state dir not searchable by the container's root."""
    base = w.sub('userns')
    root = make_rootfs(base, owner=100000)
    state = w.sub('userns-state', 0o700)
    maps = []

    def on_sync(name, pid):
        if name == 'maps':
            for m in ('uid_map', 'gid_map'):
                with open('/proc/%d/%s' % (pid, m), 'w') as fh:
                    fh.write('0 100000 65536\n')
            maps.append(pid)
        return None
    extra = [['mount', 'tmpfs', '/newdir/sub', 'tmpfs', '0', '', 'dir', '/mounts/6']]
    script = PROBE + '\necho devnull=$(echo x > /dev/null && echo ok)\necho mkd=$(stat -c %u:%g /newdir)'
    steps = plan(root, state, script, userns=True, extra_mounts=extra, root_id=100000)
    res = run(steps, state_dir=state, on_sync=on_sync)
    check(res.error is None and res.status == 0, 'ran', (res.error, res.status, res.out))
    check(maps, 'sync maps')
    d = kv(res.out)
    check(d.get('id') == '0:0' and d.get('pid') == '1', 'root of the user namespace', d)
    check(d.get('null') == 'character special file 1:3' and d.get('devnull') == 'ok', 'bind-dev /dev/null', d)
    st = os.stat(os.path.join(root, 'newdir'))
    check((st.st_uid, st.st_gid) == (100000, 100000), 'mount points made by the namespace root', (st.st_uid, st.st_gid))
    check(d.get('mkd') == '0:0', 'seen as root inside', d.get('mkd'))
    check(d.get('kcore') == '0' and d.get('procsys', '').startswith('ro,'), 'masks in a user namespace', d)
    st = os.stat(os.path.join(state, 'exec.fifo'))
    check(st.st_uid == 100000 and oct(st.st_mode & 0o777) == '0o622', 'exec.fifo owner and mode', st)


def t_wait(w):
    """wait mode: the helper exits with the container's status, 128+signal, and forwards signals."""
    root = make_rootfs(w.sub('wait'))
    state = w.sub('wait-state')
    res = run(plan(root, state, 'exit 7', mode='wait'), state_dir=state, mode='wait')
    check(res.error is None and res.status == 7, 'exit status 7', (res.status, res.error))
    check(res.lines[0].startswith('pid '), 'pid line', res.lines)

    for name in os.listdir(state):
        os.unlink(os.path.join(state, name))
    # pid 1 with a trap: SIGTERM to the helper reaches it
    script = 'trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done'
    res = run_signal(plan(root, state, script, mode='wait'), state, signal.SIGTERM)
    check(res.status == 42, 'SIGTERM forwarded, trapped', (res.status, res.out))

    for name in os.listdir(state):
        os.unlink(os.path.join(state, name))
    # no pid namespace: the default action kills it -> 128+15
    res = run_signal(plan(root, state, 'echo ready; exec sleep 30', mode='wait', ns=('mnt', 'uts', 'ipc')), state,
                     signal.SIGTERM)
    check(res.status == 128 + signal.SIGTERM, 'killed by SIGTERM -> 143', res.status)


def run_signal(steps, state, sig):
    import harness
    helper_pid = {}
    real_spawn = harness.spawn

    def spawn(argv, fdmap):
        pid = real_spawn(argv, fdmap)
        helper_pid['pid'] = pid
        return pid
    harness.spawn = spawn

    def fire():
        time.sleep(0.5)
        os.kill(helper_pid['pid'], sig)
    try:
        t = threading.Thread(target=fire, daemon=True)

        def after_created(res):
            t.start()
        res = harness.run(steps, state_dir=state, mode='wait', after_created=after_created)
        t.join()
        return res
    finally:
        harness.spawn = real_spawn


def t_exec_fork(w):
    """fork mode (pocrun exec): join a running container's namespaces with setns and run a process there."""
    root = make_rootfs(w.sub('exec'))
    state = w.sub('exec-state')
    ready = {}

    def after_created(res):
        ready['pid'] = res.pid

    import harness
    # start a container that waits for a line on a pipe, in the background
    stop_r, stop_w = os.pipe()
    box = {}

    def bg():
        try:
            box['res'] = run(plan(root, state, 'read x; echo done'), state_dir=state, after_created=after_created,
                             stdin=stop_r)
        except Exception as e:  # noqa: BLE001
            box['err'] = e
    t = threading.Thread(target=bg)
    t.start()
    try:
        deadline = time.monotonic() + 5
        while 'pid' not in ready and time.monotonic() < deadline:
            time.sleep(0.02)
        check('pid' in ready, 'container created')
        time.sleep(0.2)
        pid = ready['pid']
        parent = [['setns', '/proc/%d/ns/%s' % (pid, n), n, '-'] for n in ('ipc', 'uts', 'net', 'pid', 'mnt')]
        script = 'echo host=$(hostname); echo pid1=$(cat /proc/1/comm); echo me=$$; echo fds=$(ls /proc/self/fd | tr "\\n" " ")'
        steps = parent + [['clone', 'fork']] + process_steps(script, uid=1000, gid=1000, no_fifo=True)
        res = run(steps, state_dir=state, mode='fork')
        check(res.error is None and res.status == 0, 'exec ran', (res.error, res.status, res.out, res.lines))
        d = kv(res.out)
        check(d.get('host') == 'box' and d.get('pid1') in ('sh', 'busybox'), 'inside the container', res.out)
        check(d.get('me') not in (None, '1'), 'not pid 1', d.get('me'))
        check(set(d.get('fds', '').split()) == {'0', '1', '2', '3'}, 'no leaked fds', d.get('fds'))
    finally:
        os.write(stop_w, b'\n')
        t.join(10)
        os.close(stop_w)
        os.close(stop_r)
    check('err' not in box, 'background container', box.get('err'))
    check(box['res'].status == 0 and 'done' in box['res'].out, 'background container finished', box['res'].out)
    del harness


CGROUP = '/sys/fs/cgroup/pids/pocrun-native-test'


def t_cgroup(w):
    """cgroup-join in the parent stage: the container starts in the cgroup."""
    if not os.path.isdir('/sys/fs/cgroup/pids'):
        return 'skipped (no pids hierarchy)'
    root = make_rootfs(w.sub('cgroup'))
    state = w.sub('cgroup-state')
    os.mkdir(CGROUP)
    try:
        steps = plan(root, state, 'grep pids /proc/self/cgroup',
                     parent=[['cgroup-join', CGROUP + '/cgroup.procs', '/linux/cgroupsPath']])
        res = run(steps, state_dir=state)
        check(res.error is None and res.status == 0, 'ran', (res.error, res.status, res.out))
        check(res.out.strip().endswith(':pids:/pocrun-native-test'), 'in the cgroup', res.out)
    finally:
        deadline = time.monotonic() + 5
        while True:
            try:
                os.rmdir(CGROUP)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def t_timens(w):
    """time-offset before clone: the child's time namespace has the offset."""
    root = make_rootfs(w.sub('timens'))
    state = w.sub('timens-state')
    steps = plan(root, state, 'cut -d. -f1 /proc/uptime', ns=('mnt', 'pid', 'uts', 'ipc', 'time'),
                 parent=[['time-offset', 'boottime', str(10 * 86400), '0', '/linux/timeOffsets/boottime']])
    res = run(steps, state_dir=state)
    check(res.error is None and res.status == 0, 'ran', (res.error, res.status, res.out))
    check(int(res.out.strip()) >= 10 * 86400, 'boottime offset', res.out)
    # a time namespace with no offsets
    for name in os.listdir(state):
        os.unlink(os.path.join(state, name))
    res = run(plan(root, state, 'cut -d. -f1 /proc/uptime', ns=('mnt', 'pid', 'time')), state_dir=state)
    check(res.error is None and int(res.out.strip()) < 10 * 86400, 'plain time namespace', (res.error, res.out))


def t_binds(w):
    """Bind mounts: dir (read-only, recursive), file (auto), propagation, mount_setattr, remount."""
    root = make_rootfs(w.sub('binds'))
    state = w.sub('binds-state')
    data = w.sub('binds-data')
    with open(os.path.join(data, 'file'), 'w') as fh:
        fh.write('hello')
    hostfile = os.path.join(w.path, 'binds-hostfile')
    with open(hostfile, 'w') as fh:
        fh.write('single')
    mounts = std_mounts() + [
        ['mount', data, '/data', '', f('BIND', 'REC', 'RDONLY', 'NOSUID'), '', 'auto', '/mounts/6'],
        ['mount', hostfile, '/etc/single', '', f('BIND'), '', 'auto', '/mounts/7'],
        ['mount', data, '/data2', '', f('BIND', 'REC'), '', 'auto', '/mounts/8'],
        ['setattr', '/data2', '3', '0', '/mounts/8'],
        ['mount', 'tmpfs', '/shared', 'tmpfs', f('SHARED'), '', 'dir', '/mounts/9'],
        ['mount', 'tmpfs', '/shared2', 'tmpfs', '0', '', 'dir', '/mounts/10'],
        ['propagation', '/shared2', f('PRIVATE'), '/mounts/10'],
        ['mount', 'tmpfs', '/remounted', 'tmpfs', '0', '', 'dir', '/mounts/11'],
        ['remount', '/remounted', f('RDONLY', 'NODEV'), '/mounts/11'],
    ]
    script = r'''
echo data=$(cat /data/file); echo dataopts=$(grep ' /data ' /proc/mounts | cut -d' ' -f4)
echo single=$(cat /etc/single)
echo data2opts=$(grep ' /data2 ' /proc/mounts | cut -d' ' -f4)
echo shared=$(grep ' /shared ' /proc/self/mountinfo | grep -c shared:)
echo shared2=$(grep ' /shared2 ' /proc/self/mountinfo | grep -c shared:)
echo remounted=$(grep ' /remounted ' /proc/mounts | cut -d' ' -f4)
'''
    res = run(plan(root, state, script, mounts=mounts), state_dir=state)
    check(res.error is None and res.status == 0, 'ran', (res.error, res.status, res.out))
    d = kv(res.out)
    check(d.get('data') == 'hello' and d.get('dataopts', '').startswith('ro,nosuid'), 'ro bind', d)
    check(d.get('single') == 'single', 'file bind', d)
    check(d.get('data2opts', '').startswith('ro,nosuid'), 'mount_setattr', d)
    check(d.get('shared') == '1' and d.get('shared2') == '0', 'propagation', d)
    check(d.get('remounted', '').startswith('ro,nodev'), 'remount', d)


def t_closed_stdio(w):
    """The runtime gives no fds 0-2: the helper's own fds land there, and must still not reach the container."""
    root = make_rootfs(w.sub('nostdio'))
    state = w.sub('nostdio-state')
    out = w.sub('nostdio-out', 0o777)
    script = 'ls /proc/self/fd > /tmp/out/fds 2>&1'
    mounts = std_mounts() + [['mount', out, '/tmp/out', '', f('BIND'), '', 'auto', '/mounts/6']]
    for mode in ('wait', 'detach'):
        for name in os.listdir(state):
            os.unlink(os.path.join(state, name))
        res = run(plan(root, state, script, mode=mode, mounts=mounts), state_dir=state, mode=mode, stdio=False)
        check(res.error is None and res.status == 0, mode + ' ran', (res.error, res.status, res.lines))
        fds = open(os.path.join(out, 'fds')).read().split()
        check(fds == ['1', '2', '3'] or fds == ['0', '1', '2'], mode + ': only what the shell opened', fds)


def t_safety(w):
    """A cwd outside the root through a leaked fd (CVE-2024-21626), a fake /dev/null, a symlink as masked path."""
    root = make_rootfs(w.sub('safety'))
    state = w.sub('safety-state')
    os.symlink('/etc/hostname', os.path.join(root, 'etc', 'link'))
    hostdir = os.open('/etc', os.O_RDONLY | os.O_DIRECTORY)
    try:
        res = run(plan(root, state, 'true', cwd='/proc/self/fd/3', preserve=1), state_dir=state, preserve=[hostdir])
    finally:
        os.close(hostdir)
    check(res.error and res.error[0] == 'chdir' and 'outside the container' in res.error[3], 'leaked cwd refused',
          res.error)
    for name in os.listdir(state):
        os.unlink(os.path.join(state, name))
    fake = os.path.join(w.path, 'fake-null')
    open(fake, 'w').close()
    steps = plan(root, state, 'true')
    i = steps.index(['mknod', '/dev/null', 'c', 1, 3, '666', 0, 0, 'default device /dev/null'])
    steps[i] = ['bind-dev', fake, '/dev/null', 'default device /dev/null']
    res = run(steps, state_dir=state)
    check(res.error and res.error[0] == 'mask' and res.error[3].endswith('/dev/null is not the null device (char 1:3)'),
          'fake /dev/null refused', res.error)
    for name in os.listdir(state):
        os.unlink(os.path.join(state, name))
    res = run(plan(root, state, 'true', after_pivot=[['mask', '/etc/link', '/linux/maskedPaths/9']]), state_dir=state)
    check(res.error and res.error[:3] == ('mask', '/linux/maskedPaths/9', str(errno.ELOOP)), 'symlink mask refused',
          res.error)


def t_speed(w):
    """The helper's own time for a minimal plan (no namespaces) and a full one."""
    root = make_rootfs(w.sub('speed'))
    state = w.sub('speed-state')
    times = []
    for _ in range(100):
        for name in os.listdir(state):
            os.unlink(os.path.join(state, name))
        steps = [['exec-fifo', state, 0, 0], ['clone', 'detach']] + process_steps('', argv=['/bin/true'])
        t0 = time.monotonic()
        res = run(steps, state_dir=state, start=False)
        times.append(time.monotonic() - t0)
        check(res.lines == ['pid %d' % res.pid, 'created'], 'pid comes first', res.lines)
        os.waitpid(res.helper, 0)
        start_container(state, time.monotonic() + 5)
        os.waitpid(res.pid, 0)
    full = []
    for _ in range(10):
        for name in os.listdir(state):
            os.unlink(os.path.join(state, name))
        res = run(plan(root, state, 'true'), state_dir=state)
        full.append(res.created_after)
    times.sort()
    full.sort()
    return 'minimal plan to created: median %.2f ms; full container plan: median %.2f ms' % (
        times[len(times) // 2] * 1000, full[len(full) // 2] * 1000)


def t_wait_exit(w):
    """--wait-exit PID (how restore waits for a detached criu): returns once PID has exited, not before; a pid that
    is gone at once; a bad pid is an error."""
    import subprocess
    from harness import HELPER
    sleeper = subprocess.Popen(['sleep', '0.6'])
    t0 = time.monotonic()
    r = subprocess.run([HELPER, '--wait-exit', str(sleeper.pid)], timeout=10)
    waited = time.monotonic() - t0
    sleeper.wait()
    check(r.returncode == 0, 'returned 0 once the process exited', r.returncode)
    check(waited >= 0.4, 'waited for the exit', '%.2f s' % waited)
    r = subprocess.run([HELPER, '--wait-exit', str(sleeper.pid)], timeout=10)
    check(r.returncode == 0, 'a reaped pid is gone at once', r.returncode)
    for bad in ('0', '-1', 'x', ''):
        r = subprocess.run([HELPER, '--wait-exit', bad], timeout=10)
        check(r.returncode == 1, 'pid %r is an error' % bad, r.returncode)


TESTS = [t_basic, t_root_caps, t_chroot, t_errors, t_abort, t_evil_symlink, t_hooks, t_console, t_userns, t_wait,
         t_exec_fork, t_cgroup, t_timens, t_binds, t_closed_stdio, t_safety, t_speed, t_wait_exit]


def main():
    if os.geteuid() != 0:
        print('run as root')
        return 2
    become_subreaper()
    only = sys.argv[1] if len(sys.argv) > 1 else ''
    w = Workdir()
    failed = 0
    try:
        for t in TESTS:
            if only and only not in t.__name__:
                continue
            t0 = time.monotonic()
            try:
                note = t(w)
                print('ok   %-16s %5.0f ms %s' % (t.__name__[2:], (time.monotonic() - t0) * 1000, note or ''))
            except Exception as e:  # noqa: BLE001
                failed += 1
                print('FAIL %-16s %s' % (t.__name__[2:], e))
                if not isinstance(e, Fail):
                    traceback.print_exc()
            reap_all()
    finally:
        reap_all()
        w.cleanup()
    # Only this run's mounts: other tests on the machine mount and unmount elsewhere meanwhile. What a helper could
    # leak into the host's table is under the work directory (rootfs binds propagating back).
    with open('/proc/self/mountinfo') as fh:
        left = [line for line in fh if w.path in line]
    check(not left, 'the host mount table holds none of the mounts the helpers made', left)
    print('%d failed' % failed if failed else 'all passed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
