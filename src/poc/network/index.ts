// Networking: planning (addresses, ports, nftables scripts, /etc files) and the few system steps.
export * from './address.js';
export * from './publish.js';
export * from './ipam.js';
export * from './nft.js';
export * from './etc-files.js';
export * from './routes.js';
export * from './container.js';
export { run, nftApply, ensureBridge, attachContainer, deleteLink, defaultUplink, type NetnsOptions } from './system.js';
