/**
 * The mapping the operator and `vmreg preview` share: provider rules and the provider's
 * own annotations. Consul's status health mode puts the health-checks switch on every
 * entry through its mapping, so preview prints it as the operator writes it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HEALTH_CHECKS_ANNOTATION } from '../../../src/api/istio.ts';
import { consulProviderFactory } from '../../../src/providers/consul/index.ts';
import { toAppliedObject } from '../../../src/plan/kinds.ts';
import { mapEndpoints } from '../../../src/mapping/mapping.ts';
import { source } from '../../fixtures/builders.ts';

const endpoint = { id: 'node-1/web-1', scope: 'web', labels: { __address__: '10.0.0.1', __port__: '8080', __meta_consul_service: 'web' } };

function mapped(health?: 'status' | 'exclude') {
  const src = source('web').uid('uid-web').consul({ address: 'http://127.0.0.1:8500', ...(health ? { health: { mode: health } } : {}) }).build();
  const desired = mapEndpoints({ sourceName: 'web', spec: src.spec, endpoints: [endpoint], mapping: consulProviderFactory });
  const [entry] = desired.entries;
  assert.ok(entry, 'one entry');
  return toAppliedObject(entry, src);
}

describe('mapEndpoints', () => {
  test("Consul's status health mode adds the health-checks switch to the applied object", () => {
    assert.equal(mapped('status').metadata.annotations?.[HEALTH_CHECKS_ANNOTATION], 'true');
  });

  test('other modes leave it out', () => {
    assert.equal(mapped('exclude').metadata.annotations?.[HEALTH_CHECKS_ANNOTATION], undefined);
    assert.equal(mapped().metadata.annotations?.[HEALTH_CHECKS_ANNOTATION], undefined);
  });
});
