/**
 * The layers of docs/architecture.md, checked over every import of lib/ (type imports too, which
 * the lint rule's cycle check leaves out): no cycles at all; clients reach the broker only
 * through its port and never the store; lib/jetstream sees the public barrel only, and nothing
 * outside it loads lib/jetstream; nothing imports upward.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const LIB = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lib');

/** lib-relative path -> the lib-relative paths it imports (relative specifiers only). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) graph.set(path.relative(LIB, full), importsOf(full));
    }
  };
  walk(LIB);
  return graph;
}

function importsOf(file: string): string[] {
  const source = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of source.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = path.resolve(path.dirname(file), m[1]!).replace(/\.js$/, '.ts');
    out.push(path.relative(LIB, target));
  }
  return out;
}

function layerOf(file: string): string {
  const [first] = file.split(path.sep);
  return first!.endsWith('.ts') ? 'root' : first!;
}

function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | null => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') return [...stack.slice(stack.indexOf(next)), next];
      if (state.get(next) === undefined) {
        const found = visit(next);
        if (found !== null) return found;
      }
    }
    stack.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of graph.keys()) {
    if (state.get(node) === undefined) {
      const found = visit(node);
      if (found !== null) return found;
    }
  }
  return null;
}

const graph = importGraph();

describe('the layers of lib/', () => {
  it('reads a graph of the whole library', () => {
    expect(graph.size).toBeGreaterThan(80);
    expect(graph.get(path.join('client', 'producer.ts'))).toContain(path.join('broker', 'port.ts'));
  });

  it('has no import cycle, type imports included', () => {
    expect(findCycle(graph)).toBeNull();
  });

  it('lib/client imports the broker port and nothing else of lib/broker, nothing of lib/store',
    () => {
      const reaching: string[] = [];
      for (const [file, imports] of graph) {
        if (layerOf(file) !== 'client') continue;
        for (const target of imports) {
          const layer = layerOf(target);
          if (layer === 'store' || (layer === 'broker' && target !== path.join('broker', 'port.ts'))
            || ['cli', 'remote', 'replication', 'jetstream'].includes(layer)) {
            reaching.push(`${file} -> ${target}`);
          }
        }
      }
      expect(reaching).toEqual([]);
    });

  it('lib/jetstream imports the public barrel and its own files, and no barrel imports it',
    () => {
      const reaching: string[] = [];
      for (const [file, imports] of graph) {
        const jetstream = layerOf(file) === 'jetstream';
        for (const target of imports) {
          if (jetstream ? layerOf(target) !== 'jetstream' && target !== 'index.ts'
            : layerOf(target) === 'jetstream') reaching.push(`${file} -> ${target}`);
        }
      }
      expect(graph.get(path.join('jetstream', 'index.ts'))).toBeDefined();
      expect(reaching).toEqual([]);
    });

  it('nothing imports upward', () => {
    const allowed: Record<string, readonly string[]> = {
      store: ['store', 'root'],
      replication: ['replication', 'store', 'root'],
      broker: ['broker', 'store', 'root'],
      client: ['client', 'broker', 'root'],
      remote: ['remote', 'broker', 'store', 'root'],
    };
    const upward: string[] = [];
    for (const [file, imports] of graph) {
      const may = allowed[layerOf(file)];
      if (may === undefined) continue;
      for (const target of imports) {
        const layer = layerOf(target);
        const facade = layer === 'root' && !['errors.ts', 'limits.ts', 'channels.ts',
          'validate.ts', 'builtins.ts'].includes(target);
        if (!may.includes(layer) || facade) upward.push(`${file} -> ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
