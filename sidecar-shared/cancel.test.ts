import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Pool } from 'undici';
import { Cancellation } from './cancel.ts';

test('Cancellation aborts an undici request in flight: the call rejects with the reason and the server sees the request go away', { timeout: 10_000 }, async () => {
  const arrived: IncomingMessage[] = [];
  const server = createServer((req) => arrived.push(req)); // never answers
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    const cancel = new Cancellation();
    const call = pool.request({ method: 'GET', path: '/slow', signal: cancel });
    while (arrived.length === 0) await new Promise((r) => setImmediate(r));
    const req = arrived[0]!;
    req.on('error', () => undefined); // 'aborted' (ECONNRESET): the client went away, as wanted
    const closed = once(req.socket, 'close');
    const why = new Error('the client left');
    cancel.abort(why);
    await assert.rejects(call, (err) => err === why);
    await closed;
    assert.equal(cancel.aborted, true);
  } finally {
    await pool.destroy();
    server.closeAllConnections();
    server.close();
  }
});

test('Cancellation keeps its first reason, and a request given an already-cancelled one is never sent', async () => {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.end('ok');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    const cancel = new Cancellation();
    const first = new Error('first');
    cancel.abort(first);
    cancel.abort(new Error('second'));
    assert.equal(cancel.reason, first);
    await assert.rejects(pool.request({ method: 'GET', path: '/', signal: cancel }), (err) => err === first);
    // The same pool still works: a request without the signal reaches the server.
    const ok = await pool.request({ method: 'GET', path: '/' });
    assert.equal(await ok.body.text(), 'ok');
    assert.equal(requests, 1);
  } finally {
    await pool.close();
    server.close();
  }
});
