// The embedded PostgreSQL of `npm start`, in a process (and process group) of its own: a Ctrl-C in
// the terminal reaches the app, which drains with its database still up, then stops this server
// last (SIGTERM). Started by startEmbeddedServer (embedded.ts); prints one JSON line with the URL
// once ready. It also stops if its parent goes away without a word (stdin closes).
import { startEmbeddedPostgres } from './embedded.ts';

const [dataDir, port] = process.argv.slice(2);
const server = await startEmbeddedPostgres({ dataDir, port: Number(port) }).catch((err: Error) => {
  process.stdout.write(`${JSON.stringify({ error: err.message })}\n`);
  process.exit(1);
});
let stopping: Promise<void> | undefined;
const stop = () => {
  stopping ??= server.stop().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
// Ignored: the terminal's Ctrl-C belongs to the app, which stops this server when it is done.
process.on('SIGINT', () => {});
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
