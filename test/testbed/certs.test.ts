import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeCertificates, type Certificates } from '../../testbed/index.js';

const load = (file: string) => new X509Certificate(readFileSync(file));

describe('makeCertificates', () => {
  let dir: string;
  let certs: Certificates;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certs-test-'));
    certs = await makeCertificates(dir);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the server certificate is signed by the CA for localhost and both loopbacks', () => {
    const ca = load(certs.caFile);
    const server = load(certs.serverCertFile);

    assert.equal(ca.ca, true);
    assert.equal(server.ca, false);
    assert.equal(server.verify(ca.publicKey), true);
    assert.equal(server.checkHost('localhost'), 'localhost');
    assert.equal(server.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(server.checkIP('::1'), '::1');
    assert.equal(server.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  });

  test('the untrusted server certificate does not chain to the CA', () => {
    const ca = load(certs.caFile);
    const untrustedCa = load(certs.untrustedCaFile);
    const untrusted = load(certs.untrustedServerCertFile);

    assert.equal(untrusted.verify(ca.publicKey), false);
    assert.equal(untrusted.verify(untrustedCa.publicKey), true);
    assert.equal(untrusted.checkIP('127.0.0.1'), '127.0.0.1');
  });

  test('client.pem holds the client certificate and its key, thumbprint included', () => {
    const pem = readFileSync(certs.clientPemFile, 'utf8');
    const cert = new X509Certificate(pem);
    const key = createPrivateKey(pem);

    assert.equal(cert.checkPrivateKey(key), true);
    assert.equal(cert.verify(load(certs.caFile).publicKey), true);
    assert.equal(certs.clientThumbprint, cert.fingerprint.replaceAll(':', ''));
    assert.match(certs.clientThumbprint, /^[0-9A-F]{40}$/);
  });

  test('a caller-owned directory survives remove()', async () => {
    await certs.remove();
    assert.equal(existsSync(certs.caFile), true);
  });

  test('TESTBED_CERT_DIR with complete files is reused, not regenerated', async (t) => {
    const saved = process.env.TESTBED_CERT_DIR;
    t.after(() => {
      if (saved === undefined) delete process.env.TESTBED_CERT_DIR;
      else process.env.TESTBED_CERT_DIR = saved;
    });
    process.env.TESTBED_CERT_DIR = dir;

    const reused = await makeCertificates();
    await reused.remove();

    assert.equal(reused.dir, dir);
    assert.equal(reused.ca, certs.ca);
    assert.equal(existsSync(certs.caFile), true);
  });

  test('without a directory, a fresh one is made and remove() deletes it', async (t) => {
    const saved = process.env.TESTBED_CERT_DIR;
    t.after(() => {
      if (saved !== undefined) process.env.TESTBED_CERT_DIR = saved;
    });
    delete process.env.TESTBED_CERT_DIR;

    const fresh = await makeCertificates();
    assert.notEqual(fresh.dir, dir);
    assert.notEqual(fresh.ca, certs.ca);

    await fresh.remove();
    assert.equal(existsSync(fresh.dir), false);
  });
});
