/**
 * One request to the apiserver, sent with undici's dispatcher.request() through the
 * shared pool (api-channel.ts): the body is a JSON string the caller built, and the
 * answer is read as one buffer and parsed only when the caller needs it (a write's
 * answer is not needed: the informers see the result). client-node's generated API
 * layer would add request and response objects, a model (de)serialisation pass and a
 * fetch() with web streams per request, and costs 16 MB of heap just to load.
 */
import type { Dispatcher } from 'undici';
import { statusError, toKubeError } from './api-error.ts';
import type { Channel } from './api-channel.ts';

export type ApiMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ApiRequest {
  readonly method: ApiMethod;
  /** The API path with its query, e.g. /apis/g/v/namespaces/ns/things/name?fieldManager=m&force=true */
  readonly path: string;
  /** A JSON body (or an apply or merge patch) and its content type. */
  readonly body?: string;
  readonly contentType?: string;
  /** For error messages, e.g. "apply workloadentries ns/name". */
  readonly operation: string;
}

const USER_AGENT = 'vm-registry-operator';

/**
 * Sends one request through the channel; resolves with the answer when it is 2xx,
 * rejects with a KubeApiError otherwise (its Status; code 0 when no answer came).
 * Watches read the answer as a stream (api-watch.ts); the rest as one buffer.
 */
export async function dispatchApiRequest(channel: Channel, req: ApiRequest, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  let res: Dispatcher.ResponseData;
  try {
    res = await channel.dispatcher.request({
      origin: channel.origin,
      path: channel.prefix + req.path,
      method: req.method,
      headers: {
        ...channel.headers,
        accept: 'application/json',
        'user-agent': USER_AGENT,
        ...(req.contentType !== undefined ? { 'content-type': req.contentType } : {}),
      },
      ...(req.body !== undefined ? { body: req.body } : {}),
      signal,
    });
  } catch (e) {
    throw toKubeError(req.operation, e);
  }
  if (res.statusCode < 200 || res.statusCode >= 300) throw statusError(req.operation, res.statusCode, await res.body.text());
  return res;
}

/** One request: the parsed answer, or (`read` false) undefined once the answer is drained. */
export async function sendApiRequest(channel: Channel, req: ApiRequest, signal: AbortSignal, read: boolean): Promise<unknown> {
  const res = await dispatchApiRequest(channel, req, signal);
  if (!read) {
    await res.body.dump();
    return undefined;
  }
  return res.body.json();
}
