/**
 * RUN --mount=type=ssh: the build's side of an ssh agent for the step, as BuildKit's sshforward does it. A socket
 * of the step's own (owner and mode as the mount says) whose every connection is relayed to the user's agent
 * (`poc build --ssh`): the command reaches the agent, never the agent's own socket or its directory. Key files
 * given instead of a socket are loaded into an ssh-agent of the build's own (keyAgent), relayed the same way.
 */
import { chmodSync, chownSync, existsSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { PocError } from '../errors.js';
import { spawnProgram } from '../spawn.js';

/** Listens at `at` (made here) and relays to the agent at `agent`; the returned function stops it. */
export async function forwardAgent(agent: string, at: string, owner: { uid: number; gid: number; mode: number }): Promise<() => Promise<void>> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection(agent);
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      open.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        open.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new PocError(`forward the ssh agent ${agent}: listen at ${at}: ${err.code ?? err.message}`)));
    server.listen(at, () => resolve());
  });
  chownSync(at, owner.uid, owner.gid);
  chmodSync(at, owner.mode);
  return async () => {
    for (const s of open) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

/**
 * `--ssh ID=KEYFILE[,KEYFILE]`: an ssh-agent of the build's own holding those keys (as buildx loads key files into
 * an agent in its own process), its socket in `dir`; the returned function stops it. A key ssh-add cannot load
 * (not a key, too open, or with a passphrase: ssh-add runs with no terminal to ask on) is an error naming it.
 */
export async function keyAgent(keys: string[], dir: string, what: string): Promise<{ socket: string; stop: () => Promise<void> }> {
  const socket = join(dir, 'agent.sock');
  const agent = spawnProgram(['ssh-agent', '-D', '-a', socket], { stdio: ['ignore', 'ignore', 'pipe'] });
  const stop = async () => {
    agent.kill('SIGTERM');
    await agent.exited;
  };
  try {
    let gone = false;
    void agent.exited.then(() => (gone = true));
    for (let i = 0; !existsSync(socket); i++) {
      if (gone || i >= 500) {
        const why = gone ? (await new Response(agent.stderr).text()).trim() : 'no socket after 5 s';
        throw new PocError(`${what}: ssh-agent did not start: ${why || `exit status ${await agent.exited}`}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', SSH_AUTH_SOCK: socket, SSH_ASKPASS_REQUIRE: 'never' };
    // A session of its own: no terminal, so a key with a passphrase fails rather than asks in the middle of a build.
    const add = spawnProgram(['ssh-add', '-q', ...keys], { stdio: ['ignore', 'ignore', 'pipe'], env, detached: true });
    const [stderr, code] = await Promise.all([new Response(add.stderr).text(), add.exited]);
    if (code !== 0) {
      const locked = /Enter passphrase for (?:key )?'?(.*?)'?:/.exec(stderr)?.[1];
      if (locked) throw new PocError(`${what}: the key ${locked} has a passphrase, which poc cannot ask for during a build: load it into an ssh-agent (ssh-add) and give its socket`);
      const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^@+$|^Enter passphrase/.test(l));
      throw new PocError(`${what}: ssh-add could not load the key: ${lines.join('; ') || `exit status ${code}`}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { socket, stop };
}
