/**
 * Carry holds the start of a line that a chunk ended in the middle of. The
 * pieces are kept apart and joined once, when the line ends: joining them on
 * every chunk would copy a long line once per chunk, quadratic in its length
 * when a peer trickles it in small segments.
 */
export class Carry {
  private pieces: Buffer[] = [];

  /** Bytes carried so far. */
  length = 0;

  get empty(): boolean {
    return this.length === 0;
  }

  /** First carried byte; only meaningful when not empty. */
  first(): number {
    return this.pieces[0][0];
  }

  /** Keeps a copy of `piece`, since callers may reuse their buffers. */
  add(piece: Buffer): void {
    if (piece.length === 0) return;
    this.pieces.push(Buffer.from(piece));
    this.length += piece.length;
  }

  /** The carried bytes followed by `tail`, in one buffer; empties the carry. */
  take(tail: Buffer): Buffer {
    const line = Buffer.concat([...this.pieces, tail], this.length + tail.length);
    this.clear();
    return line;
  }

  clear(): void {
    this.pieces = [];
    this.length = 0;
  }
}
