// Networking: planning (addresses, ports, nftables scripts, /etc files) and the few system steps.
export * from './address.js';
export * from './publish.js';
export * from './ipam.js';
export * from './nft.js';
export * from './etc-files.js';
export * from './routes.js';
export * from './container.js';
export * from './networks.js';
export * from './flags.js';
export * from './dns.js';
export * from './user-networks.js';
export { run, nftApply, ensureBridge, attachContainer, deleteLink, defaultUplink, linkExists, type NetnsOptions } from './system.js';
