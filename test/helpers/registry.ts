/**
 * Real registries for the tests: Debian's docker-registry (the distribution registry) on 127.0.0.1, with
 * htpasswd auth and TLS from a CA the test makes with openssl, or plain HTTP; and a proxy in front of one that
 * dies in the middle of a blob, as a registry that is killed mid-pull.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, createSign } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Registry {
  host: string;
  dir: string;
  /** The registry's own storage (docker/registry/v2/...). */
  storage: string;
  log: () => string;
  stop: () => Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A CA, and a certificate for 127.0.0.1 signed by it: dir/ca.crt, dir/server.crt, dir/server.key. */
export function makeCertificates(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=poc test CA', '-keyout', 'ca.key', '-out', 'ca.crt',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'server.crt');
}

export interface RegistryOptions {
  /** htpasswd file (bcrypt) for basic auth. */
  htpasswd?: string;
  /** Bearer tokens from this token server (see startTokenServer). */
  token?: TokenServer;
  /** Directory with server.crt and server.key for TLS. */
  tls?: string;
}

export async function startRegistry(dir: string, o: RegistryOptions = {}): Promise<Registry> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const storage = join(dir, 'storage');
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
  ];
  if (o.tls) lines.push('  tls:', `    certificate: ${join(o.tls, 'server.crt')}`, `    key: ${join(o.tls, 'server.key')}`);
  if (o.htpasswd) lines.push('auth:', '  htpasswd:', '    realm: poc-test', `    path: ${o.htpasswd}`);
  if (o.token) {
    lines.push('auth:', '  token:', `    realm: ${o.token.realm}`, `    service: ${TOKEN_SERVICE}`, `    issuer: ${TOKEN_ISSUER}`, `    rootcertbundle: ${o.token.cert}`);
  }
  writeFileSync(join(dir, 'config.yml'), `${lines.join('\n')}\n`);
  const logFile = join(dir, 'registry.log');
  writeFileSync(logFile, '');
  const out = openSync(logFile, 'a');
  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', out, out] });
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${readFileSync(logFile, 'utf8')}`);
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error(`docker-registry did not listen on ${host}: ${readFileSync(logFile, 'utf8')}`);
    await sleep(50);
  }
  return {
    host,
    dir,
    storage,
    log: () => readFileSync(logFile, 'utf8'),
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

/**
 * A plain-HTTP proxy to `upstream` that, on the first blob larger than `bytes`, sends half of it and then dies:
 * the connection is cut and the proxy stops listening, as a registry killed in the middle of a pull.
 */
export async function startDyingProxy(upstream: string, bytes = 100_000): Promise<{ host: string; died: () => boolean; stop: () => void }> {
  let dead = false;
  const port = await freePort();
  const [uhost, uport] = upstream.split(':');
  const server: Server = createHttpServer((req, res) => {
    const up = httpRequest({ host: uhost, port: Number(uport), method: req.method, path: req.url, headers: req.headers }, (ur) => {
      const size = Number(ur.headers['content-length'] ?? 0);
      const blob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '') && size > bytes;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (!blob) {
        ur.pipe(res);
        return;
      }
      let sent = 0;
      ur.on('data', (chunk: Buffer) => {
        if (dead) return;
        const room = Math.floor(size / 2) - sent;
        if (chunk.length >= room) {
          res.write(chunk.subarray(0, Math.max(0, room)));
          dead = true;
          // Let the half reach the client, then cut everything and stop listening.
          setTimeout(() => {
            res.socket?.destroy();
            ur.destroy();
            server.close();
            server.closeAllConnections();
          }, 50);
          return;
        }
        sent += chunk.length;
        res.write(chunk);
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${port}`,
    died: () => dead,
    stop: () => {
      server.close();
      server.closeAllConnections();
    },
  };
}

const TOKEN_SERVICE = 'poc-test-registry';
const TOKEN_ISSUER = 'poc-test-token-server';

export interface TokenServer {
  realm: string;
  cert: string;
  /** The scopes asked for, one entry per token request. */
  requests: string[][];
  /** How each token was asked for: "basic" (GET with the password) or "refresh_token" (an OAuth2 POST). */
  grants: string[];
  stop: () => void;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * A token server as docker's registry expects one (distribution's token auth): GET realm?service=&scope=... with
 * basic auth → `{"token": JWT}`, the JWT signed RS256 with a key whose certificate (in x5c) is the registry's
 * rootcertbundle. Only `user`:`password` gets a token; it grants whatever repository actions were asked. With
 * `refreshToken`, also the OAuth2 flow of the same spec (what docker's `identitytoken` is for): POST realm with
 * the form grant_type=refresh_token&refresh_token=...&service=...&scope=A B → `{"access_token": JWT}`.
 */
export async function startTokenServer(dir: string, user: string, password: string, refreshToken?: string): Promise<TokenServer> {
  mkdirSync(dir, { recursive: true });
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=poc test token signer', '-keyout', 'token.key', '-out', 'token.crt'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const key = readFileSync(join(dir, 'token.key'), 'utf8');
  const der = new X509Certificate(readFileSync(join(dir, 'token.crt'))).raw;
  const requests: string[][] = [];
  const grants: string[] = [];
  const port = await freePort();
  const issue = (res: import('node:http').ServerResponse, service: string | null, scopes: string[], field: 'token' | 'access_token') => {
    requests.push(scopes);
    const access = scopes.map((s) => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop()!.split(',');
      return { type, name: rest.join(':'), actions };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [der.toString('base64')] };
    const claims = { iss: TOKEN_ISSUER, sub: user, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: `${now}-${requests.length}`, access };
    const body = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(body).sign(key);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ [field]: `${body}.${b64url(signature)}`, expires_in: 300 }));
  };
  const refuse = (res: import('node:http').ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  };
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST') {
      let text = '';
      req.on('data', (d: Buffer) => (text += d));
      req.on('end', () => {
        const form = new URLSearchParams(text);
        if (!refreshToken || form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== refreshToken || !form.get('client_id')) {
          refuse(res, 400, '{"error":"invalid_grant"}');
          return;
        }
        grants.push('refresh_token');
        issue(res, form.get('service'), (form.get('scope') ?? '').split(' ').filter(Boolean), 'access_token');
      });
      return;
    }
    const want = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    if (req.headers.authorization !== want) {
      refuse(res, 401, '{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
      return;
    }
    grants.push('basic');
    issue(res, url.searchParams.get('service'), url.searchParams.getAll('scope'), 'token');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    realm: `http://127.0.0.1:${port}/token`,
    cert: join(dir, 'token.crt'),
    requests,
    grants,
    stop: () => {
      server.close();
      server.closeAllConnections();
    },
  };
}
