import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';

/**
 * One log line per request: method, path (never the query string: it can carry a code or a
 * state) and status, with the time taken. Bodies and headers are never logged: they carry
 * secrets. Levels: info, or error for a 5xx. With LOG_LEVEL=silent nothing is done per
 * request beyond one check.
 *
 * Not pino-http: it builds a child logger (and its redaction) for every request, a large share
 * of a cheap request's cost, for a line we log at most once.
 */
export function requestLog(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!logger.isLevelEnabled('error')) return next(); // 'silent' or 'fatal': nothing to log
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const status = res.statusCode;
      const level = status >= 500 ? 'error' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      const url = req.originalUrl;
      const query = url.indexOf('?');
      logger[level](
        {
          req: { method: req.method, path: query === -1 ? url : url.slice(0, query) },
          res: { statusCode: status },
          responseTime: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
        },
        'request completed',
      );
    });
    next();
  };
}
