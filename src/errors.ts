/**
 * The one error type shown to users. Its message says what failed and because of which input; context is
 * added with `wrap` as the error rises, so the final message reads like a path ("create c1: config.json
 * /mounts/2: ..."). src/cli/report.ts is the one place that prints it and chooses the exit code.
 */
export class PocError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PocError';
  }

  wrap(context: string): PocError {
    return new PocError(`${context}: ${this.message}`, this.exitCode, { cause: this });
  }
}

/** Adds context to any error: a PocError keeps its exit code, a system error becomes a PocError. */
export function wrapError(context: string, err: unknown): PocError {
  if (err instanceof PocError) return err.wrap(context);
  return new PocError(`${context}: ${describeSystemError(err)}`, 1, { cause: err });
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
