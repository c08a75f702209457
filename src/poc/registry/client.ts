/**
 * An OCI distribution API client (distribution-spec v1.1, as docker's registry and the containers tools speak
 * it): the /v2/ ping, basic and bearer-token auth, manifests, blobs, uploads and mounts. HTTPS with the
 * registry's certs.d CAs; plain HTTP only for a registry registries.conf marks insecure (or --tls-verify=false),
 * after HTTPS failed, as containers/image does.
 *
 * Errors are PocErrors that name the registry and what was asked; the registry's own error code and message
 * (`{"errors":[{"code","message"}]}`) are kept.
 */
import { UserError, PocError } from '../errors.js';
import type { Credentials, TlsFiles } from './config.js';

export interface ClientOptions {
  registry: string;
  /** registries.conf `insecure = true` or --tls-verify=false: unverified TLS, and plain HTTP if TLS fails. */
  insecure: boolean;
  tls: TlsFiles;
  credentials?: Credentials | undefined;
  /** For messages: where the credentials came from. */
  credentialsFile?: string | undefined;
}

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Parses `Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"` (RFC 7235). */
export function parseChallenge(header: string | null): Challenge | null {
  if (!header) return null;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return null;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return null;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!)) !== null) {
    if (p[0] === '') break;
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme, params };
}

/** The registry's error text, from its JSON body when it has one. */
export function registryErrorText(status: number, body: string): string {
  try {
    const doc = JSON.parse(body) as { errors?: Array<{ code?: string; message?: string; detail?: unknown }> };
    if (Array.isArray(doc.errors) && doc.errors.length > 0) {
      return doc.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    }
  } catch {
    // not JSON
  }
  const text = body.trim().split('\n')[0]!.slice(0, 200);
  return text ? `HTTP ${status}: ${text}` : `HTTP ${status}`;
}

function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

/** What a fetch failure means, in words (Bun and undici word them differently). */
export function describeFetchError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.code ?? e?.cause?.code;
  if (code === 'ConnectionRefused' || code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'ConnectionClosed') return 'the connection was closed';
  // Bun adds advice about its own debugging flag, which is not the user's to follow.
  const msg = (e?.cause?.message ?? e?.message ?? String(err)).replace(/\s*For more information, pass `verbose: true`.*$/s, '');
  return code && !msg.includes(code) ? `${msg} (${code})` : msg;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | null;
  /** The repository whose scope the token must cover, and the actions. */
  repository: string;
  actions: 'pull' | 'pull,push';
  /** Extra scopes (a cross-repository mount also needs pull on the source). */
  extraScopes?: string[];
  /** Statuses that are answers, not errors (404 for a blob that is not there). */
  ok?: number[];
  /** Whether to follow redirects (blob downloads do; upload locations are read, not followed). */
  redirect?: 'follow' | 'manual';
}

export class RegistryClient {
  readonly registry: string;
  private scheme: 'https' | 'http' | undefined;
  private challenge: Challenge | null | undefined;
  private tokens = new Map<string, string>();
  private pinging: Promise<void> | undefined;

  constructor(private readonly opts: ClientOptions) {
    this.registry = opts.registry;
  }

  /** `https://host/v2/...` once the scheme is known. */
  url(path: string): string {
    return `${this.scheme ?? 'https'}://${this.registry}${path}`;
  }

  private fetchOptions(): Record<string, unknown> {
    // Bun's fetch takes the TLS options directly (node's fetch ignores them: poc runs in Bun).
    const tls: Record<string, unknown> = { rejectUnauthorized: !this.opts.insecure };
    if (this.opts.tls.ca.length > 0) tls.ca = this.opts.tls.ca;
    if (this.opts.tls.cert) {
      tls.cert = this.opts.tls.cert;
      tls.key = this.opts.tls.key;
    }
    return { tls };
  }

  private async rawFetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, ...this.fetchOptions() } as RequestInit);
    } catch (err) {
      throw new PocError(`cannot reach registry ${this.registry}: ${describeFetchError(err)}`, 1, { cause: err });
    }
  }

  /**
   * GET /v2/: picks the scheme and learns how the registry wants to be authenticated. HTTPS first; plain HTTP
   * only for an insecure registry.
   */
  ping(): Promise<void> {
    // Once, however many requests start at the same time.
    this.pinging ??= this.doPing();
    return this.pinging;
  }

  private async doPing(): Promise<void> {
    let res: Response;
    try {
      this.scheme = 'https';
      res = await this.rawFetch(this.url('/v2/'), { method: 'GET' });
    } catch (err) {
      if (!this.opts.insecure) {
        const why = err instanceof UserError ? err.message : String(err);
        throw new PocError(`${why} (HTTPS; if ${this.registry} speaks only plain HTTP, mark it insecure in registries.conf or use --tls-verify=false)`);
      }
      this.scheme = 'http';
      res = await this.rawFetch(this.url('/v2/'), { method: 'GET' });
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.status === 401) this.challenge = parseChallenge(res.headers.get('www-authenticate'));
    else if (res.ok || res.status === 404) this.challenge = null;
    else throw new PocError(`registry ${this.registry} answered GET /v2/ with HTTP ${res.status}: is it an OCI registry?`);
    if (this.challenge === undefined) throw new PocError(`registry ${this.registry} asks for authentication in a way poc does not know`);
  }

  /** login: the credentials get a token (bearer) or /v2/ (basic); an error says they were refused. */
  async checkLogin(): Promise<void> {
    await this.ping();
    if (!this.challenge) return;
    if (this.challenge.scheme === 'bearer') {
      await this.token([]);
      return;
    }
    const res = await this.rawFetch(this.url('/v2/'), { headers: { authorization: basicHeader(this.opts.credentials!) } });
    const body = await res.text().catch(() => '');
    if (res.status === 401) throw new PocError(`login to ${this.registry}: wrong username or password (${registryErrorText(res.status, body)})`);
    if (!res.ok) throw new PocError(`login to ${this.registry}: ${registryErrorText(res.status, body)}`);
  }

  /** Whether the registry asks for any authentication at all. */
  get requiresAuth(): boolean {
    return Boolean(this.challenge);
  }

  private credentialsText(): string {
    return this.opts.credentials ? `the credentials for ${this.registry}${this.opts.credentialsFile ? ` in ${this.opts.credentialsFile}` : ''}` : 'no credentials';
  }

  /** A bearer token for the scopes, from the challenge's realm (with the basic credentials, if any). */
  private async token(scopes: string[]): Promise<string> {
    const key = scopes.join(' ');
    const cached = this.tokens.get(key);
    if (cached) return cached;
    const params = this.challenge!.params;
    if (!params.realm) throw new PocError(`registry ${this.registry}: its Bearer challenge has no realm`);
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const creds = this.opts.credentials;
    let res: Response;
    if (creds?.identityToken) {
      // An identity token is an OAuth2 refresh token: exchanged at the realm by a POST form (distribution's
      // token spec, "OAuth2 token": grant_type=refresh_token), as docker and containers/image do.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'poc', service: params.service ?? '' });
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      res = await this.rawFetch(params.realm, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
    } else {
      const headers: Record<string, string> = {};
      if (creds) headers.authorization = basicHeader(creds);
      res = await this.rawFetch(url.toString(), { headers });
    }
    const body = await res.text();
    // OAuth2 answers a bad refresh token with 400 invalid_grant; the GET flow with 401 or 403.
    if (res.status === 401 || res.status === 403 || (creds?.identityToken && res.status === 400)) {
      const why = creds?.identityToken ? 'the identity token was refused (expired or revoked? log in again with docker)' : 'wrong username or password?';
      throw new PocError(`registry ${this.registry}: authentication failed with ${this.credentialsText()}: ${why} (${registryErrorText(res.status, body)})`);
    }
    if (!res.ok) throw new PocError(`registry ${this.registry}: token server ${url.origin} answered ${registryErrorText(res.status, body)}`);
    let token: string | undefined;
    try {
      const doc = JSON.parse(body) as { token?: string; access_token?: string };
      token = doc.token || doc.access_token;
    } catch {
      // below
    }
    if (!token) throw new PocError(`registry ${this.registry}: token server ${url.origin} gave no token`);
    this.tokens.set(key, token);
    return token;
  }

  private async authHeader(o: RequestOptions): Promise<string | undefined> {
    if (!this.challenge) return undefined;
    if (this.challenge.scheme === 'basic') {
      if (!this.opts.credentials) throw new PocError(`registry ${this.registry} requires a login ("poc login ${this.registry}")`);
      if (this.opts.credentials.identityToken) {
        throw new PocError(`registry ${this.registry} asks for a user name and password, and ${this.credentialsText()} are an identity token, which only a token server takes ("poc login ${this.registry}")`);
      }
      return basicHeader(this.opts.credentials);
    }
    return `Bearer ${await this.token([`repository:${o.repository}:${o.actions}`, ...(o.extraScopes ?? [])])}`;
  }

  /**
   * One request with auth. A 401 with a new challenge (a token for another scope) is answered once. Statuses
   * outside 2xx/3xx and `ok` become errors that say what was asked.
   */
  async request(path: string, o: RequestOptions, what: string): Promise<Response> {
    await this.ping();
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      const auth = await this.authHeader(o);
      if (auth) headers.authorization = auth;
      const url = path.startsWith('http') ? path : this.url(path);
      const res = await this.rawFetch(url, { method: o.method ?? 'GET', headers, body: (o.body ?? null) as BodyInit | null, redirect: o.redirect ?? 'follow' });
      if (res.ok || (res.status >= 300 && res.status < 400) || o.ok?.includes(res.status)) return res;
      const body = await res.text().catch(() => '');
      if (res.status === 401 && attempt === 0) {
        const ch = parseChallenge(res.headers.get('www-authenticate'));
        if (ch && (!this.challenge || ch.scheme !== this.challenge.scheme)) {
          this.challenge = ch;
          continue;
        }
        if (ch?.scheme === 'bearer' && ch.params.scope) {
          this.challenge = ch;
          this.tokens.clear();
          continue;
        }
      }
      if (res.status === 401) {
        throw new PocError(
          this.opts.credentials
            ? `${what}: registry ${this.registry} refused ${this.credentialsText()}: wrong username or password? (${registryErrorText(res.status, body)})`
            : `${what}: registry ${this.registry} requires a login ("poc login ${this.registry}")`,
        );
      }
      if (res.status === 403) throw new PocError(`${what}: registry ${this.registry} denied access (${registryErrorText(res.status, body)})`);
      throw new PocError(`${what}: ${registryErrorText(res.status, body)}`, 1);
    }
  }
}
