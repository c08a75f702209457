import t from 'tap';
import { existsSync } from 'node:fs';
import { detectHostSecurity, isHostNamespace, probeHostFacts } from '../../src/runtime/host-probes.js';
import { runningInUserNs } from '../../src/runtime/rootless.js';

// What pocrun gives its plans (src/plan never probes): the probes read this host as it is.
t.test('the host probes say what this host has', async (t) => {
  t.ok(isHostNamespace('net', '/proc/self/ns/net'), "the runtime's own network namespace is the host's");
  t.ok(isHostNamespace('mnt', `/proc/${process.pid}/ns/mnt`), 'so is its mount namespace, by another path');
  t.notOk(isHostNamespace('net', '/proc/self/ns/mnt'), 'another type is not');
  t.notOk(isHostNamespace('net', '/nonexistent/ns/net'), 'a missing file is not');
  const facts = probeHostFacts();
  t.equal(facts.hasKcore, existsSync('/proc/kcore'));
  t.equal(facts.runtimeInUserNamespace, runningInUserNs());
  t.equal(facts.isHostNamespace, isHostNamespace);
  const security = facts.security();
  t.same(security, detectHostSecurity());
  t.equal(security.selinux, existsSync('/sys/fs/selinux/enforce'));
  if (!existsSync('/sys/kernel/security/apparmor')) t.notOk(security.apparmor, 'no AppArmor without its securityfs directory');
});
