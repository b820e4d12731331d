/**
 * The narrow slice of the EC2 API the provider uses: DescribeInstances, paged to the end.
 * Tests of the provider logic can stand in for it; the real one wraps @aws-sdk/client-ec2.
 */
import { EC2Client, paginateDescribeInstances, type DescribeInstancesCommandOutput, type EC2ClientConfig, type Filter } from '@aws-sdk/client-ec2';

/** Static keys or a provider of them, as the client takes them. */
export type Ec2Credentials = NonNullable<EC2ClientConfig['credentials']>;

export interface Ec2InstancesApi {
  /** The pages of DescribeInstances for these filters, to the last one. */
  describeInstances(filters: readonly Filter[], signal: AbortSignal): AsyncIterable<DescribeInstancesCommandOutput>;
  close(): void;
}

export interface SdkClientOptions {
  readonly region: string;
  readonly endpoint?: string | undefined;
  /** undefined: the SDK's default credential chain. */
  readonly credentials?: Ec2Credentials | undefined;
  readonly maxAttempts: number;
  readonly retryMode: 'standard' | 'adaptive';
  /** Reservations per page (DescribeInstances MaxResults, 5–1000). */
  readonly pageSize: number;
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

export function sdkInstancesApi(o: SdkClientOptions): Ec2InstancesApi {
  const client = new EC2Client({
    region: o.region,
    ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
    ...(o.credentials !== undefined ? { credentials: o.credentials } : {}),
    maxAttempts: o.maxAttempts,
    retryMode: o.retryMode,
    requestHandler: { connectionTimeout: o.connectionTimeoutMs, requestTimeout: o.requestTimeoutMs },
  });
  return {
    describeInstances(filters, signal) {
      // A fresh input each time: the paginator writes NextToken and MaxResults into it.
      return paginateDescribeInstances(
        { client, pageSize: o.pageSize, stopOnSameToken: true },
        { Filters: filters.map((f) => ({ Name: f.Name, Values: [...(f.Values ?? [])] })) },
        { abortSignal: signal },
      );
    },
    close() {
      client.destroy();
    },
  };
}
