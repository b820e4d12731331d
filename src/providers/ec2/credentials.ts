/**
 * Credentials for the EC2 client: the SDK's default chain (environment, web identity /
 * IRSA, instance profile) unless the spec names a Secret with static keys; either may be
 * the base for assuming a role. Key values are never logged or put in error messages.
 */
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { Ec2Spec } from './spec-schema.ts';
import { awsRegionEntry, originOfField, type CredentialDestination, type CredentialUse } from '../credential-use.ts';
import { ProviderError } from '../errors.ts';
import { secretKey, type SecretKeyReference } from '../provider.ts';
import type { Ec2Credentials } from './client.ts';

export function ec2SecretRefs(spec: Ec2Spec): SecretKeyReference[] {
  const ref = spec.credentialsSecretRef;
  if (ref === undefined) return [];
  const refs = [
    { name: ref.name, key: ref.accessKeyIdKey },
    { name: ref.name, key: ref.secretAccessKeyKey },
  ];
  if (ref.sessionTokenKey) refs.push({ name: ref.name, key: ref.sessionTokenKey });
  return refs;
}

/**
 * Requests are signed with the keys (SigV4) and sent to the EC2 endpoint; with assumeRole
 * the keys first sign the STS call at the region's default endpoint, and the temporary
 * credentials it returns sign the EC2 calls. Without a Secret the default chain (the
 * operator's own identity) does the signing.
 */
export function ec2CredentialUse(spec: Ec2Spec): CredentialUse {
  const destinations: CredentialDestination[] = [];
  if (spec.assumeRole !== undefined) destinations.push({ entry: awsRegionEntry(spec.region), field: 'spec.ec2.assumeRole (STS)', override: false });
  destinations.push(
    spec.endpoint !== undefined
      ? { entry: originOfField('ec2', 'spec.ec2.endpoint', spec.endpoint), field: 'spec.ec2.endpoint', override: true }
      : { entry: awsRegionEntry(spec.region), field: 'spec.ec2.region', override: false },
  );
  return { destinations, ambient: spec.credentialsSecretRef === undefined };
}

/**
 * undefined means the default chain. Throws ProviderError(BadConfig) when the Secret
 * lacks a key, so the source reports it instead of silently falling back to the chain.
 */
export function ec2Credentials(spec: Ec2Spec, secrets: ReadonlyMap<string, string>): Ec2Credentials | undefined {
  let base: Ec2Credentials | undefined;
  const ref = spec.credentialsSecretRef;
  if (ref !== undefined) {
    const read = (key: string): string => {
      const value = secrets.get(secretKey({ name: ref.name, key }));
      if (value === undefined || value === '') {
        throw new ProviderError('ec2', 'BadConfig', `Secret ${ref.name} has no value for key ${key}`);
      }
      return value.trim();
    };
    const sessionToken = ref.sessionTokenKey ? read(ref.sessionTokenKey) : undefined;
    base = {
      accessKeyId: read(ref.accessKeyIdKey),
      secretAccessKey: read(ref.secretAccessKeyKey),
      ...(sessionToken !== undefined ? { sessionToken } : {}),
    };
  }
  const role = spec.assumeRole;
  if (role === undefined) return base;
  // STS is reached at its regional endpoint (or AWS_ENDPOINT_URL_STS); ec2.endpoint is for EC2 only.
  return fromTemporaryCredentials({
    params: {
      RoleArn: role.roleArn,
      RoleSessionName: role.sessionName,
      ...(role.externalId !== undefined ? { ExternalId: role.externalId } : {}),
    },
    ...(base !== undefined ? { masterCredentials: base } : {}),
    clientConfig: { region: spec.region, maxAttempts: spec.maxAttempts, retryMode: spec.retryMode },
  });
}
