/**
 * The errors shown to users, one class per program that speaks: PocrunError for the runtime's layers (spec, plan,
 * cgroups, runtime, pocrun's command line), PocError for poc's (src/poc/errors.ts), and their base UserError for
 * the code both share (argument parsing, subids). Each message says what failed and because of which input;
 * context is added with `wrap` as the error rises, so the final message reads like a path ("create c1: config.json
 * /mounts/2: ..."), and the error keeps its class. src/cli/report.ts is the one place that prints any UserError
 * and chooses the exit code; code that only asks "is this the user's problem?" tests `instanceof UserError`.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    // Set by hand: the compiled binary's minifier renames classes.
    this.name = 'UserError';
  }

  wrap(context: string): UserError {
    return new UserError(`${context}: ${this.message}`, this.exitCode, { cause: this });
  }
}

/**
 * The class of one layer's errors: a UserError named after the program that speaks, whose `wrap` keeps the class.
 * One definition for PocrunError here and PocError (src/poc/errors.ts).
 */
export function layerErrorClass(name: string) {
  return class LayerError extends UserError {
    constructor(message: string, exitCode = 1, options?: { cause?: unknown }) {
      super(message, exitCode, options);
      this.name = name;
    }

    override wrap(context: string): LayerError {
      return new LayerError(`${context}: ${this.message}`, this.exitCode, { cause: this });
    }
  };
}

/** An error of pocrun: its spec, plan, cgroups and runtime layers, and its command line. */
export const PocrunError = layerErrorClass('PocrunError');
export type PocrunError = InstanceType<typeof PocrunError>;

/**
 * A field of an input document that cannot be used: `<document> <pointer>: <detail>`, config.json's JSON pointer by
 * default. Structured, so that a caller who knows better where the field came from moves it there without
 * reading the message: exec's process is process.json (or the flags), not config.json's /process.
 */
export class ConfigFieldError extends PocrunError {
  constructor(
    readonly pointer: string,
    readonly detail: string,
    readonly document = 'config.json',
  ) {
    super(`${document} ${pointer}: ${detail}`);
  }

  /** The same error with a pointer under `prefix` re-rooted in `document`; any other is returned as it is. */
  movedUnder(prefix: string, document: string): ConfigFieldError {
    const rest = pointerUnder(this.pointer, prefix);
    return rest === undefined ? this : new ConfigFieldError(rest, this.detail, document);
  }
}

/** The rest of a JSON pointer below `prefix` ("/" for the prefix itself), or undefined when it is not below it. */
export function pointerUnder(pointer: string, prefix: string): string | undefined {
  if (pointer === prefix) return '/';
  return pointer.startsWith(`${prefix}/`) ? pointer.slice(prefix.length) : undefined;
}

export type UserErrorClass = new (message: string, exitCode?: number, options?: { cause?: unknown }) => UserError;

/** Adds context to any error: a UserError keeps its class and exit code, a system error becomes a `Kind`. */
export function wrapErrorAs(Kind: UserErrorClass, context: string, err: unknown): UserError {
  if (err instanceof UserError) return err.wrap(context);
  return new Kind(`${context}: ${describeSystemError(err)}`, 1, { cause: err });
}

/** pocrun's wrapError: a system error becomes a PocrunError. */
export function wrapError(context: string, err: unknown): UserError {
  return wrapErrorAs(PocrunError, context, err);
}
/** "No such file or directory" rather than Node's "ENOENT: no such file or directory, open '/x'". */
export function describeSystemError(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    const text = SYSTEM_ERROR_TEXT[err.code];
    if (text) return text;
  }
  return err instanceof Error ? err.message : String(err);
}

export function errnoCode(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

const SYSTEM_ERROR_TEXT: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EEXIST: 'File exists',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EBUSY: 'Device or resource busy',
  EINVAL: 'Invalid argument',
  ENOSPC: 'No space left on device',
  ESRCH: 'No such process',
  ENOTEMPTY: 'Directory not empty',
  EROFS: 'Read-only file system',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
};
