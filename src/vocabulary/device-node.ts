/** A device node as a container gets it (config.json linux.devices, resolved: numbers, mode and owner known). */
export interface DeviceNode {
  path: string;
  type: string;
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}
