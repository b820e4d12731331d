import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EC2ServiceException } from '@aws-sdk/client-ec2';
import { classifyEc2Error } from '../../../src/providers/ec2/errors.ts';
import { ProviderError } from '../../../src/providers/errors.ts';

function awsError(name: string, status: number, fault: 'client' | 'server' = status >= 500 ? 'server' : 'client'): EC2ServiceException {
  return new EC2ServiceException({ name, $fault: fault, $metadata: { httpStatusCode: status }, message: `${name} happened` });
}

function netError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
}

describe('classifyEc2Error', () => {
  const cases: [string, unknown, string][] = [
    ['AuthFailure', awsError('AuthFailure', 401), 'Unauthorized'],
    ['UnrecognizedClientException', awsError('UnrecognizedClientException', 400), 'Unauthorized'],
    ['InvalidClientTokenId (STS)', awsError('InvalidClientTokenId', 403), 'Unauthorized'],
    ['UnauthorizedOperation', awsError('UnauthorizedOperation', 403), 'Unauthorized'],
    ['ExpiredToken', awsError('ExpiredToken', 400), 'Unauthorized'],
    ['no credentials found', Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), 'Unauthorized'],
    ['RequestLimitExceeded', awsError('RequestLimitExceeded', 503), 'Throttled'],
    ['Throttling', awsError('Throttling', 400), 'Throttled'],
    ['429 of any name', awsError('Whatever', 429), 'Throttled'],
    ['InvalidParameterValue (bad filter)', awsError('InvalidParameterValue', 400), 'BadConfig'],
    ['InvalidParameterCombination', awsError('InvalidParameterCombination', 400), 'BadConfig'],
    ['an unknown 4xx', awsError('SomethingNew', 400), 'BadConfig'],
    ['InternalError', awsError('InternalError', 500), 'Unreachable'],
    ['Unavailable', awsError('Unavailable', 503), 'Unreachable'],
    ['connection refused', netError('ECONNREFUSED'), 'Unreachable'],
    ['DNS failure', netError('ENOTFOUND'), 'Unreachable'],
    ['refused inside an AggregateError', new AggregateError([netError('ECONNREFUSED')], 'all attempts failed'), 'Unreachable'],
    ['refused as a cause', new Error('fetch failed', { cause: netError('ECONNREFUSED') }), 'Unreachable'],
    ['SDK request timeout', Object.assign(new Error('timed out'), { name: 'TimeoutError', code: 'ETIMEDOUT' }), 'Timeout'],
    ['aborted', Object.assign(new Error('aborted'), { name: 'AbortError' }), 'Timeout'],
    ['an HTML 500 page', Object.assign(new Error('Deserialization error'), { $metadata: { httpStatusCode: 500 } }), 'BadResponse'],
    ['an HTML 503 from a gateway', Object.assign(new Error('Deserialization error'), { $metadata: { httpStatusCode: 503 } }), 'Unreachable'],
    ['something else', new TypeError('x is not a function'), 'BadResponse'],
    ['not even an Error', 'boom', 'BadResponse'],
  ];
  for (const [what, err, kind] of cases) {
    test(`${what} → ${kind}`, () => {
      const pe = classifyEc2Error(err, 'EC2 eu-west-1: DescribeInstances');
      assert.equal(pe.kind, kind);
      assert.equal(pe.provider, 'ec2');
      assert.match(pe.message, /^EC2 eu-west-1: DescribeInstances: /);
      assert.equal(pe.cause, err);
    });
  }

  test('keeps the AWS code and message for the status', () => {
    const pe = classifyEc2Error(awsError('AuthFailure', 401), 'EC2 eu-west-1');
    assert.equal(pe.message, 'EC2 eu-west-1: AuthFailure: AuthFailure happened');
    assert.equal(pe.reason, 'EC2Unauthorized');
  });

  test('a ProviderError passes through', () => {
    const pe = new ProviderError('ec2', 'BadConfig', 'no key');
    assert.equal(classifyEc2Error(pe, 'ctx'), pe);
  });
});
