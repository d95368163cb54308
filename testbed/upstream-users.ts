/**
 * Azure-like enforcement on the local redis-server: every issued token becomes an ACL
 * user named by its `oid` with the token as password, and the user is deleted when the
 * token expires. Deleting a user makes redis-server close every connection still
 * authenticated as that user, which is what Azure does at token expiry. Disabling the
 * user (`off`) or changing its password would not: existing connections keep working.
 */
import type { Redis } from 'ioredis';

/** setTimeout cannot wait longer than this (about 24.8 days). */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class UpstreamUsers {
  #admin: Redis;
  #expiries = new Map<string, NodeJS.Timeout>();

  /** Failures of ACL commands; enforcement is best effort once redis is gone. */
  readonly errors: Error[] = [];

  constructor(admin: Redis) {
    this.#admin = admin;
  }

  /** Object ids of users that currently exist upstream. */
  get live(): string[] {
    return [...this.#expiries.keys()];
  }

  /** Creates the user for a token; resolves once redis accepts the token. */
  async add(oid: string, token: string, exp: number): Promise<void> {
    // Azure's built-in policies short of Data Owner exclude @dangerous
    // commands, CLIENT UNBLOCK among them: the proxy must not need it.
    await this.#admin.call(
      'ACL',
      'SETUSER',
      oid,
      'on',
      `>${token}`,
      '~*',
      '&*',
      '+@all',
      '-client|unblock',
    );

    const delay = Math.min(Math.max(exp * 1000 - Date.now(), 0), MAX_DELAY_MS);
    const timer = setTimeout(() => void this.remove(oid), delay);
    timer.unref();
    this.#expiries.set(oid, timer);
  }

  /** Deletes the user now, closing its connections (expiry, or revocation by a test). */
  async remove(oid: string): Promise<void> {
    clearTimeout(this.#expiries.get(oid));
    this.#expiries.delete(oid);

    try {
      await this.#admin.call('ACL', 'DELUSER', oid);
    } catch (err) {
      this.errors.push(err as Error);
    }
  }

  async clear(): Promise<void> {
    await Promise.all(this.live.map((oid) => this.remove(oid)));
  }
}
