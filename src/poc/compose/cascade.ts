/**
 * What `up` in the foreground does as its containers end (pure), as docker compose's up (pkg/compose/up.go, its
 * two exit listeners): with --abort-on-container-exit the first container to end stops them all
 * (--abort-on-container-failure: the first to end with a status other than 0), and up's status is that
 * container's; with --exit-code-from, the status of the first container of that service to end (stopped by the
 * abort, its 143 or 137) replaces it. Only the containers of the services `up` names count (all, when it names
 * none), as compose's monitor watches only those.
 */
export class ExitCascade {
  aborting = false;
  status = 0;
  private fromSeen = false;
  constructor(
    private readonly cascade: 'exit' | 'failure' | undefined,
    private readonly exitCodeFrom?: string,
    private readonly watched: string[] = [],
  ) {}

  /** A container of `service` ended with `code`: true when it is the one that stops the others. */
  ended(service: string, code: number): boolean {
    if (!this.cascade || (this.watched.length > 0 && !this.watched.includes(service))) return false;
    let trigger = false;
    if (!this.aborting && (this.cascade === 'exit' || code !== 0)) {
      this.aborting = true;
      this.status = code;
      trigger = true;
    }
    if (service === this.exitCodeFrom && !this.fromSeen) {
      this.fromSeen = true;
      this.status = code;
    }
    return trigger;
  }
}
