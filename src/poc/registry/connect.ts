/** A client for one registry, set up from the user's configuration (config.ts) and the command's flags. */
import { authFiles, loadCredentials, loadTls, type Credentials } from './config.js';
import { RegistryClient } from './client.js';

export interface ConnectOptions {
  /** --authfile */
  authfile?: string | undefined;
  /** --cert-dir */
  certDir?: string | undefined;
  /** --tls-verify=false */
  tlsVerify?: boolean | undefined;
  /** Credentials given on the command line (login), instead of the auth files'. */
  credentials?: Credentials | undefined;
}

export function connect(registry: string, repository: string, insecure: boolean, o: ConnectOptions): RegistryClient {
  const found = o.credentials ? undefined : loadCredentials(authFiles(o.authfile), registry, repository);
  return new RegistryClient({
    registry,
    insecure: insecure || o.tlsVerify === false,
    tls: loadTls(registry, o.certDir),
    credentials: o.credentials ?? (found ? { username: found.username, password: found.password, ...(found.identityToken ? { identityToken: found.identityToken } : {}) } : undefined),
    credentialsFile: found?.file,
  });
}
