/**
 * `poc login` and `poc logout`: credentials checked against the registry, then kept in the auth file podman
 * uses ($XDG_RUNTIME_DIR/containers/auth.json; --authfile or REGISTRY_AUTH_FILE instead), where pull and push
 * (and podman, skopeo) find them.
 */
import { PocError } from '../errors.js';
import { authFiles, isInsecure, loadCredentials, loadRegistriesConf, normalizeAuthKey, removeCredentials, saveCredentials, type Credentials } from './config.js';
import { connect, type ConnectOptions } from './connect.js';

export interface LoginOptions extends ConnectOptions {
  registry: string;
  credentials: Credentials;
}

/** The registry a user names: `https://host:5000/` → `host:5000`. */
export function registryHost(text: string): string {
  const host = normalizeAuthKey(text);
  if (host === '' || host.includes('/')) throw new PocError(`invalid registry ${JSON.stringify(text)}: give HOST[:PORT]`);
  return host;
}

/** Checks the credentials (a token for them, or /v2/ with them) and stores them. Returns the file written. */
export async function login(o: LoginOptions): Promise<string> {
  const registry = registryHost(o.registry);
  const client = connect(registry, '', isInsecure(loadRegistriesConf(), registry), o);
  await client.checkLogin();
  const file = authFiles(o.authfile).write;
  saveCredentials(file, registry, o.credentials);
  return file;
}

/** Removes the stored credentials; an error when there were none in the file poc writes. */
export function logout(o: { registry: string; authfile?: string | undefined }): string {
  const registry = registryHost(o.registry);
  const files = authFiles(o.authfile);
  if (removeCredentials(files.write, registry)) return files.write;
  const elsewhere = loadCredentials(files, registry);
  if (elsewhere) throw new PocError(`not logged in to ${registry} in ${files.write}; its credentials are in ${elsewhere.file}, which poc does not edit`);
  throw new PocError(`not logged in to ${registry}`);
}
