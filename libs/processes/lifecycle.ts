import type { Logger } from '../log/index.ts';

/**
 * Runs `stop` on the first SIGTERM/SIGINT, within `graceSeconds`; a second signal, or the grace
 * period running out, exits at once. Exit code 0 after a clean drain.
 */
export function onShutdown(logger: Logger, graceSeconds: number, stop: () => Promise<void>): void {
  let firstAt = 0;
  const handler = (signal: NodeJS.Signals) => {
    if (firstAt) {
      // A platform signals the whole process group and npm forwards it too: a repeat within a
      // moment is the same request, not an operator insisting.
      if (Date.now() - firstAt < 1000) return;
      logger.warn(`second ${signal}: exiting now`);
      process.exit(1);
    }
    firstAt = Date.now();
    logger.info(`${signal} received: draining (grace ${graceSeconds}s)`);
    const force = setTimeout(
      () => {
        logger.error(`drain did not finish within ${graceSeconds}s: exiting`);
        process.exit(1);
      },
      graceSeconds * 1000 + 5000,
    );
    force.unref();
    stop().then(
      () => {
        logger.info('stopped');
        // Let winston flush its console transport before exiting.
        setImmediate(() => process.exit(0));
      },
      (err: unknown) => {
        logger.error('error while stopping', { err: String(err) });
        setImmediate(() => process.exit(1));
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/** Entry points: an error during startup prints one line and exits non-zero. */
export function fatal(logger: Logger, what: string, err: unknown): never {
  logger.error(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
