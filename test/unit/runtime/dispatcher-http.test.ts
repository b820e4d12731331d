import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpMethod, RequestContext } from '@kubernetes/client-node';
import { DispatcherHttpLibrary } from '../../../src/runtime/dispatcher-http.ts';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

test('a request goes through the dispatcher it carries, and its answer is read whole', async () => {
  const seen: Record<string, unknown>[] = [];
  const dispatcher = {
    request: async (o: Record<string, unknown>) => {
      seen.push(o);
      return { statusCode: 201, headers: { 'content-type': 'application/json', 'x-many': ['a', 'b'] }, body: { arrayBuffer: async () => new TextEncoder().encode('{"ok":true}').buffer } };
    },
  } as unknown as Dispatcher;
  const context = new RequestContext('https://127.0.0.1:6443/apis/g/v1/namespaces/ns/things/a?fieldManager=m&force=true', HttpMethod.PATCH);
  context.setBody('{"spec":{}}');
  context.setHeaderParam('Content-Type', 'application/apply-patch+yaml');
  context.setDispatcher(dispatcher);
  const response = await new DispatcherHttpLibrary().send(context).toPromise();
  assert.equal(response.httpStatusCode, 201);
  assert.equal(await response.body.text(), '{"ok":true}');
  assert.equal(response.headers['x-many'], 'a, b');
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.['origin'], 'https://127.0.0.1:6443');
  assert.equal(seen[0]?.['path'], '/apis/g/v1/namespaces/ns/things/a?fieldManager=m&force=true');
  assert.equal(seen[0]?.['method'], 'PATCH');
  assert.equal(seen[0]?.['body'], '{"spec":{}}');
});
