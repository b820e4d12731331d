/** Consent entries: normal form, strict matching, and what each provider's spec needs. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import {
  ALLOWED_ENDPOINTS_ANNOTATION,
  ConsentError,
  ambientPolicyOf,
  checkAmbient,
  checkSecretConsent,
  normaliseEntry,
  parseEntries,
} from '../../../src/controller/consent.ts';
import { distinctDestinations, originOf, type CredentialDestination } from '../../../src/providers/credential-use.ts';
import { builtinProviders } from '../../../src/providers/builtin.ts';
import type { VmRegistrySourceSpecInput } from '../../../src/api/types.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';

const { validateSpec } = BUILTIN_API;

const lazy = builtinProviders();
const factories = new Map(await Promise.all(lazy.names.map(async (n) => [n, await lazy.load(n)] as const)));
function useOf(input: VmRegistrySourceSpecInput, secrets: Record<string, string> = {}) {
  const spec = validateSpec(input);
  const name = spec.consul ? 'consul' : spec.ec2 ? 'ec2' : 'gce';
  const factory = factories.get(name);
  assert.ok(factory);
  return factory.credentialUse(spec, new Map(Object.entries(secrets)));
}
const entries = (d: readonly CredentialDestination[]) => distinctDestinations(d).map((x) => x.entry);

describe('normaliseEntry', () => {
  test('origins: case, default ports, trailing slash, IPv6 and numeric IPv4 forms are one normal form', () => {
    assert.equal(normaliseEntry('HTTPS://Consul.Example.COM:443/'), 'https://consul.example.com');
    assert.equal(normaliseEntry('http://consul.example.com:80'), 'http://consul.example.com');
    assert.equal(normaliseEntry('http://consul.example.com:8500'), 'http://consul.example.com:8500');
    assert.equal(normaliseEntry('http://[::1]:8500'), 'http://[::1]:8500');
    assert.equal(normaliseEntry('http://2130706433:8500'), 'http://127.0.0.1:8500');
    assert.equal(normaliseEntry('  aws:EU-West-1 '), 'aws:eu-west-1');
  });

  test('anything wider or narrower than an origin is refused, not reinterpreted', () => {
    for (const bad of [
      '*',
      'https://*.example.com',
      'https://consul.example.com/v1',
      'https://consul.example.com?x=1',
      'https://consul.example.com#x',
      'https://user@consul.example.com',
      'https://consul.example.com\\evil',
      'consul.example.com',
      'ftp://consul.example.com',
      'aws:',
      'aws:eu west',
      'aws:*',
    ]) {
      assert.equal(normaliseEntry(bad), undefined, bad);
    }
  });

  test('parseEntries splits on commas and whitespace and keeps invalid entries apart', () => {
    const p = parseEntries(' https://a.example , aws:us-east-1\nhttp://b.example:8500/ *');
    assert.deepEqual([...p.allowed], ['https://a.example', 'aws:us-east-1', 'http://b.example:8500']);
    assert.deepEqual(p.invalid, ['*']);
    assert.equal(parseEntries(undefined).allowed.size, 0);
  });
});

describe('checkSecretConsent', () => {
  const dest = (url: string): CredentialDestination => ({ entry: originOf(url) ?? url, field: 'spec.consul.address', override: true });
  const secret = (allowedEndpoints: string | undefined) => ({ namespace: 'team-a', name: 'acl', allowedEndpoints });

  test('the exact origin is allowed, whatever path the source adds', () => {
    assert.doesNotThrow(() => checkSecretConsent(secret('https://consul.example.com'), [dest('https://consul.example.com/some/base')]));
    assert.doesNotThrow(() => checkSecretConsent(secret('https://consul.example.com:443'), [dest('https://CONSUL.example.com')]));
  });

  test('prefix, suffix, user-info and scheme tricks do not match', () => {
    for (const target of [
      'https://consul.example.com.evil.io',
      'https://consul.example.com:8443',
      'http://consul.example.com',
      'https://consul.example.com@evil.io',
      'https://evil.io/https://consul.example.com',
      'https://xconsul.example.com',
      'https://consul.example.com.',
    ]) {
      assert.throws(() => checkSecretConsent(secret('https://consul.example.com'), [dest(target)]), ConsentError, target);
    }
  });

  test('a Secret without the annotation is refused, and the message gives the command and value to allow it', () => {
    const err = (() => {
      try {
        checkSecretConsent(secret(undefined), [dest('http://10.0.0.5:8500')]);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof ConsentError);
    assert.equal(err.reason, 'SecretNotPermitted');
    assert.match(err.message, /Secret team-a\/acl does not permit sending its values to http:\/\/10\.0\.0\.5:8500 \(spec\.consul\.address\)/);
    assert.ok(err.message.includes(`kubectl annotate secret acl -n team-a --overwrite ${ALLOWED_ENDPOINTS_ANNOTATION}=http://10.0.0.5:8500`));
  });

  test('the suggested value keeps what the Secret already allows, and invalid entries are named', () => {
    assert.throws(
      () => checkSecretConsent(secret('https://a.example, https://a.example/path'), [dest('https://b.example')]),
      (e: Error) => e.message.includes('=https://a.example,https://b.example') && e.message.includes('ignored invalid entries "https://a.example/path"'),
    );
  });

  test('every destination must be allowed', () => {
    assert.throws(() => checkSecretConsent(secret('aws:us-east-1'), [dest('aws:us-east-1'), dest('https://vpce.example')]), /https:\/\/vpce\.example/);
  });
});

describe('what each provider sends where', () => {
  test('Consul: the token goes to the address origin; no ambient identity; the CA needs no consent', () => {
    const spec = { consul: { address: 'https://Consul.example.com:443/base', tokenSecretRef: { name: 't' }, tls: { caSecretRef: { name: 'ca' } } } };
    const use = useOf(spec);
    assert.deepEqual(entries(use.destinations), ['https://consul.example.com']);
    assert.equal(use.ambient, false);
    const refs = factories.get('consul')?.secretRefs(validateSpec(spec)) ?? [];
    assert.deepEqual(refs.map((r) => [r.name, r.use ?? 'credential']), [['t', 'credential'], ['ca', 'trust']]);
  });

  test('EC2: the default endpoints of the region, or the override; STS for assumeRole; ambient without a Secret', () => {
    assert.deepEqual(entries(useOf({ ec2: { region: 'eu-west-1' } }).destinations), ['aws:eu-west-1']);
    assert.equal(useOf({ ec2: { region: 'eu-west-1' } }).ambient, true);
    const override = useOf({ ec2: { region: 'eu-west-1', endpoint: 'http://127.0.0.1:5000/', credentialsSecretRef: { name: 'aws' } } });
    assert.deepEqual(entries(override.destinations), ['http://127.0.0.1:5000']);
    assert.equal(override.ambient, false);
    assert.deepEqual(override.destinations.map((d) => d.override), [true]);
    const role = useOf({ ec2: { region: 'eu-west-1', endpoint: 'https://vpce.example', assumeRole: { roleArn: 'arn:aws:iam::123456789012:role/r' } } });
    assert.deepEqual(entries(role.destinations), ['aws:eu-west-1', 'https://vpce.example']);
  });

  test("GCE: the endpoint or Google's default, and the key's token_uri; ADC only without a Secret and not over plain http", () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const key = JSON.stringify({
      type: 'service_account',
      client_email: 'a@p.iam.gserviceaccount.com',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      token_uri: 'https://oauth2.googleapis.com/token',
    });
    const withKey = useOf({ gce: { project: 'proj-42', credentialsSecretRef: { name: 'k' } } }, { 'k/key.json': key });
    assert.deepEqual(entries(withKey.destinations), ['https://compute.googleapis.com', 'https://oauth2.googleapis.com']);
    assert.equal(withKey.ambient, false);
    const local = useOf({ gce: { project: 'proj-42', endpoint: 'http://127.0.0.1:8085' } });
    assert.deepEqual(entries(local.destinations), ['http://127.0.0.1:8085']);
    assert.equal(local.ambient, false, 'no credentials at all over plain http');
    const psc = useOf({ gce: { project: 'proj-42', endpoint: 'https://compute-psc.example.internal' } });
    assert.equal(psc.ambient, true);
    assert.deepEqual(psc.destinations.map((d) => [d.entry, d.override]), [['https://compute-psc.example.internal', true]]);
    assert.equal(useOf({ gce: { project: 'proj-42' } }).ambient, true);
  });
});

describe('ambient policy', () => {
  const ambientUse = (override?: string) => ({
    ambient: true,
    destinations: [override !== undefined ? { entry: originOf(override) ?? override, field: 'spec.ec2.endpoint', override: true } : { entry: 'aws:eu-west-1', field: 'spec.ec2.region', override: false }],
  });

  test('off by default: no namespace may use it', () => {
    assert.throws(() => checkAmbient(ambientPolicyOf('', ''), 'team-a', ambientUse()), (e: unknown) => e instanceof ConsentError && e.reason === 'AmbientCredentialsNotPermitted' && /--ambient-credentials-namespaces/.test(e.message));
  });

  test('listed namespaces, or *, may use it at the default endpoints', () => {
    assert.doesNotThrow(() => checkAmbient(ambientPolicyOf('team-a, team-b', ''), 'team-a', ambientUse()));
    assert.throws(() => checkAmbient(ambientPolicyOf('team-a', ''), 'team-c', ambientUse()), ConsentError);
    assert.doesNotThrow(() => checkAmbient(ambientPolicyOf('*', ''), 'anything', ambientUse()));
  });

  test('an overridden endpoint needs its own entry, matched as an origin', () => {
    const policy = ambientPolicyOf('*', 'https://vpce-1.example.com');
    assert.doesNotThrow(() => checkAmbient(policy, 'x', ambientUse('https://VPCE-1.example.com:443/')));
    assert.throws(() => checkAmbient(policy, 'x', ambientUse('https://vpce-1.example.com.evil.io')), /--ambient-credentials-endpoints/);
    assert.throws(() => checkAmbient(ambientPolicyOf('*', ''), 'x', ambientUse('http://127.0.0.1:9999')), ConsentError);
  });

  test('a source that does not use the ambient identity is never refused by the policy', () => {
    assert.doesNotThrow(() => checkAmbient(ambientPolicyOf('', ''), 'x', { ambient: false, destinations: [] }));
  });

  test('an invalid endpoint flag is refused at start-up', () => {
    assert.throws(() => ambientPolicyOf('*', 'https://a.example/path'), /--ambient-credentials-endpoints/);
  });
});
