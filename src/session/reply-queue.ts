/**
 * What the session does with the next reply from upstream. Plain forwarded
 * commands are the overwhelming majority and are stored as run lengths, so a
 * pipeline of thousands of GETs costs one number, not thousands of objects.
 */
export interface Expectation {
  /**
   * 'internal': the proxy's own command (AUTH, HELLO, marker PING); the reply
   * is consumed. 'inspect': forwarded, but the whole frame is read first
   * (blocking commands whose wait may be sliced, HELLO, PING translated
   * for RESP2 subscribers). 'local': no upstream reply at all; `bytes` are the
   * proxy's own answer, emitted when this entry reaches the head.
   */
  kind: 'internal' | 'inspect' | 'local';
  /** Called with the complete frame for 'internal' and 'inspect'. */
  onReply?: (frame: Buffer) => void;
  bytes?: Buffer;
  /** For 'local': close the session after writing, for this reason (QUIT). */
  closeReason?: string;
  /** Marker PINGs after pub/sub commands: errors before the PONG belong to the command. */
  marker?: boolean;
}

export class ReplyQueue {
  private items: Array<number | Expectation> = [];
  private head = 0;

  get empty(): boolean {
    return this.head === this.items.length;
  }

  /** Expect one reply to be forwarded to the client. */
  forward(): void {
    const last = this.items.length - 1;
    const item = this.items[last];
    if (last >= this.head && typeof item === 'number') {
      this.items[last] = item + 1;
    } else {
      this.items.push(1);
    }
  }

  push(expectation: Expectation): void {
    this.items.push(expectation);
  }

  /** The head: 'forward' for a plain reply, the expectation, or null when empty. */
  peek(): Expectation | 'forward' | null {
    if (this.head === this.items.length) return null;
    const item = this.items[this.head];
    return typeof item === 'number' ? 'forward' : item;
  }

  shift(): void {
    const item = this.items[this.head];
    if (typeof item === 'number' && item > 1) {
      this.items[this.head] = item - 1;
      return;
    }
    this.head++;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
  }

  /** True while any expectation matching `test` waits for its reply. */
  some(test: (e: Expectation) => boolean): boolean {
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i];
      if (typeof item !== 'number' && test(item)) return true;
    }
    return false;
  }

  /** Replies still owed by upstream (local answers excluded). */
  get outstanding(): number {
    let n = 0;
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i];
      if (typeof item === 'number') n += item;
      else if (item.kind !== 'local') n += 1;
    }
    return n;
  }
}
