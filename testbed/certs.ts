/**
 * Throwaway X.509 material for the testbed: a CA the test processes trust, a server
 * certificate it signed, an unrelated "untrusted" chain for negative tests and a client
 * certificate for ClientCertificateCredential. Made with the openssl CLI because
 * node:crypto can create keys but not certificates.
 */
import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Days of validity: long enough for a test run or a demo, short enough to be harmless. */
const VALID_DAYS = '3';

const FILES = {
  ca: 'ca.pem',
  caKey: 'ca-key.pem',
  serverCert: 'server.pem',
  serverKey: 'server-key.pem',
  untrustedCa: 'untrusted-ca.pem',
  untrustedCaKey: 'untrusted-ca-key.pem',
  untrustedServerCert: 'untrusted-server.pem',
  untrustedServerKey: 'untrusted-server-key.pem',
  clientPem: 'client.pem',
} as const;

export interface Certificates {
  /** Directory holding every file below. */
  dir: string;
  /** CA that signed the server and client certificates; test processes trust it. */
  caFile: string;
  caKeyFile: string;
  /** Server certificate for DNS:localhost, IP:127.0.0.1 and IP:::1. */
  serverCertFile: string;
  serverKeyFile: string;
  /** A second, unrelated CA and a server certificate it signed, for negative tests. */
  untrustedCaFile: string;
  untrustedServerCertFile: string;
  untrustedServerKeyFile: string;
  /** Client certificate and its private key in one PEM, as ClientCertificateCredential reads. */
  clientPemFile: string;
  /** SHA-1 thumbprint of the client certificate, upper-case hex without colons. */
  clientThumbprint: string;
  /** Contents of caFile, handy for `tls: { ca }`. */
  ca: string;
  /** Deletes the directory when this call created it; a no-op for reused directories. */
  remove(): Promise<void>;
}

/**
 * Creates the testbed certificates in `dir` (or a fresh temp dir). Without `dir`, reuses
 * the files in `TESTBED_CERT_DIR` when present: the test runner generates them once per run
 * because NODE_EXTRA_CA_CERTS is read only when a process starts.
 */
export async function makeCertificates(dir?: string): Promise<Certificates> {
  const shared = process.env.TESTBED_CERT_DIR;

  if (dir === undefined && shared && (await hasAllFiles(shared))) {
    return certificatesIn(shared, false);
  }

  const target = dir ?? (await mkdtemp(join(tmpdir(), 'testbed-certs-')));
  await mkdir(target, { recursive: true });
  await generate(target);
  return certificatesIn(target, dir === undefined);
}

async function generate(dir: string): Promise<void> {
  const path = (name: string) => join(dir, name);

  await Promise.all([
    makeCa(dir, FILES.ca, FILES.caKey, 'redis-entra-proxy testbed CA'),
    makeCa(dir, FILES.untrustedCa, FILES.untrustedCaKey, 'redis-entra-proxy untrusted CA'),
  ]);

  const serverExtensions = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
  ];
  const clientExtensions = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=clientAuth',
  ];

  await Promise.all([
    makeLeaf(dir, 'server', 'localhost', serverExtensions, FILES.ca, FILES.caKey),
    makeLeaf(
      dir,
      'untrusted-server',
      'localhost',
      serverExtensions,
      FILES.untrustedCa,
      FILES.untrustedCaKey,
    ),
    makeLeaf(dir, 'client', 'testbed-client', clientExtensions, FILES.ca, FILES.caKey),
  ]);

  // The credential wants certificate and key in one file; keep no separate key around.
  const clientCert = await readFile(path(FILES.clientPem), 'utf8');
  const clientKey = await readFile(path('client-key.pem'), 'utf8');
  await writeFile(path(FILES.clientPem), clientCert + clientKey, { mode: 0o600 });
  await unlink(path('client-key.pem'));
}

async function makeCa(dir: string, cert: string, key: string, name: string): Promise<void> {
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-sha256',
    '-days',
    VALID_DAYS,
    '-keyout',
    join(dir, key),
    '-out',
    join(dir, cert),
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/**
 * Writes `<base>.pem` and `<base>-key.pem`, signed by the given CA. A CSR plus
 * `x509 -req` keeps the extensions exactly as listed, without the CA defaults that
 * `req -x509` would add from openssl.cnf.
 */
async function makeLeaf(
  dir: string,
  base: string,
  commonName: string,
  extensions: string[],
  caCert: string,
  caKey: string,
): Promise<void> {
  const csr = join(dir, `${base}.csr`);
  const extFile = join(dir, `${base}.ext`);

  await writeFile(extFile, extensions.join('\n') + '\n');
  await run('openssl', [
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-sha256',
    '-keyout',
    join(dir, `${base}-key.pem`),
    '-out',
    csr,
    '-subj',
    `/CN=${commonName}`,
  ]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-sha256',
    '-days',
    VALID_DAYS,
    '-CA',
    join(dir, caCert),
    '-CAkey',
    join(dir, caKey),
    '-set_serial',
    serialNumber(),
    '-extfile',
    extFile,
    '-out',
    join(dir, `${base}.pem`),
  ]);
  await Promise.all([unlink(csr), unlink(extFile)]);
}

/** A random positive 64-bit serial, so reissued certificates never collide in caches. */
function serialNumber(): string {
  const bytes = randomBytes(8);
  bytes[0] = bytes[0] & 0x7f;
  return '0x' + bytes.toString('hex');
}

async function hasAllFiles(dir: string): Promise<boolean> {
  try {
    await Promise.all(Object.values(FILES).map((name) => access(join(dir, name))));
    return true;
  } catch {
    return false;
  }
}

async function certificatesIn(dir: string, owned: boolean): Promise<Certificates> {
  const ca = await readFile(join(dir, FILES.ca), 'utf8');
  const clientPem = await readFile(join(dir, FILES.clientPem), 'utf8');

  return {
    dir,
    caFile: join(dir, FILES.ca),
    caKeyFile: join(dir, FILES.caKey),
    serverCertFile: join(dir, FILES.serverCert),
    serverKeyFile: join(dir, FILES.serverKey),
    untrustedCaFile: join(dir, FILES.untrustedCa),
    untrustedServerCertFile: join(dir, FILES.untrustedServerCert),
    untrustedServerKeyFile: join(dir, FILES.untrustedServerKey),
    clientPemFile: join(dir, FILES.clientPem),
    clientThumbprint: new X509Certificate(clientPem).fingerprint.replaceAll(':', ''),
    ca,
    remove: async () => {
      if (owned) await rm(dir, { recursive: true, force: true });
    },
  };
}
