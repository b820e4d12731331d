/** Certificates for the local control plane, made with the openssl command line. */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileP('openssl', args, { cwd });
  } catch (e) {
    throw new Error(`openssl ${args[0]} failed (is openssl installed?): ${(e as Error).message}`, { cause: e });
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function makeCa(dir: string, name: string): Promise<CertPair> {
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  await openssl(['req', '-x509', ...EC, '-keyout', pair.key, '-out', pair.cert, '-days', '30', '-subj', `/CN=${name}`], dir);
  return pair;
}

/** A leaf certificate signed by ca; subject like "/CN=admin/O=system:masters". */
export async function makeLeaf(
  dir: string,
  ca: CertPair,
  name: string,
  subject: string,
  usage: 'server' | 'client',
  altNames: string[] = [],
): Promise<CertPair> {
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  const lines = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
  ];
  if (altNames.length > 0) lines.push(`subjectAltName=${altNames.join(',')}`);
  await writeFile(ext, lines.join('\n') + '\n');
  await openssl(['req', ...EC, '-keyout', pair.key, '-out', csr, '-subj', subject], dir);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', pair.cert, '-days', '30', '-extfile', ext], dir);
  return pair;
}

/** An RSA key for signing service-account tokens. */
export async function makeServiceAccountKey(dir: string): Promise<string> {
  const key = join(dir, 'sa.key');
  await openssl(['genrsa', '-out', key, '2048'], dir);
  return key;
}
