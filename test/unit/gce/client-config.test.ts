/** Error classification, endpoint parsing and key validation of the GCE client. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { parseEndpoint, parseServiceAccountKey } from '../../../src/providers/gce/compute-client.ts';
import { toProviderError } from '../../../src/providers/gce/errors.ts';
import { isProviderError } from '../../../src/providers/errors.ts';

const err = (fields: Record<string, unknown>) => Object.assign(new Error(String(fields['message'] ?? 'x')), fields);

describe('GCE error classification', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ code: 16, httpStatusCode: 401 }, 'Unauthorized'],
    [{ code: 7, httpStatusCode: 403, message: "Required 'compute.instances.list' permission" }, 'Unauthorized'],
    [{ code: 7, httpStatusCode: 403, message: 'Rate Limit Exceeded' }, 'Throttled'],
    [{ code: 8, httpStatusCode: 429 }, 'Throttled'],
    [{ code: 3, httpStatusCode: 400 }, 'BadConfig'],
    [{ code: 5, httpStatusCode: 404 }, 'BadConfig'],
    [{ code: 14, message: 'request failed, reason: connect ECONNREFUSED' }, 'Unreachable'],
    [{ code: 14, httpStatusCode: 503 }, 'Unreachable'],
    [{ code: 13, httpStatusCode: 500 }, 'Unreachable'],
    [{ code: 4 }, 'Timeout'],
    [{ message: 'weird' }, 'BadResponse'],
  ];
  for (const [fields, kind] of cases) {
    test(`${JSON.stringify(fields)} → ${kind}`, () => {
      const e = toProviderError(err(fields), 'aggregatedList of project p');
      assert.equal(e.kind, kind);
      assert.match(e.message, /^aggregatedList of project p: /);
    });
  }
  test('403 without a quota message says which permission is missing', () => {
    assert.match(toProviderError(err({ code: 7, httpStatusCode: 403 }), 'x').message, /compute\.instances\.list/);
  });
});

describe('GCE endpoint override', () => {
  test('host, port and protocol, the port always explicit', () => {
    assert.deepEqual(parseEndpoint('http://127.0.0.1:8085'), { apiEndpoint: '127.0.0.1', port: 8085, protocol: 'http' });
    assert.deepEqual(parseEndpoint('https://compute-psc.example.internal'), { apiEndpoint: 'compute-psc.example.internal', port: 443, protocol: 'https' });
    assert.deepEqual(parseEndpoint('http://[::1]:9000/'), { apiEndpoint: '::1', port: 9000, protocol: 'http' });
  });
  test('paths, queries, user info and other schemes are refused', () => {
    for (const bad of ['http://h/compute/v1', 'http://h/?a=1', 'http://u:p@h', 'ftp://h', 'not a url']) {
      assert.throws(() => parseEndpoint(bad), (e: unknown) => isProviderError(e) && e.kind === 'BadConfig', bad);
    }
  });
});

describe('GCE service-account key', () => {
  const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  test('a valid key file is accepted', () => {
    const k = parseServiceAccountKey(JSON.stringify({ type: 'service_account', client_email: 'a@b', private_key: pem, private_key_id: 'k1' }));
    assert.equal(k.client_email, 'a@b');
    assert.equal(k.private_key_id, 'k1');
  });
  test('broken keys are BadConfig and their content is never echoed', () => {
    for (const bad of [
      'SECRET-not-json',
      JSON.stringify({ type: 'authorized_user', client_email: 'a@b', private_key: pem }),
      JSON.stringify({ client_email: 'a@b' }),
      JSON.stringify({ client_email: 'a@b', private_key: 'SECRET-garbage' }),
    ]) {
      assert.throws(
        () => parseServiceAccountKey(bad),
        (e: unknown) => isProviderError(e) && e.kind === 'BadConfig' && !e.message.includes('SECRET') && !e.message.includes('PRIVATE KEY'),
      );
    }
  });
});
