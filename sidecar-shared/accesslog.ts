/**
 * The access line: one JSON line per request, without pino's per-line machinery.
 *
 * The record is a flat set of strings and numbers the sidecars build (never a credential, body
 * or query), so it is serialized here, by hand, into the very line pino writes for createLogger's
 * options: `{"level":30,"time":"<ISO>","role":…,"pid":…,<fields in order>,"msg":"request"}`.
 * Lines then wait in an AccessBatch, the stream pino itself writes to, so that many leave in one
 * write system call and pino's own lines still come out in the order they were logged.
 *
 * Anything this module does not reproduce byte for byte goes through pino (and its redaction):
 * a value that is not a string, number or boolean, a key on the redaction list, a logger that
 * createLogger did not build.
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/** The message of every access line; log readers select on it. */
export const ACCESS_MESSAGE = 'request';
/** A batch is handed to the destination once it holds this many characters (about as many bytes: the lines are mostly ASCII). */
export const BATCH_CHARS = 16 * 1024;
/** The longest an access line waits in a batch when requests are few. */
export const BATCH_DELAY_MS = 50;

/** What a destination may offer beyond `write` (pino's SonicBoom offers both). */
type Destination = DestinationStream & { flush?(cb: (err?: Error) => void): void; flushSync?(): void };

/** Batches holding lines, handed over when the process ends (see holdUntilExit). */
const holding = new Set<AccessBatch>();
let exitHooked = false;

/**
 * The destination pino writes to (createLogger): access lines are appended and leave in batches;
 * any other line first takes the pending batch with it, so the output keeps the order of logging.
 */
export class AccessBatch implements DestinationStream {
  readonly #target: Destination;
  readonly #maxChars: number;
  readonly #delayMs: number;
  #pending = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(target: DestinationStream, opts: { maxChars?: number; delayMs?: number } = {}) {
    this.#target = target;
    this.#maxChars = opts.maxChars ?? BATCH_CHARS;
    this.#delayMs = opts.delayMs ?? BATCH_DELAY_MS;
  }

  /** Queues one access line (newline included). */
  append(line: string): void {
    this.#pending += line;
    if (this.#pending.length >= this.#maxChars) {
      this.handOff();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(this.#onTimer, this.#delayMs).unref();
      holdUntilExit(this);
    }
  }

  /** pino's lines: whatever access lines are pending go out first, in the same write. */
  write(line: string): void {
    this.#target.write(this.#pending === '' ? line : this.#take() + line);
  }

  /** Hands the pending access lines to the destination now. */
  handOff(): void {
    if (this.#pending !== '') this.#target.write(this.#take());
  }

  /** pino's flush (logger.flush, lifecycle.flushLog): pending access lines first, then the destination's own flush. */
  flush(cb?: (err?: Error) => void): void {
    this.handOff();
    if (typeof this.#target.flush === 'function') this.#target.flush(cb ?? noop);
    else cb?.();
  }

  /** As flush, synchronously, for the exit path. */
  flushSync(): void {
    this.handOff();
    this.#target.flushSync?.();
  }

  #take(): string {
    const lines = this.#pending;
    this.#pending = '';
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    holding.delete(this);
    return lines;
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    try {
      this.handOff();
    } catch {
      // The destination was destroyed (pino's EPIPE handling, or closed at exit): nothing left to write to.
    }
  };
}

function noop(): void {}

/**
 * Lines still pending when the process ends are handed over before pino's own exit handling
 * (prepended): on beforeExit the destination still has an event loop to write with; on exit
 * (process.exit, an uncaught exception) they are flushed synchronously, as pino flushes its own.
 */
function holdUntilExit(batch: AccessBatch): void {
  holding.add(batch);
  if (exitHooked) return;
  exitHooked = true;
  process.prependListener('beforeExit', () => handOffAll((b) => b.handOff()));
  process.prependListener('exit', () => handOffAll((b) => b.flushSync()));
}

function handOffAll(how: (b: AccessBatch) => void): void {
  for (const batch of [...holding]) {
    try {
      how(batch);
    } catch {
      // A destroyed destination: the other batches still get their turn.
    }
  }
}

const attached = new WeakMap<Logger, AccessLog>();

/** Writes a sidecar's access lines. */
export class AccessLog {
  readonly #logger: Logger;
  readonly #batch: AccessBatch | undefined;
  /** pino's isoTime for the last millisecond seen: several lines share one under load. */
  #timeMs = -1;
  #time = '';
  readonly #head: string;
  readonly #bindings: string;
  readonly #info: number;
  readonly #redacted: ReadonlySet<string>;
  /** key → `,"key":`, or null for a redacted key; the sidecars use a dozen keys. */
  readonly #names = new Map<string, string | null>();
  /** string value → its JSON (see #string). */
  readonly #json = new Map<string, string>();

  /** The access log of `logger`: the fast one createLogger attached, else one that writes through pino itself. */
  static of(logger: Logger): AccessLog {
    return attached.get(logger) ?? new AccessLog(logger);
  }

  /**
   * For createLogger: `logger`, made with `options` (base bindings, pino's isoTime timestamp,
   * redaction paths, default formatters and message key), writes to `batch`.
   */
  static attach(logger: Logger, batch: AccessBatch, options: LoggerOptions): AccessLog {
    const access = new AccessLog(logger, batch, options);
    attached.set(logger, access);
    return access;
  }

  private constructor(logger: Logger, batch?: AccessBatch, options?: LoggerOptions) {
    this.#logger = logger;
    this.#info = logger.levels.values.info ?? 30;
    this.#head = `{"level":${this.#info}`;
    const redact = options?.redact;
    this.#redacted = new Set((Array.isArray(redact) ? redact : (redact?.paths ?? [])).filter((p) => !p.includes('.')));
    const bindings = batch && options && reproducible(options) ? this.#fields(options.base ?? {}) : undefined;
    // A logger this module cannot reproduce exactly: every access line through pino.
    this.#batch = bindings === undefined ? undefined : batch;
    this.#bindings = bindings ?? '';
  }

  /** One access line for `record`, whose keys come out in its own order; undefined values are left out, as pino does. */
  write(record: Readonly<Record<string, unknown>>): void {
    const logger = this.#logger;
    if (logger.levelVal > this.#info) return;
    const fields = this.#batch && this.#fields(record);
    if (fields === undefined) {
      logger.info(record, ACCESS_MESSAGE);
      return;
    }
    this.#batch!.append(this.#head + this.#isoTime() + this.#bindings + fields + TAIL);
  }

  /** What pino.stdTimeFunctions.isoTime returns, made once per millisecond. */
  #isoTime(): string {
    const now = Date.now();
    if (now !== this.#timeMs) {
      this.#timeMs = now;
      this.#time = `,"time":"${new Date(now).toISOString()}"`;
    }
    return this.#time;
  }

  /** `,"key":value` for each field, or undefined when only pino can write this record exactly. */
  #fields(record: Readonly<Record<string, unknown>>): string | undefined {
    let out = '';
    for (const key in record) {
      const value = record[key];
      let json: string;
      switch (typeof value) {
        case 'string':
          json = this.#string(value);
          break;
        case 'number':
          json = Number.isFinite(value) ? `${value}` : 'null';
          break;
        case 'boolean':
          json = value ? 'true' : 'false';
          break;
        case 'undefined':
          continue;
        default:
          return undefined;
      }
      const name = this.#name(key);
      if (name === null) return undefined;
      out += name + json;
    }
    return out;
  }

  /**
   * A string value as JSON. Most values repeat from line to line (method, address, host, path,
   * user, decision) and are the same string objects, whose hash V8 keeps: a map lookup is then
   * cheaper than JSON.stringify. Short values only, and a bounded number of them.
   */
  #string(value: string): string {
    if (value.length > MEMO_MAX_CHARS) return JSON.stringify(value);
    let json = this.#json.get(value);
    if (json === undefined) {
      json = JSON.stringify(value);
      if (this.#json.size >= MEMO_MAX_VALUES) this.#json.clear();
      this.#json.set(value, json);
    }
    return json;
  }

  #name(key: string): string | null {
    let name = this.#names.get(key);
    if (name === undefined) {
      name = this.#redacted.has(key) ? null : `,${JSON.stringify(key)}:`;
      if (this.#names.size < 256) this.#names.set(key, name);
    }
    return name;
  }
}

/** Options under which pino's line is the one written here: anything that reshapes the line sends it through pino. */
function reproducible(o: LoggerOptions): boolean {
  const shaping = [o.name, o.formatters, o.mixin, o.hooks, o.nestedKey, o.msgPrefix, o.serializers, o.customLevels, o.crlf, o.messageKey, o.levelComparison];
  return o.timestamp === pino.stdTimeFunctions.isoTime && o.base !== undefined && shaping.every((v) => v === undefined);
}

/** Values longer than this are not remembered by #string (long paths rarely repeat). */
const MEMO_MAX_CHARS = 256;
/** Values #string remembers before it starts over. */
const MEMO_MAX_VALUES = 1024;

const TAIL = `,"msg":${JSON.stringify(ACCESS_MESSAGE)}}\n`;
