import { UserError, wrapErrorAs } from '../errors.js';

export { UserError, describeSystemError, errnoCode } from '../errors.js';

/** An error of poc (src/errors.ts has the family): reported by src/cli/report.ts as every UserError is. */
export class PocError extends UserError {
  constructor(message: string, exitCode = 1, options?: { cause?: unknown }) {
    super(message, exitCode, options);
    this.name = 'PocError';
  }

  override wrap(context: string): PocError {
    return new PocError(`${context}: ${this.message}`, this.exitCode, { cause: this });
  }
}

/** poc's wrapError: a UserError keeps its class, a system error becomes a PocError. */
export function wrapError(context: string, err: unknown): UserError {
  return wrapErrorAs(PocError, context, err);
}
