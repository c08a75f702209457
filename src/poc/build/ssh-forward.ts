/**
 * RUN --mount=type=ssh: the build's side of an ssh agent for the step, as BuildKit's sshforward does it. A socket
 * of the step's own (owner and mode as the mount says) whose every connection is relayed to the user's agent
 * (`poc build --ssh`): the command reaches the agent, never the agent's own socket or its directory.
 */
import { chmodSync, chownSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { PocError } from '../errors.js';

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
