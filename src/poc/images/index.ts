// Images: the store, the busybox and Debian builders, and import of tarballs, docker archives and OCI layouts.
export * from './image-store.js';
export { buildBusyboxImage, BUSYBOX_IMAGE, type BuildBusyboxOptions } from './busybox.js';
export { initDebianImage, DEBIAN_IMAGE, DEBIAN_PACKAGES, type DebianProgress, type InitDebianOptions } from './debian.js';
export { importImage, type ImportOptions, type ImportProgress } from './import.js';
