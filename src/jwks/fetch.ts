/**
 * One HTTPS GET of a JWKS or OpenID discovery document, bounded in time and size. Only https:
 * a key set fetched in plaintext could be swapped on the way. Certificates are verified against
 * the system roots plus the extra CAs given (never skipped). Redirects are followed to https
 * URLs only, at most a few times. Errors read as istiod's where istiod has one (`status 404,
 * message "…"`), and never echo more than 100 characters of what the server sent.
 */
import * as https from 'node:https';
import * as tls from 'node:tls';

export interface FetchLimits {
  /** The whole exchange, redirects included. */
  timeoutMs: number;
  /** The largest body accepted. */
  maxBytes: number;
}

export interface HttpsFetcherOptions {
  /** PEM CA certificates trusted besides the system roots. */
  extraCaPems?: readonly string[];
  maxRedirects?: number;
}

/** Fetches a URL's body as text; rejects with a message fit for a log line and /debug. */
export type TextFetcher = (url: string, limits: FetchLimits) => Promise<string>;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function quoteTruncated(body: string): string {
  const q = JSON.stringify(body);
  return q.length > 100 ? `${q.slice(0, 100)}(truncated)` : q;
}

/** A fetcher over node:https with the given trust. */
export function httpsFetcher(opts: HttpsFetcherOptions = {}): TextFetcher {
  // Node's `ca` replaces the default roots, so extra CAs are added to them, not put in their place.
  const ca = opts.extraCaPems && opts.extraCaPems.length > 0 ? [...tls.rootCertificates, ...opts.extraCaPems] : undefined;
  const maxRedirects = opts.maxRedirects ?? 3;
  return (url, limits) => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), limits.timeoutMs);
    const get = (target: string, redirects: number): Promise<string> =>
      new Promise<string>((resolve, reject) => {
        let u: URL;
        try {
          u = new URL(target);
        } catch {
          reject(new Error(`invalid URL ${JSON.stringify(target)}`));
          return;
        }
        if (u.protocol !== 'https:') {
          reject(new Error(`${u.protocol.slice(0, -1)} is not allowed: JWKS are fetched over https only`));
          return;
        }
        // No keep-alive (istiod's DisableKeepAlives): fetches are minutes apart.
        const req = https.get(u, { ca, agent: false, signal: controller.signal, headers: { accept: 'application/json' } }, (res) => {
          const status = res.statusCode ?? 0;
          if (REDIRECTS.has(status) && res.headers.location) {
            res.resume();
            if (redirects >= maxRedirects) reject(new Error(`more than ${maxRedirects} redirects`));
            else get(new URL(res.headers.location, u).toString(), redirects + 1).then(resolve, reject);
            return;
          }
          const declared = Number(res.headers['content-length'] ?? NaN);
          if (declared > limits.maxBytes) {
            res.destroy();
            reject(new Error(`response of ${declared} bytes is larger than the limit of ${limits.maxBytes} bytes`));
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > limits.maxBytes) {
              res.destroy(new Error(`response is larger than the limit of ${limits.maxBytes} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on('error', reject);
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            if (status < 200 || status >= 300) reject(new Error(`status ${status}, message ${quoteTruncated(body)}`));
            else resolve(body);
          });
        });
        req.on('error', reject);
      });
    return get(url, 0)
      .catch((err: unknown) => {
        if (controller.signal.aborted) throw new Error(`timed out after ${limits.timeoutMs} ms`);
        const e = err as NodeJS.ErrnoException;
        throw new Error(e.code && !e.message.includes(e.code) ? `${e.message} (${e.code})` : e.message);
      })
      .finally(() => clearTimeout(timer));
  };
}
