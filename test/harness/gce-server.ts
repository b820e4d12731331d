/**
 * A local server that answers the two Compute Engine REST calls the GCE provider
 * makes, in the shapes Google documents:
 *   GET /compute/v1/projects/{project}/aggregated/instances
 *   GET /compute/v1/projects/{project}/zones/{zone}/instances
 * with `filter`, `maxResults` and `pageToken`. Instances live in memory; tests add,
 * change and delete them, make zones unreachable, require credentials and inject
 * errors. What it honours and what not: test/harness/GCE-FAKE.md.
 */
import { createPublicKey, generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// ---------------------------------------------------------------------------------
// Filter expressions
// ---------------------------------------------------------------------------------

export type ComparisonOp = '=' | '!=' | '>' | '<' | '>=' | '<=' | ':';
export type RegexOp = 'eq' | 'ne';

export type FilterExpr =
  | { readonly kind: 'and'; readonly parts: readonly FilterExpr[] }
  | { readonly kind: 'or'; readonly parts: readonly FilterExpr[] }
  | { readonly kind: 'cmp'; readonly field: readonly string[]; readonly op: ComparisonOp | RegexOp; readonly value: string; readonly quoted: boolean };

export class FilterSyntaxError extends Error {
  override readonly name = 'FilterSyntaxError';
}

/** Top-level Instance fields a filter may name (others are rejected, as Compute does). */
const INSTANCE_FIELDS = new Set([
  'kind', 'id', 'creationTimestamp', 'name', 'description', 'tags', 'machineType', 'status', 'statusMessage', 'zone',
  'canIpForward', 'networkInterfaces', 'disks', 'metadata', 'serviceAccounts', 'selfLink', 'scheduling', 'cpuPlatform',
  'labels', 'labelFingerprint', 'startRestricted', 'deletionProtection', 'fingerprint', 'lastStartTimestamp',
  'lastStopTimestamp', 'hostname',
]);

type Token =
  | { readonly t: 'lparen' | 'rparen' | 'and' | 'or' | 'not' }
  | { readonly t: 'op'; readonly op: ComparisonOp | RegexOp }
  | { readonly t: 'word'; readonly text: string; readonly quoted: boolean };

const WORD_CHAR = /[^\s()=!<>:"']/;

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i] ?? '';
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')') {
      tokens.push({ t: c === '(' ? 'lparen' : 'rparen' });
      i++;
    } else if (c === '"' || c === "'") {
      let text = '';
      let j = i + 1;
      for (; j < input.length && input[j] !== c; j++) {
        if (input[j] === '\\' && j + 1 < input.length) j++;
        text += input[j];
      }
      if (j >= input.length) throw new FilterSyntaxError(`unterminated quoted string at ${i}`);
      tokens.push({ t: 'word', text, quoted: true });
      i = j + 1;
    } else if ('=!<>:'.includes(c)) {
      const two = input.slice(i, i + 2);
      if (two === '!=' || two === '>=' || two === '<=') {
        tokens.push({ t: 'op', op: two });
        i += 2;
      } else if (c === '!') {
        throw new FilterSyntaxError(`unexpected '!' at ${i}`);
      } else {
        tokens.push({ t: 'op', op: c as ComparisonOp });
        i++;
      }
    } else {
      let j = i;
      while (j < input.length && WORD_CHAR.test(input[j] ?? '')) j++;
      const text = input.slice(i, j);
      i = j;
      if (text === 'AND') tokens.push({ t: 'and' });
      else if (text === 'OR') tokens.push({ t: 'or' });
      else if (text === 'NOT' || text.startsWith('-')) tokens.push({ t: 'not' });
      else if (text === 'eq' || text === 'ne') tokens.push({ t: 'op', op: text });
      else tokens.push({ t: 'word', text, quoted: false });
    }
  }
  return tokens;
}

/**
 * Parses the filter subset described in GCE-FAKE.md. Precedence follows AIP-160:
 * OR binds tighter than AND, and juxtaposition is AND ("a OR b c" = "(a OR b) AND c").
 */
export function parseFilter(input: string): FilterExpr | undefined {
  const tokens = tokenize(input);
  if (tokens.length === 0) return undefined;
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];

  const restriction = (): FilterExpr => {
    const field = peek();
    if (field?.t !== 'word' || field.quoted) throw new FilterSyntaxError(`expected a field name at token ${pos}`);
    pos++;
    const path = field.text.split('.');
    if (path.some((p) => !/^[A-Za-z_][A-Za-z0-9_-]*$/.test(p))) throw new FilterSyntaxError(`invalid field name ${field.text}`);
    if (!INSTANCE_FIELDS.has(path[0] ?? '')) throw new FilterSyntaxError(`unknown field ${path[0] ?? ''}`);
    const op = peek();
    if (op?.t !== 'op') throw new FilterSyntaxError(`expected an operator after ${field.text}`);
    pos++;
    const value = peek();
    if (value?.t !== 'word') throw new FilterSyntaxError(`expected a value after ${field.text} ${op.op}`);
    pos++;
    if (value.text === '*' && !value.quoted && op.op !== ':') throw new FilterSyntaxError("'*' is only allowed with ':'");
    return { kind: 'cmp', field: path, op: op.op, value: value.text, quoted: value.quoted };
  };

  const term = (): FilterExpr => {
    const tok = peek();
    if (tok?.t === 'not') throw new FilterSyntaxError('NOT and - are not supported');
    if (tok?.t === 'lparen') {
      pos++;
      const inner = expression();
      if (peek()?.t !== 'rparen') throw new FilterSyntaxError('missing )');
      pos++;
      return inner;
    }
    return restriction();
  };

  const factor = (): FilterExpr => {
    const parts = [term()];
    while (peek()?.t === 'or') {
      pos++;
      parts.push(term());
    }
    return parts.length === 1 ? (parts[0] as FilterExpr) : { kind: 'or', parts };
  };

  const sequence = (): FilterExpr => {
    const parts = [factor()];
    for (let t = peek(); t && (t.t === 'word' || t.t === 'lparen' || t.t === 'not'); t = peek()) parts.push(factor());
    return parts.length === 1 ? (parts[0] as FilterExpr) : { kind: 'and', parts };
  };

  const expression = (): FilterExpr => {
    const parts = [sequence()];
    while (peek()?.t === 'and') {
      pos++;
      parts.push(sequence());
    }
    return parts.length === 1 ? (parts[0] as FilterExpr) : { kind: 'and', parts };
  };

  const expr = expression();
  if (pos < tokens.length) throw new FilterSyntaxError(`unexpected token at ${pos}`);
  checkSyntaxFamily(expr);
  return expr;
}

/** Compute refuses to mix eq/ne (regular expressions) with the comparison syntax, and OR with eq/ne. */
function checkSyntaxFamily(expr: FilterExpr): void {
  const ops: string[] = [];
  let hasOr = false;
  const walk = (e: FilterExpr): void => {
    if (e.kind === 'cmp') ops.push(e.op);
    else {
      if (e.kind === 'or') hasOr = true;
      e.parts.forEach(walk);
    }
  };
  walk(expr);
  const regex = ops.filter((o) => o === 'eq' || o === 'ne').length;
  if (regex > 0 && regex < ops.length) throw new FilterSyntaxError('eq/ne expressions cannot be mixed with comparison expressions');
  if (regex > 0 && hasOr) throw new FilterSyntaxError('OR cannot be used with eq/ne expressions');
}

/** Values at a field path; arrays fan out, so a repeated field matches if any element does. */
function valuesAt(obj: unknown, path: readonly string[]): unknown[] {
  let current: unknown[] = [obj];
  for (const key of path) {
    const next: unknown[] = [];
    for (const v of current) {
      const items = Array.isArray(v) ? v : [v];
      for (const item of items) {
        if (typeof item === 'object' && item !== null && key in item) next.push((item as Record<string, unknown>)[key]);
      }
    }
    current = next;
  }
  return current.flatMap((v) => (Array.isArray(v) ? v : [v])).filter((v) => v !== undefined && v !== null);
}

const URL_FIELDS = new Set(['zone', 'machineType', 'network', 'subnetwork', 'selfLink']);

function scalarEquals(candidate: unknown, value: string, lastKey: string): boolean {
  if (typeof candidate === 'object') return false;
  const s = String(candidate);
  if (s === value) return true;
  if (typeof candidate === 'number' && Number(value) === candidate) return true;
  // Resource references are URLs; a short name is accepted for them.
  return URL_FIELDS.has(lastKey) && s.endsWith(`/${value}`);
}

function compare(candidate: unknown, value: string): number | undefined {
  if (typeof candidate === 'object') return undefined;
  const a = String(candidate);
  const na = Number(a);
  const nb = Number(value);
  if (a !== '' && value !== '' && Number.isFinite(na) && Number.isFinite(nb)) {
    // uint64 ids exceed doubles: compare them as integers.
    if (/^[0-9]+$/.test(a) && /^[0-9]+$/.test(value)) {
      const x = BigInt(a);
      const y = BigInt(value);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    return na - nb;
  }
  return a < value ? -1 : a > value ? 1 : 0;
}

export function matchesFilter(expr: FilterExpr | undefined, obj: unknown): boolean {
  if (!expr) return true;
  if (expr.kind === 'and') return expr.parts.every((p) => matchesFilter(p, obj));
  if (expr.kind === 'or') return expr.parts.some((p) => matchesFilter(p, obj));
  const values = valuesAt(obj, expr.field);
  const lastKey = expr.field[expr.field.length - 1] ?? '';
  switch (expr.op) {
    case ':':
      if (expr.value === '*' && !expr.quoted) return values.length > 0;
      return values.some((v) => scalarEquals(v, expr.value, lastKey));
    case '=':
      return values.some((v) => scalarEquals(v, expr.value, lastKey));
    case '!=':
      return !values.some((v) => scalarEquals(v, expr.value, lastKey));
    case 'eq':
    case 'ne': {
      const re = new RegExp(`^(?:${expr.value})$`);
      const hit = values.some((v) => typeof v !== 'object' && re.test(String(v)));
      return expr.op === 'eq' ? hit : !hit;
    }
    default: {
      const op = expr.op;
      return values.some((v) => {
        const c = compare(v, expr.value);
        if (c === undefined) return false;
        return op === '>' ? c > 0 : op === '<' ? c < 0 : op === '>=' ? c >= 0 : c <= 0;
      });
    }
  }
}

// ---------------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------------

export type InstanceStatus =
  | 'PROVISIONING' | 'STAGING' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'SUSPENDING' | 'SUSPENDED' | 'REPAIRING' | 'TERMINATED';

export interface FakeInterfaceInput {
  readonly networkIP: string;
  /** External address of the interface's one access config; null or absent: none. */
  readonly natIP?: string | null;
  readonly network?: string;
  readonly subnetwork?: string;
}

export interface FakeInstanceInput {
  readonly name: string;
  readonly zone: string;
  readonly status?: InstanceStatus;
  readonly labels?: Record<string, string>;
  readonly metadata?: Record<string, string>;
  readonly tags?: readonly string[];
  /** Short name, e.g. "e2-medium". */
  readonly machineType?: string;
  /** nic0, then nic1, ... Default: one interface with a generated address. */
  readonly interfaces?: readonly FakeInterfaceInput[];
  readonly serviceAccountEmail?: string;
}

/** An instance as the Compute API returns it (JSON). */
export type InstanceJson = Record<string, unknown> & { readonly id: string; readonly name: string; readonly zone: string; status: string };

interface StoredInstance {
  input: FakeInstanceInput;
  readonly id: string;
  readonly creationTimestamp: string;
  fingerprint: number;
}

export type UnreachableMode = 'warning' | 'unreachables' | 'both';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
}

export interface GceServerOptions {
  /** Projects that exist. Default: ["test-project"]. */
  readonly projects?: readonly string[];
  /** Zones that exist. Default: europe-west1-b, europe-west1-c, us-central1-a. */
  readonly zones?: readonly string[];
  /** Port to listen on (restarting on the same port). Default: any free port. */
  readonly port?: number;
}

interface TrustedAccount {
  readonly publicKey: KeyObject;
  readonly canList: boolean;
}

interface InjectedFailure {
  readonly status: 401 | 403 | 404 | 429 | 500 | 503;
  remaining: number;
}

const READ_SCOPES = new Set([
  'https://www.googleapis.com/auth/compute.readonly',
  'https://www.googleapis.com/auth/compute',
  'https://www.googleapis.com/auth/cloud-platform',
  'https://www.googleapis.com/auth/cloud-platform.read-only',
]);

const MAX_RESULTS = 500;

class HttpError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly domain: string;
  readonly extra: Record<string, string>;
  constructor(status: number, message: string, reason: string, domain = 'global', extra: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.domain = domain;
    this.extra = extra;
  }
}

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  405: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

function injected(status: InjectedFailure['status'], project: string): HttpError {
  switch (status) {
    case 401:
      return new HttpError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', 'authError', 'global', { location: 'Authorization', locationType: 'header' });
    case 403:
      return new HttpError(403, `Required 'compute.instances.list' permission for 'projects/${project}'`, 'forbidden');
    case 404:
      return new HttpError(404, `The resource 'projects/${project}' was not found`, 'notFound');
    case 429:
      return new HttpError(429, "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of the Compute Engine API.", 'rateLimitExceeded', 'usageLimits');
    case 500:
      return new HttpError(500, 'Internal error. Please try again or contact Google Support.', 'backendError');
    case 503:
      return new HttpError(503, 'The service is currently unavailable.', 'backendError');
  }
}

function encodePageToken(offset: number, scope: string): string {
  return Buffer.from(JSON.stringify({ o: offset, s: scope })).toString('base64url');
}

function decodePageToken(token: string, scope: string): number {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { o?: unknown; s?: unknown };
    if (typeof v.o === 'number' && Number.isInteger(v.o) && v.o >= 0 && v.s === scope) return v.o;
  } catch {
    /* fall through */
  }
  throw new HttpError(400, `Invalid value for field 'pageToken': '${token}'. Invalid page token.`, 'invalid');
}

export class GceFakeServer {
  readonly projects: readonly string[];
  /** The first project: the one tests usually use. */
  readonly project: string;
  private readonly zones: string[];
  private readonly instances = new Map<string, StoredInstance>(); // key: zone/name
  private readonly unreachable = new Map<string, UnreachableMode>();
  private readonly trusted = new Map<string, TrustedAccount>();
  private readonly tokens = new Set<string>();
  private readonly failures: InjectedFailure[] = [];
  private authRequired = false;
  private pageSizeLimit: number | undefined;
  private nextId = 7_000_000_000_000_000_001n; // above 2^53, as real ids are
  private nextIp = 10;
  private server: Server | undefined;
  private boundPort = 0;
  /** Every request answered, oldest first. */
  readonly requests: RecordedRequest[] = [];

  private constructor(opts: GceServerOptions) {
    this.projects = opts.projects ?? ['test-project'];
    this.project = this.projects[0] ?? 'test-project';
    this.zones = [...(opts.zones ?? ['europe-west1-b', 'europe-west1-c', 'us-central1-a'])].sort();
  }

  static async start(opts: GceServerOptions = {}): Promise<GceFakeServer> {
    const s = new GceFakeServer(opts);
    await s.listen(opts.port ?? 0);
    return s;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Base URL, the value for spec.gce.endpoint. */
  get url(): string {
    return `http://127.0.0.1:${this.boundPort}`;
  }

  get running(): boolean {
    return this.server?.listening ?? false;
  }

  private async listen(port: number): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
  }

  /** Stops listening and drops open connections (the registry is "down"); state is kept. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port with the same state. */
  async restart(): Promise<void> {
    if (this.server) return;
    await this.listen(this.boundPort);
  }

  // --- test hooks: instances ---------------------------------------------------

  addZone(zone: string): void {
    if (!this.zones.includes(zone)) {
      this.zones.push(zone);
      this.zones.sort();
    }
  }

  /** Adds an instance (its zone is created if needed) and returns it as the API shows it. */
  addInstance(input: FakeInstanceInput): InstanceJson {
    this.addZone(input.zone);
    const key = `${input.zone}/${input.name}`;
    if (this.instances.has(key)) throw new Error(`instance ${key} exists`);
    const id = (this.nextId++).toString();
    const interfaces = input.interfaces ?? [{ networkIP: `10.0.${Math.floor(this.nextIp / 250)}.${(this.nextIp++ % 250) + 2}` }];
    const stored: StoredInstance = {
      input: { ...input, interfaces },
      id,
      creationTimestamp: new Date().toISOString().replace('Z', '+00:00'),
      fingerprint: 1,
    };
    this.instances.set(key, stored);
    return this.toJson(stored);
  }

  /** Changes an instance in place (labels, metadata, status, interfaces, ...); id stays. */
  updateInstance(zone: string, name: string, patch: Partial<Omit<FakeInstanceInput, 'name' | 'zone'>>): InstanceJson {
    const stored = this.find(zone, name);
    stored.input = { ...stored.input, ...patch };
    stored.fingerprint++;
    return this.toJson(stored);
  }

  setLabels(zone: string, name: string, labels: Record<string, string>): InstanceJson {
    return this.updateInstance(zone, name, { labels });
  }

  /** Stopping releases ephemeral external addresses, as Compute does. */
  setStatus(zone: string, name: string, status: InstanceStatus): InstanceJson {
    const stored = this.find(zone, name);
    const stopped = status === 'TERMINATED' || status === 'STOPPED' || status === 'SUSPENDED';
    const interfaces = stopped ? (stored.input.interfaces ?? []).map((n) => ({ ...n, natIP: null })) : stored.input.interfaces;
    return this.updateInstance(zone, name, { status, ...(interfaces ? { interfaces } : {}) });
  }

  deleteInstance(zone: string, name: string): boolean {
    return this.instances.delete(`${zone}/${name}`);
  }

  instance(zone: string, name: string): InstanceJson | undefined {
    const s = this.instances.get(`${zone}/${name}`);
    return s ? this.toJson(s) : undefined;
  }

  allInstances(): InstanceJson[] {
    return this.sorted().map((s) => this.toJson(s));
  }

  // --- test hooks: failures ------------------------------------------------------

  /**
   * Makes a zone unreachable (false: reachable again). In the aggregated list it then
   * carries an UNREACHABLE warning ('warning'), is listed in `unreachables`
   * ('unreachables'), or both; its instances are left out. Its own list answers 503.
   */
  setZoneUnreachable(zone: string, mode: UnreachableMode | false = 'warning'): void {
    if (mode === false) this.unreachable.delete(zone);
    else this.unreachable.set(zone, mode);
  }

  /** Answers the next `count` requests with this error, in Google's JSON error shape. */
  failNext(status: InjectedFailure['status'], count = 1): void {
    this.failures.push({ status, remaining: count });
  }

  /** Returns at most n instances per page, whatever maxResults asks (Google may, too). */
  setPageSizeLimit(n: number | undefined): void {
    this.pageSizeLimit = n;
  }

  /** Requires a bearer token on every request: a token added here, or a JWT of a trusted service account. */
  requireAuth(required = true): void {
    this.authRequired = required;
  }

  /** Accepts this opaque bearer token (when auth is required). */
  acceptToken(token: string): void {
    this.tokens.add(token);
  }

  /** Trusts self-signed JWTs of this service account, verified with its public key. */
  trustServiceAccount(email: string, publicKeyPem: string, opts: { canList?: boolean } = {}): void {
    this.trusted.set(email, { publicKey: createPublicKey(publicKeyPem), canList: opts.canList ?? true });
  }

  /**
   * A new service-account key file (JSON, as Google issues them) whose public key this
   * server trusts. canList: false makes its requests fail with 403 (no permission).
   */
  createServiceAccountKey(email: string, opts: { canList?: boolean; trusted?: boolean } = {}): string {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyId = randomBytes(20).toString('hex');
    if (opts.trusted ?? true) this.trustServiceAccount(email, publicKey.export({ type: 'spki', format: 'pem' }).toString(), opts);
    return JSON.stringify({
      type: 'service_account',
      project_id: this.project,
      private_key_id: keyId,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: email,
      client_id: '100000000000000000001',
    });
  }

  // --- HTTP ------------------------------------------------------------------------

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    let status = 200;
    let body: unknown;
    try {
      body = this.route(req, url);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, 'Internal error. Please try again or contact Google Support.', 'backendError');
      status = err.status;
      body = {
        error: {
          code: err.status,
          message: err.message,
          errors: [{ message: err.message, domain: err.domain, reason: err.reason, ...err.extra }],
          status: STATUS_NAMES[err.status] ?? 'UNKNOWN',
        },
      };
    }
    this.requests.push({ method: req.method ?? '', path: url.pathname, query, status });
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private route(req: IncomingMessage, url: URL): unknown {
    const aggregated = /^\/compute\/v1\/projects\/([^/]+)\/aggregated\/instances$/.exec(url.pathname);
    const zonal = /^\/compute\/v1\/projects\/([^/]+)\/zones\/([^/]+)\/instances$/.exec(url.pathname);
    if (!aggregated && !zonal) throw new HttpError(404, `The requested URL ${url.pathname} was not found on this server.`, 'notFound');
    if (req.method !== 'GET') throw new HttpError(405, `Method ${req.method ?? ''} not allowed on ${url.pathname}`, 'httpMethodNotAllowed');
    const project = decodeURIComponent((aggregated ?? zonal)?.[1] ?? '');

    this.authenticate(req, project);
    const failure = this.failures.find((f) => f.remaining > 0);
    if (failure) {
      failure.remaining--;
      throw injected(failure.status, project);
    }
    if (!this.projects.includes(project)) throw new HttpError(404, `The resource 'projects/${project}' was not found`, 'notFound');

    const filterText = url.searchParams.get('filter') ?? '';
    let filter: FilterExpr | undefined;
    try {
      filter = parseFilter(filterText);
    } catch (e) {
      throw new HttpError(400, `Invalid value for field 'filter': '${filterText}'. Invalid list filter expression: ${(e as Error).message}.`, 'invalid');
    }
    const raw = url.searchParams.get('maxResults');
    let maxResults = raw === null ? MAX_RESULTS : Number(raw);
    if (!Number.isInteger(maxResults) || maxResults < 0 || maxResults > MAX_RESULTS) {
      throw new HttpError(400, `Invalid value for field 'maxResults': '${raw ?? ''}'. Must be between 0 and ${MAX_RESULTS}.`, 'invalid');
    }
    if (maxResults === 0) maxResults = MAX_RESULTS;
    if (this.pageSizeLimit !== undefined) maxResults = Math.min(maxResults, this.pageSizeLimit);
    const pageToken = url.searchParams.get('pageToken') ?? '';

    if (aggregated) return this.aggregatedList(project, filter, filterText, maxResults, pageToken);
    const zone = decodeURIComponent(zonal?.[2] ?? '');
    return this.zoneList(project, zone, filter, filterText, maxResults, pageToken);
  }

  private authenticate(req: IncomingMessage, project: string): void {
    if (!this.authRequired) return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(header);
    if (!m?.[1]) {
      throw new HttpError(401, 'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.', 'required', 'global', { location: 'Authorization', locationType: 'header' });
    }
    const token = m[1];
    if (this.tokens.has(token)) return;
    const account = this.verifyJwt(token);
    if (!account) {
      throw new HttpError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', 'authError', 'global', { location: 'Authorization', locationType: 'header' });
    }
    if (!account.canList) throw new HttpError(403, `Required 'compute.instances.list' permission for 'projects/${project}'`, 'forbidden');
  }

  /** Verifies a self-signed service-account JWT (RS256) against the trusted keys. */
  private verifyJwt(token: string): TrustedAccount | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [h = '', p = '', sig = ''] = parts;
    let header: { alg?: unknown };
    let payload: { iss?: unknown; exp?: unknown; iat?: unknown; scope?: unknown; aud?: unknown };
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as typeof header;
      payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as typeof payload;
    } catch {
      return undefined;
    }
    if (header.alg !== 'RS256' || typeof payload.iss !== 'string') return undefined;
    const account = this.trusted.get(payload.iss);
    if (!account) return undefined;
    if (!verify('sha256', Buffer.from(`${h}.${p}`), account.publicKey, Buffer.from(sig, 'base64url'))) return undefined;
    const now = Date.now() / 1000;
    if (typeof payload.exp !== 'number' || payload.exp < now - 60) return undefined;
    if (typeof payload.iat === 'number' && payload.iat > now + 300) return undefined;
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
    const audienceOk = typeof payload.aud === 'string' && payload.aud.includes('compute');
    if (!audienceOk && !scopes.some((s) => READ_SCOPES.has(s))) return undefined;
    return account;
  }

  // --- list shapes -------------------------------------------------------------------

  private zoneUrl(project: string, zone: string): string {
    return `${this.url}/compute/v1/projects/${project}/zones/${zone}`;
  }

  private sorted(): StoredInstance[] {
    return [...this.instances.values()].sort((a, b) =>
      a.input.zone === b.input.zone ? a.input.name.localeCompare(b.input.name) : a.input.zone.localeCompare(b.input.zone),
    );
  }

  private toJson(s: StoredInstance): InstanceJson {
    const { input } = s;
    const project = this.project;
    const region = input.zone.slice(0, input.zone.lastIndexOf('-'));
    const base = `${this.url}/compute/v1/projects/${project}`;
    const json: InstanceJson = {
      kind: 'compute#instance',
      id: s.id,
      creationTimestamp: s.creationTimestamp,
      name: input.name,
      machineType: `${this.zoneUrl(project, input.zone)}/machineTypes/${input.machineType ?? 'e2-medium'}`,
      status: input.status ?? 'RUNNING',
      zone: this.zoneUrl(project, input.zone),
      canIpForward: false,
      networkInterfaces: (input.interfaces ?? []).map((n, i) => ({
        kind: 'compute#networkInterface',
        name: `nic${i}`,
        network: `${base}/global/networks/${n.network ?? 'default'}`,
        subnetwork: `${base}/regions/${region}/subnetworks/${n.subnetwork ?? n.network ?? 'default'}`,
        networkIP: n.networkIP,
        fingerprint: `nic${s.fingerprint}`,
        stackType: 'IPV4_ONLY',
        ...(n.natIP
          ? { accessConfigs: [{ kind: 'compute#accessConfig', type: 'ONE_TO_ONE_NAT', name: 'External NAT', natIP: n.natIP, networkTier: 'PREMIUM' }] }
          : {}),
      })),
      metadata: {
        kind: 'compute#metadata',
        fingerprint: `md${s.fingerprint}`,
        ...(input.metadata && Object.keys(input.metadata).length > 0
          ? { items: Object.entries(input.metadata).map(([key, value]) => ({ key, value })) }
          : {}),
      },
      tags: { fingerprint: `tg${s.fingerprint}`, ...(input.tags && input.tags.length > 0 ? { items: [...input.tags] } : {}) },
      ...(input.serviceAccountEmail
        ? { serviceAccounts: [{ email: input.serviceAccountEmail, scopes: ['https://www.googleapis.com/auth/cloud-platform'] }] }
        : {}),
      selfLink: `${this.zoneUrl(project, input.zone)}/instances/${input.name}`,
      scheduling: { onHostMaintenance: 'MIGRATE', automaticRestart: true, preemptible: false, provisioningModel: 'STANDARD' },
      cpuPlatform: 'Intel Broadwell',
      ...(input.labels && Object.keys(input.labels).length > 0 ? { labels: { ...input.labels } } : {}),
      labelFingerprint: `lb${s.fingerprint}`,
      startRestricted: false,
      deletionProtection: false,
      fingerprint: `fp${s.fingerprint}`,
    };
    return json;
  }

  private aggregatedList(project: string, filter: FilterExpr | undefined, filterText: string, maxResults: number, pageToken: string): unknown {
    const scope = `aggregated|${project}|${filterText}`;
    const offset = pageToken ? decodePageToken(pageToken, scope) : 0;
    const matching = this.sorted()
      .filter((s) => !this.unreachable.has(s.input.zone))
      .map((s) => this.toJson(s))
      .filter((j) => matchesFilter(filter, j));
    const page = matching.slice(offset, offset + maxResults);
    const items: Record<string, unknown> = {};
    const unreachables: string[] = [];
    for (const zone of this.zones) {
      const key = `zones/${zone}`;
      const mode = this.unreachable.get(zone);
      if (mode) {
        if (mode !== 'unreachables') {
          items[key] = { warning: { code: 'UNREACHABLE', message: `Scope '${key}' is unreachable.`, data: [{ key: 'scope', value: key }] } };
        }
        if (mode !== 'warning') unreachables.push(key);
        continue;
      }
      const inZone = page.filter((j) => j.zone.endsWith(`/zones/${zone}`));
      items[key] =
        inZone.length > 0
          ? { instances: inZone }
          : { warning: { code: 'NO_RESULTS_ON_PAGE', message: `There are no results for scope '${key}' on this page.`, data: [{ key: 'scope', value: key }] } };
    }
    const next = offset + maxResults < matching.length ? encodePageToken(offset + maxResults, scope) : undefined;
    return {
      kind: 'compute#instanceAggregatedList',
      id: `projects/${project}/aggregated/instances`,
      items,
      ...(next ? { nextPageToken: next } : {}),
      selfLink: `${this.url}/compute/v1/projects/${project}/aggregated/instances`,
      ...(unreachables.length > 0 ? { unreachables } : {}),
    };
  }

  private zoneList(project: string, zone: string, filter: FilterExpr | undefined, filterText: string, maxResults: number, pageToken: string): unknown {
    if (!this.zones.includes(zone)) throw new HttpError(404, `The resource 'projects/${project}/zones/${zone}' was not found`, 'notFound');
    if (this.unreachable.has(zone)) throw new HttpError(503, `The zone 'projects/${project}/zones/${zone}' is currently unavailable.`, 'backendError');
    const scope = `zone|${project}|${zone}|${filterText}`;
    const offset = pageToken ? decodePageToken(pageToken, scope) : 0;
    const matching = this.sorted()
      .filter((s) => s.input.zone === zone)
      .map((s) => this.toJson(s))
      .filter((j) => matchesFilter(filter, j));
    const page = matching.slice(offset, offset + maxResults);
    const next = offset + maxResults < matching.length ? encodePageToken(offset + maxResults, scope) : undefined;
    return {
      kind: 'compute#instanceList',
      id: `projects/${project}/zones/${zone}/instances`,
      ...(page.length > 0 ? { items: page } : {}),
      ...(next ? { nextPageToken: next } : {}),
      selfLink: `${this.zoneUrl(project, zone)}/instances`,
    };
  }

  private find(zone: string, name: string): StoredInstance {
    const s = this.instances.get(`${zone}/${name}`);
    if (!s) throw new Error(`no instance ${zone}/${name}`);
    return s;
  }
}
