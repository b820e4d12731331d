/**
 * The writes of a large sync (server-side applies, deletes), sent straight through the
 * shared connection pool with the credentials the client library attached to its
 * latest request. Per request, the library builds request and response objects,
 * serialises through its model layer and creates a new Agent, which the pool then
 * replaces: at 20,000 writes that cost a third more than the requests themselves. The
 * answer of a write is not needed (the informer sees the result), so it is read only
 * when it is an error.
 */
import { statusError, KubeApiError } from './api-error.ts';
import type { Channel } from './connection-reuse.ts';

export interface DirectRequest {
  readonly method: 'PATCH' | 'DELETE';
  /** The API path with its query, e.g. /apis/g/v/namespaces/ns/things/name?fieldManager=m&force=true */
  readonly path: string;
  readonly contentType: string;
  readonly body: string;
  /** For error messages, as the client's other calls name their operation. */
  readonly operation: string;
}

/** The server's origin and path prefix (a kubeconfig server may sit under a path, behind a proxy). */
export function serverBase(server: string): { readonly origin: string; readonly prefix: string } {
  const url = new URL(server);
  return { origin: url.origin, prefix: url.pathname.replace(/\/+$/, '') };
}

/** Sends one write; resolves on a 2xx answer, rejects with a KubeApiError otherwise. */
export async function sendDirect(channel: Channel, server: { readonly origin: string; readonly prefix: string }, req: DirectRequest, signal: AbortSignal): Promise<void> {
  let res: Awaited<ReturnType<Channel['dispatcher']['request']>>;
  try {
    res = await channel.dispatcher.request({
      origin: server.origin,
      path: server.prefix + req.path,
      method: req.method,
      headers: { ...channel.headers, 'content-type': req.contentType, accept: 'application/json' },
      body: req.body,
      signal,
    });
  } catch (e) {
    const err = e as { code?: string; message?: string };
    throw new KubeApiError(req.operation, 0, err.code ?? 'ConnectionError', err.message ?? String(e), { cause: e });
  }
  if (res.statusCode >= 200 && res.statusCode < 300) {
    await res.body.dump();
    return;
  }
  throw statusError(req.operation, res.statusCode, await res.body.text());
}
