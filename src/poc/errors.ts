import { layerErrorClass, wrapErrorAs, type UserError } from '../errors.js';

export { UserError, describeSystemError, errnoCode } from '../errors.js';

/** An error of poc (src/errors.ts has the family): reported by src/cli/report.ts as every UserError is. */
export const PocError = layerErrorClass('PocError');
export type PocError = InstanceType<typeof PocError>;

/** poc's wrapError: a UserError keeps its class, a system error becomes a PocError. */
export function wrapError(context: string, err: unknown): UserError {
  return wrapErrorAs(PocError, context, err);
}
