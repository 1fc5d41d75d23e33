/**
 * The whole public surface of the sws core: the outer ↔ inner protocol (docs/PROTOCOL.md)
 * on WebCrypto alone. Nothing here imports Node: it runs unchanged in a browser, Deno or a
 * Worker.
 */
export * from './errors.ts';
export * from './bytes.ts';
export * from './crypto.ts';
export * from './atrest.ts';
export * from './aead.ts';
export * from './kdf.ts';
export * from './wire.ts';
export * from './bytereader.ts';
export * from './limits.ts';
export * from './records.ts';
export * from './keyschedule.ts';
export * from './bhttp.ts';
export * from './exchange.ts';
export * from './messages.ts';
export * from './keyrotation.ts';
export * from './replaywindow.ts';
export * from './signals.ts';
export * from './inner.ts';
export * from './outer.ts';
