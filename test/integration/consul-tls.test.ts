/**
 * The Consul provider over HTTPS against a real Consul dev agent that serves its API with
 * a certificate for 127.0.0.1 and localhost: the CA bundle from a Secret, a CA that did
 * not sign the server certificate, tls.serverName, and insecureSkipVerify.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { VmRegistrySourceSpecInput } from '../../src/api/types.ts';
import { ConsulAgent } from '../../src/dev/consul-agent.ts';
import { makeCa } from '../../src/dev/pki.ts';
import { silentLogger } from '../../src/metrics/logger.ts';
import { ProviderMetrics } from '../../src/metrics/provider-metrics.ts';
import { consulProviderFactory } from '../../src/providers/consul/index.ts';
import { isProviderError, type ProviderErrorKind } from '../../src/providers/errors.ts';
import { secretKey, type Endpoint, type Provider } from '../../src/providers/provider.ts';
import { source } from '../fixtures/builders.ts';

type ConsulInput = NonNullable<VmRegistrySourceSpecInput['consul']>;

const CA_REF = { name: 'consul-ca', key: 'ca.crt' };

const open: Provider[] = [];

function provider(consul: ConsulInput, secrets: Record<string, string> = {}): Provider {
  const p = consulProviderFactory.create({
    source: 'default/tls',
    spec: source('tls').consul(consul).build().spec,
    secrets: new Map(Object.entries(secrets)),
    metrics: new ProviderMetrics(new Registry()),
    log: silentLogger,
  });
  open.push(p);
  return p;
}

async function snap(p: Provider): Promise<Endpoint[]> {
  return [...(await p.snapshot(AbortSignal.timeout(15_000))).endpoints];
}

async function rejectsWith(p: Promise<unknown>, kind: ProviderErrorKind, message: RegExp): Promise<string> {
  let seen = '';
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isProviderError(e), `expected a ProviderError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    assert.match(e.message, message);
    seen = e.message;
    return true;
  });
  return seen;
}

/** What the provider reports for the agent's two services. */
function summary(endpoints: readonly Endpoint[]): string[] {
  return endpoints.map((e) => `${e.id} ${e.scope} ${e.labels['__address__']}:${e.labels['__port__']}`);
}

describe('Consul provider over HTTPS against a real agent', { timeout: 600_000 }, () => {
  let agent: ConsulAgent;
  let otherDir: string;
  /** A CA that did not sign the agent's certificate. */
  let otherCaPem: string;
  let caPem: string;
  let expected: string[];

  before(async () => {
    otherDir = await mkdtemp(join(tmpdir(), 'vmreg-other-ca-'));
    const [started, other] = await Promise.all([
      ConsulAgent.start({ tls: true, log: (l) => process.stderr.write(`${l}\n`) }),
      makeCa(otherDir, 'other-ca'),
    ]);
    agent = started;
    otherCaPem = await readFile(other.cert, 'utf8');
    assert.ok(agent.caPem, 'the agent exposes its CA');
    caPem = agent.caPem;
    assert.notEqual(otherCaPem, caPem);
    // Registered over plain HTTP; the provider reads them over HTTPS.
    await agent.registerService({ ID: 'web-1', Name: 'web', Address: '10.3.0.1', Port: 8080 });
    await agent.registerService({ ID: 'api-1', Name: 'api', Address: '10.3.0.2', Port: 9090 });
    expected = [`${agent.node}/api-1 api 10.3.0.2:9090`, `${agent.node}/web-1 web 10.3.0.1:8080`];
  });

  after(async () => {
    await Promise.allSettled(open.map((p) => p.close()));
    await agent?.stop();
    if (otherDir) await rm(otherDir, { recursive: true, force: true });
  });

  test('the agent serves HTTPS on its own port, next to plain HTTP', () => {
    assert.match(agent.httpsAddress, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(agent.address, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(agent.httpsAddress.split(':').at(-1), agent.address.split(':').at(-1));
    assert.match(caPem, /^-----BEGIN CERTIFICATE-----/);
  });

  test('https address with the CA bundle from the Secret: the snapshot lists the registered services', async () => {
    const p = provider(
      { address: agent.httpsAddress, services: ['web', 'api'], tls: { caSecretRef: CA_REF } },
      { [secretKey(CA_REF)]: caPem },
    );
    assert.deepEqual(summary(await snap(p)), expected);
  });

  test('a watch over HTTPS sees a new registration', async () => {
    const p = provider(
      { address: agent.httpsAddress, services: ['db'], tls: { caSecretRef: CA_REF } },
      { [secretKey(CA_REF)]: caPem },
    );
    assert.deepEqual(await snap(p), []);
    let notified = 0;
    let wake: () => void = () => {};
    p.watch?.(() => {
      notified += 1;
      wake();
    });
    await agent.registerService({ ID: 'db-1', Name: 'db', Address: '10.3.0.3', Port: 5432 });
    try {
      // The watch may also report its first complete answer: wait for the notification that carries db-1.
      const deadline = Date.now() + 10_000;
      let seen: string[] = [];
      let handled = 0;
      while (!seen.includes(`${agent.node}/db-1 db 10.3.0.3:5432`)) {
        if (notified === handled) {
          const remaining = deadline - Date.now();
          assert.ok(remaining > 0, `no watch notification with db-1 within 10 s (last snapshot ${JSON.stringify(seen)})`);
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, remaining).unref();
          });
          continue;
        }
        handled = notified;
        seen = summary(await snap(p));
      }
      assert.deepEqual(seen, [`${agent.node}/db-1 db 10.3.0.3:5432`]);
      assert.ok(notified >= 1);
    } finally {
      await agent.deregisterService('db-1');
    }
  });

  test('a CA that did not sign the server certificate: Unreachable, and the message names TLS and the certificate', async () => {
    const p = provider(
      { address: agent.httpsAddress, services: ['web'], tls: { caSecretRef: CA_REF } },
      { [secretKey(CA_REF)]: otherCaPem },
    );
    const message = await rejectsWith(snap(p), 'Unreachable', /TLS handshake with https:\/\/127\.0\.0\.1:\d+ failed/);
    assert.match(message, /VERIFY|certificate|CERT/i);
    assert.match(message, /spec\.consul\.tls/);
  });

  test('no CA bundle at all: the agent certificate is not trusted either', async () => {
    const p = provider({ address: agent.httpsAddress, services: ['web'] });
    await rejectsWith(snap(p), 'Unreachable', /TLS handshake .* failed .*spec\.consul\.tls/);
  });

  test('tls.serverName that the certificate does not name: Unreachable (TLS); a name it does carry works', async () => {
    const wrong = provider(
      { address: agent.httpsAddress, services: ['web', 'api'], tls: { caSecretRef: CA_REF, serverName: 'consul.other.test' } },
      { [secretKey(CA_REF)]: caPem },
    );
    const message = await rejectsWith(snap(wrong), 'Unreachable', /TLS handshake .* failed/);
    assert.match(message, /ERR_TLS_CERT_ALTNAME_INVALID|consul\.other\.test/);

    const right = provider(
      { address: agent.httpsAddress, services: ['web', 'api'], tls: { caSecretRef: CA_REF, serverName: 'localhost' } },
      { [secretKey(CA_REF)]: caPem },
    );
    assert.deepEqual(summary(await snap(right)), expected);
  });

  test('insecureSkipVerify without a CA bundle works', async () => {
    const p = provider({ address: agent.httpsAddress, services: ['web', 'api'], tls: { insecureSkipVerify: true } });
    assert.deepEqual(summary(await snap(p)), expected);
  });

  test('a scheme that does not match the port: http to HTTPS is a spec error, https to plain HTTP fails the handshake', async () => {
    const plainToTls = provider({ address: agent.httpsAddress.replace(/^https:/, 'http:'), services: ['web'] });
    await rejectsWith(snap(plainToTls), 'BadConfig', /HTTP 400 .*HTTPS server/);
    const tlsToPlain = provider(
      { address: agent.address.replace(/^http:/, 'https:'), services: ['web'], tls: { caSecretRef: CA_REF } },
      { [secretKey(CA_REF)]: caPem },
    );
    await rejectsWith(snap(tlsToPlain), 'Unreachable', /TLS handshake .* failed .*spec\.consul\.tls/);
  });

  test('a caSecretRef whose Secret key is missing is a spec error, not a TLS failure', () => {
    assert.throws(
      () => provider({ address: agent.httpsAddress, tls: { caSecretRef: CA_REF } }),
      (e: unknown) => isProviderError(e) && e.kind === 'BadConfig' && /spec\.consul\.tls\.caSecretRef/.test(e.message),
    );
  });
});
