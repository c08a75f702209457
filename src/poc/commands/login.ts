/** `poc login [-u USER] [-p PASSWORD | --password-stdin] REGISTRY` and `poc logout REGISTRY`. */
import { readFileSync } from 'node:fs';
import { stdout } from '../../common/output.js';
import { PocError } from '../errors.js';
import { login, logout } from '../registry/login.js';

export interface LoginCommandOptions {
  registry: string;
  username?: string | undefined;
  password?: string | undefined;
  passwordStdin: boolean;
  authfile?: string | undefined;
  certDir?: string | undefined;
  tlsVerify?: boolean | undefined;
}

export async function loginCommand(o: LoginCommandOptions): Promise<number> {
  if (o.username === undefined || o.username === '') throw new PocError('login: give the username with -u USER');
  let password = o.password;
  if (o.passwordStdin) {
    if (password !== undefined) throw new PocError('login: give the password with -p or --password-stdin, not both');
    password = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  }
  if (password === undefined || password === '') throw new PocError('login: give the password with --password-stdin (or -p PASSWORD)');
  const file = await login({ ...o, credentials: { username: o.username, password } });
  stdout(`Login Succeeded (credentials in ${file})\n`);
  return 0;
}

export function logoutCommand(o: { registry: string; authfile?: string | undefined }): number {
  const file = logout(o);
  stdout(`Removed login credentials for ${o.registry} from ${file}\n`);
  return 0;
}
