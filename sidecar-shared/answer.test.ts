import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Pool } from 'undici';
import { requestAnswer } from './answer.ts';
import { Cancellation } from './cancel.ts';

/** A real origin on loopback, handled by `handler`; closed by the test. */
async function origin(t: { after(fn: () => unknown): void }, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  t.after(async () => {
    await pool.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return pool;
}

test('a small answer with a Content-Length comes back whole; a large one, or one without a length, streams', async (t) => {
  const big = Buffer.alloc(1024 * 1024, 7);
  const pool = await origin(t, (req, res) => {
    if (req.url === '/small') res.writeHead(200, { 'content-length': 5, 'x-a': ['1', '2'] }).end('hello');
    else if (req.url === '/big') res.writeHead(200, { 'content-length': big.length }).end(big);
    else res.writeHead(200).end('chunked, no length'); // Transfer-Encoding: chunked
  });
  const small = await requestAnswer(pool, { method: 'GET', path: '/small' }, 1024);
  assert.equal(small.statusCode, 200);
  assert.deepEqual(small.headers['x-a'], ['1', '2']);
  assert.equal(small.body, null);
  assert.equal(Buffer.from(small.bytes!).toString(), 'hello');
  const large = await requestAnswer(pool, { method: 'GET', path: '/big' }, 1024);
  assert.equal(large.bytes, null);
  const parts: Buffer[] = [];
  for await (const c of large.body!) parts.push(c as Buffer);
  assert.ok(Buffer.concat(parts).equals(big));
  const unsized = await requestAnswer(pool, { method: 'GET', path: '/chunked' }, 1024);
  assert.equal(unsized.bytes, null, 'no declared length: streamed, however short');
  assert.equal((await unsized.body!.toArray()).join(''), 'chunked, no length');
});

test('answers without a body (HEAD, 204, 304) come back whole and empty', async (t) => {
  const pool = await origin(t, (req, res) => {
    if (req.url === '/204') res.writeHead(204).end();
    else if (req.url === '/304') res.writeHead(304, { etag: '"x"' }).end();
    else res.writeHead(200, { 'content-length': 1000000 }).end(req.method === 'HEAD' ? undefined : Buffer.alloc(1000000));
  });
  for (const [method, path, status] of [['GET', '/204', 204], ['GET', '/304', 304], ['HEAD', '/head', 200]] as const) {
    const a = await requestAnswer(pool, { method, path }, 16);
    assert.equal(a.statusCode, status);
    assert.equal(a.body, null, `${method} ${path}`);
    assert.equal(a.bytes!.length, 0);
  }
});

test('a streamed answer is read as its reader asks: undici pauses, and the origin sees its writes back up', async (t) => {
  let drained = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const chunk = Buffer.alloc(64 * 1024, 1);
  const total = 64; // 4 MiB
  const pool = await origin(t, (_req, res) => {
    res.writeHead(200);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent++;
        if (!res.write(chunk)) {
          drained++;
          res.once('drain', pump);
          return;
        }
      }
      res.end(done);
    };
    pump();
  });
  const a = await requestAnswer(pool, { method: 'GET', path: '/' }, 1024);
  const body = a.body!;
  // Nobody reads for a while: the origin must be told to wait rather than everything piling up in memory.
  while (drained === 0) await new Promise((r) => setImmediate(r));
  assert.ok(body.readableLength <= 1024 * 1024, `buffered ${body.readableLength} octets while unread`);
  let got = 0;
  for await (const c of body) got += (c as Buffer).length;
  await finished;
  assert.equal(got, total * chunk.length);
});

/** Resolves when the origin's request closes (events.once would reject on its 'aborted' error first). */
const closed = (req: IncomingMessage) => new Promise<void>((resolve) => req.once('close', () => resolve()));

test('cancelling: before the head the call rejects with the reason; after it the body is destroyed; destroying the body aborts the request', async (t) => {
  const arrived: IncomingMessage[] = [];
  const pool = await origin(t, (req, res) => {
    req.on('error', () => undefined); // 'aborted' (ECONNRESET): the client went away, as wanted
    arrived.push(req);
    if (req.url === '/head-then-wait') res.writeHead(200).write('first');
    // '/never' answers nothing
  });
  const early = new Cancellation();
  const call = requestAnswer(pool, { method: 'GET', path: '/never' }, 1024, early);
  while (arrived.length < 1) await new Promise((r) => setImmediate(r));
  const gone = closed(arrived[0]!);
  early.abort(new Error('client left'));
  await assert.rejects(call, /client left/);
  await gone; // the origin saw the request go away

  const late = new Cancellation();
  const a = await requestAnswer(pool, { method: 'GET', path: '/head-then-wait' }, 1024, late);
  const it = a.body![Symbol.asyncIterator]();
  assert.equal(String((await it.next()).value), 'first');
  late.abort(new Error('revoked'));
  await assert.rejects(it.next(), /revoked/);

  const third = await requestAnswer(pool, { method: 'GET', path: '/head-then-wait' }, 1024);
  const req3 = arrived.at(-1)!;
  const req3Closed = closed(req3);
  third.body!.destroy();
  await req3Closed;

  const already = new Cancellation();
  already.abort(new Error('before sending'));
  await assert.rejects(requestAnswer(pool, { method: 'GET', path: '/never' }, 1024, already), /before sending/);
});

test('an origin that dies mid-body destroys the stream with an error, never a short body that looks complete', async (t) => {
  const pool = await origin(t, (_req, res) => {
    res.writeHead(200, { 'content-length': 100000 });
    res.write(Buffer.alloc(1000), () => res.socket!.destroy());
  });
  const a = await requestAnswer(pool, { method: 'GET', path: '/' }, 1024);
  await assert.rejects(a.body!.toArray());
  const small = await origin(t, (_req, res) => {
    res.writeHead(200, { 'content-length': 500 });
    res.write(Buffer.alloc(100), () => res.socket!.destroy());
  });
  await assert.rejects(requestAnswer(small, { method: 'GET', path: '/' }, 1024), 'a small answer cut short rejects');
});
