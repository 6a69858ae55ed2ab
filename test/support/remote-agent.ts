import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
}

export interface RemoteAgentServer {
  url: string;
  /** Every request so far, in arrival order. */
  received: ReceivedRequest[];
  close(): Promise<void>;
}

/** What the server answers a request with. */
export type Reply = (req: ReceivedRequest) => { status?: number; body?: string; delayMs?: number };

/** A remote agent on 127.0.0.1 that records what agentcron sends and answers with `reply`. */
export async function startRemoteAgent(reply: Reply): Promise<RemoteAgentServer> {
  const received: ReceivedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const got: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: text ? JSON.parse(text) : null };
      received.push(got);
      const { status = 200, body = '', delayMs = 0 } = reply(got);
      const timer = setTimeout(() => res.writeHead(status, { 'content-type': 'application/json' }).end(body), delayMs);
      res.on('close', () => clearTimeout(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
