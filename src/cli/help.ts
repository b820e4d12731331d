/** Help texts, apart from their commands: `vmreg run --help` must not load the operator. */

export const RUN_HELP = `vmreg run — run the operator

Options:
  --kubeconfig PATH                  kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --namespaces a,b                   watch only these namespaces (default: all)
  --metrics-bind-address ADDR        serve /metrics here (default :8080; 0 disables)
  --health-probe-bind-address ADDR   serve /healthz and /readyz here (default :8081; 0 disables)
  --leader-elect                     use a Lease so only one replica writes (default false)
  --leader-election-namespace NS     namespace of the Lease (default $POD_NAMESPACE)
  --leader-election-id NAME          name of the Lease (default vm-registry-operator)
  --leader-election-lease-duration D how long a standby waits before taking an unrenewed lease (default 15s)
  --leader-election-renew-deadline D the leader stops writing when it has not renewed for this long (default 10s; below the lease duration)
  --leader-election-retry-period D   between lease attempts (default 2s)
  --workers N                        sources reconciled in parallel (default 4)
  --kube-api-qps N                   client-side limit of requests per second to the apiserver (default 50)
  --kube-api-burst N                 requests allowed at once above that rate (default 100)
  --log-level debug|info|warn|error  (default info)
  --ambient-credentials-namespaces a,b
                                     namespaces whose sources may use the operator's own
                                     cloud identity (AWS default chain, Google ADC) when they
                                     name no Secret; * for all (default: none)
  --ambient-credentials-endpoints URL,URL
                                     endpoint overrides (scheme://host[:port]) that identity
                                     may be sent to; default endpoints need no entry (default: none)
  --consul-max-connections-per-agent N
                                     sockets open at once to one Consul endpoint, shared by
                                     every source (default 100; Consul refuses more than 200
                                     per client address by default)
  --consul-liveness-bound DURATION   a Consul endpoint that has not answered for this long
                                     makes its sources ProviderReady=False (default 15s)
  --consul-http2-watches true|false  over https, watch every selected service as an HTTP/2
                                     stream: changes in large sources arrive at once, for
                                     about 11 MiB more resident memory per 1,000 services;
                                     false watches only small sources' services (default true)
`;

export const PREVIEW_HELP = `vmreg preview — print the WorkloadEntries (and ServiceEntries) a VmRegistrySource would produce

Usage: vmreg preview -f source.yaml [--secret NAME/KEY=VALUE ...] [--timeout 30s]

Reads the registry named in the source (Consul, EC2, GCE) with your local credentials
and prints the WorkloadEntries as YAML, then the ServiceEntries when the source sets
spec.serviceEntries; skipped endpoints and services are listed on stderr.
Secrets the source refers to are given with --secret (e.g. --secret consul-acl/token=...).
`;
