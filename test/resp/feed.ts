/**
 * Drives the scanners the way a socket would: over a sequence of chunks,
 * carrying state from one chunk to the next. Every helper also checks the
 * contract a caller relies on: each call returns -1 or makes progress, and
 * `atBoundary` is false exactly while a frame is unfinished.
 */
import assert from 'node:assert/strict';
import type { Kind } from '../../src/resp/commands.js';
import { ReplyScanner } from '../../src/resp/reply-scanner.js';
import { RequestScanner } from '../../src/resp/request-scanner.js';

/** One top-level reply frame found by the scanner. */
export interface FoundReply {
  /** Offset just past the frame, counted from the first chunk. */
  end: number;
  type: string;
}

/** One command found by the scanner. */
export interface FoundRequest {
  end: number;
  kind: Kind;
  /** Arguments as latin1 text (one char per byte), null when not kept. */
  args: string[] | null;
  inline: boolean;
}

export function scanReplies(chunks: Buffer[], scanner = new ReplyScanner()): FoundReply[] {
  const found: FoundReply[] = [];
  let base = 0;
  for (const chunk of chunks) {
    let pos = 0;
    while (pos < chunk.length) {
      const end = scanner.scan(chunk, pos);
      if (end < 0) {
        assert.equal(scanner.atBoundary, false, 'a chunk ended mid-frame');
        break;
      }
      assert.ok(end > pos && end <= chunk.length, `no progress: ${pos} -> ${end}`);
      assert.equal(scanner.atBoundary, true, 'a frame ended');
      found.push({ end: base + end, type: String.fromCharCode(scanner.type) });
      pos = end;
    }
    base += chunk.length;
  }
  return found;
}

export function scanRequests(chunks: Buffer[], scanner = new RequestScanner()): FoundRequest[] {
  const found: FoundRequest[] = [];
  let base = 0;
  for (const chunk of chunks) {
    let pos = 0;
    while (pos < chunk.length) {
      const end = scanner.scan(chunk, pos);
      if (end < 0) {
        assert.equal(scanner.atBoundary, false, 'a chunk ended mid-command');
        break;
      }
      assert.ok(end > pos && end <= chunk.length, `no progress: ${pos} -> ${end}`);
      assert.equal(scanner.atBoundary, true, 'a command ended');
      const args = scanner.args?.map((arg) => arg.toString('latin1')) ?? null;
      found.push({ end: base + end, kind: scanner.kind, args, inline: scanner.inline });
      pos = end;
    }
    base += chunk.length;
  }
  return found;
}

/** `bytes` cut at the given offsets (sorted, inside the buffer). */
export function cut(bytes: Buffer, at: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let from = 0;
  for (const offset of at) {
    chunks.push(bytes.subarray(from, offset));
    from = offset;
  }
  chunks.push(bytes.subarray(from));
  return chunks;
}

/** Every way of cutting `bytes` into two non-empty chunks. */
export function* twoChunks(bytes: Buffer): Generator<Buffer[]> {
  for (let i = 1; i < bytes.length; i++) yield cut(bytes, [i]);
}

export function oneByteChunks(bytes: Buffer): Buffer[] {
  return Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
}

export function fixedChunks(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return chunks;
}

/** Bytes from text written one char per byte, so "\xff" is the byte 0xff. */
export function bytes(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}
