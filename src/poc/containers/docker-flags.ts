/**
 * Every flag `docker run` and `docker create` take (Docker 24-27's `docker run --help`: long names, and the short
 * ones that have no long twin in poc), so that one poc lacks is refused as docker's flag poc does not support,
 * not as a typo. parseFlags consults the list only for flags the command does not know: a flag poc gains
 * needs no change here.
 */
export const DOCKER_RUN_FLAGS: { program: string; flags: ReadonlySet<string> } = {
  program: 'docker run',
  flags: new Set(
    `
    add-host annotation attach blkio-weight blkio-weight-device cap-add cap-drop cgroup-parent cgroupns cidfile
    cpu-count cpu-percent cpu-period cpu-quota cpu-rt-period cpu-rt-runtime cpu-shares cpus cpuset-cpus cpuset-mems
    detach detach-keys device device-cgroup-rule device-read-bps device-read-iops device-write-bps device-write-iops
    disable-content-trust dns dns-opt dns-option dns-search domainname entrypoint env env-file expose gpus group-add
    health-cmd health-interval health-retries health-start-interval health-start-period health-timeout help hostname
    init interactive io-maxbandwidth io-maxiops ip ip6 ipc isolation kernel-memory label label-file link link-local-ip
    log-driver log-opt mac-address memory memory-reservation memory-swap memory-swappiness mount name network net
    network-alias net-alias no-healthcheck oom-kill-disable oom-score-adj pid pids-limit platform privileged publish
    publish-all pull quiet read-only restart rm runtime security-opt shm-size sig-proxy stop-signal stop-timeout
    storage-opt sysctl tmpfs tty ulimit user userns uts volume volume-driver volumes-from workdir
    a c P q
    `.trim().split(/\s+/),
  ),
};
