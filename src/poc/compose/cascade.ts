/**
 * What `up` in the foreground does as its containers end (pure), as docker compose's log printer
 * (cmd/formatter, pkg/compose/printer.go): with --abort-on-container-exit the first container to end stops
 * them all (--abort-on-container-failure: the first to end with a status other than 0), and up's status is that
 * of the container of --exit-code-from's service, by default of the service of the container that ended first.
 */
export class ExitCascade {
  aborting = false;
  status = 0;
  private from: string | undefined;
  constructor(private readonly cascade: 'exit' | 'failure' | undefined, exitCodeFrom?: string) {
    this.from = exitCodeFrom;
  }
  /** A container of `service` ended with `code`: true when this is the one that stops the others. */
  ended(service: string, code: number): boolean {
    if (!this.cascade) return false;
    const trigger = !this.aborting && (this.cascade === 'exit' || code !== 0);
    if (trigger) this.aborting = true;
    if (this.cascade === 'exit' || trigger || this.from !== undefined) {
      this.from ??= service;
      if (service === this.from) this.status = code;
    }
    return trigger;
  }
}
