/**
 * client-node's HTTP library sends every request through undici's fetch(): a WHATWG
 * Request, a cloned body, web streams for the answer. At thousands of writes that
 * machinery cost more CPU than the rest of the operator. This library sends the same
 * request through the same dispatcher (the connection pool, see connection-reuse.ts)
 * with the dispatcher's own request(), and reads the answer as one buffer. Requests
 * without a dispatcher (plain HTTP) or with a form body go the usual way.
 */
import { IsomorphicFetchHttpLibrary, Observable, ResponseContext, type HttpLibrary, type RequestContext } from '@kubernetes/client-node';

const fallback = new IsomorphicFetchHttpLibrary();

function headerRecord(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

export class DispatcherHttpLibrary implements HttpLibrary {
  send(request: RequestContext): Observable<ResponseContext> {
    const dispatcher = request.getDispatcher();
    const body = request.getBody();
    if (dispatcher === undefined || (body !== undefined && typeof body !== 'string')) return fallback.send(request);
    const url = new URL(request.getUrl());
    const signal = request.getSignal();
    const answer = dispatcher
      .request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: request.getHttpMethod(),
        headers: request.getHeaders(),
        ...(body !== undefined ? { body } : {}),
        ...(signal !== undefined ? { signal } : {}),
      })
      .then(async (res) => {
        const data = Buffer.from(await res.body.arrayBuffer());
        return new ResponseContext(res.statusCode, headerRecord(res.headers), {
          text: () => Promise.resolve(data.toString('utf8')),
          binary: () => Promise.resolve(data),
          stream: () => null,
        });
      });
    return new Observable(answer);
  }
}
