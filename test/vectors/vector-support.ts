/** What the vector generator and checker use: the core's public surface plus a collector. */
export * from '../../core/index.ts';
export { collect } from '../helpers/protocol.ts';
