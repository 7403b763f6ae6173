/**
 * What users read refers only to what they have: the comments of lib/ (shipped as JS and .d.ts,
 * and the API reference), the Markdown documents and the examples never point at files outside
 * the repository (the project's planning documents, `../shared`, seeds, "issue N"), and every
 * relative link, `#anchor` and repository path they name exists.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Words that name something outside the repository. */
const OUTSIDE: readonly (readonly [RegExp, string])[] = [
  [/\.\.\/shared\b/, '../shared'],
  [/\b(?:SPEC|STYLE|ROCKETMQ|MEASUREMENTS)\.md\b/, 'a planning document'],
  [/\b(?:SPEC|ROCKETMQ) §/, 'a planning document'],
  [/\bSTYLE habits?\b/, 'a planning document'],
  [/\bseeds\//, 'seeds/'],
  [/\bissues? #?\d+/i, '"issue N"'],
];

function walk(dir: string, keep: (file: string) => boolean): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (rel !== 'docs/api') out.push(...walk(rel, keep));
    } else if (keep(rel)) {
      out.push(rel);
    }
  }
  return out;
}

/**
 * The comments of a TypeScript or JavaScript file, with the line each starts on: the trivia
 * before and after every node of its syntax tree (a scanner alone misreads templates).
 */
function comments(file: string): { line: number; text: string }[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const ranges = new Map<number, number>();
  const collect = (pos: number): void => {
    for (const r of [...ts.getLeadingCommentRanges(text, pos) ?? [],
      ...ts.getTrailingCommentRanges(text, pos) ?? []]) ranges.set(r.pos, r.end);
  };
  const visit = (node: ts.Node): void => {
    collect(node.pos);
    collect(node.end);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return [...ranges].sort(([a], [b]) => a - b).map(([pos, end]) => ({
    line: source.getLineAndCharacterOfPosition(pos).line + 1, text: text.slice(pos, end) }));
}

/** Every text a user reads, as (file, first line, text) pieces. */
function readable(): { file: string; line: number; text: string }[] {
  const code = [...walk('lib', (f) => f.endsWith('.ts')),
    ...walk('bench', (f) => f.endsWith('.ts')),
    ...walk('examples', (f) => /\.(?:js|ts|mjs)$/.test(f)), 'eslint.config.js'];
  const markdown = [...walk('docs', (f) => f.endsWith('.md')),
    ...fs.readdirSync(root).filter((f) => f.endsWith('.md'))];
  return [
    ...code.flatMap((file) => comments(file).map((c) => ({ file, ...c }))),
    ...markdown.map((file) => ({ file, line: 1,
      text: fs.readFileSync(path.join(root, file), 'utf8') })),
  ];
}

function lineOf(piece: { line: number; text: string }, index: number): number {
  return piece.line + piece.text.slice(0, index).split('\n').length - 1;
}

/** GitHub's anchor of a Markdown heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

function anchors(file: string): Set<string> {
  const text = fs.readFileSync(path.join(root, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));
}

describe('what users read', () => {
  const pieces = readable();

  it('names no file outside the repository', () => {
    const found = new Map<string, string[]>();
    for (const piece of pieces) {
      for (const [pattern, what] of OUTSIDE) {
        for (const m of piece.text.matchAll(new RegExp(pattern.source, `${pattern.flags}g`))) {
          const list = found.get(piece.file) ?? [];
          list.push(`${piece.file}:${lineOf(piece, m.index)}: ${what} (${m[0]})`);
          found.set(piece.file, list);
        }
      }
    }
    expect([...found.values()].flat()).toEqual([]);
  });

  it('links only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const piece of pieces.filter((p) => p.file.endsWith('.md'))) {
      const prose = piece.text.replace(/^```[\s\S]*?^```/gm, (block) => block.replace(/./g, ' '));
      for (const m of prose.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/i.test(target)) continue;
        const [file, anchor] = target.split('#') as [string, string | undefined];
        const resolved = file === '' ? piece.file
          : path.posix.normalize(path.posix.join(path.posix.dirname(piece.file), file));
        const where = `${piece.file}:${lineOf(piece, m.index)}: ${target}`;
        if (resolved.startsWith('..') || !fs.existsSync(path.join(root, resolved))) {
          broken.push(`${where} (no such file)`);
        } else if (anchor !== undefined && resolved.endsWith('.md') &&
          !anchors(resolved).has(anchor)) {
          broken.push(`${where} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('names only repository paths that exist', () => {
    const missing: string[] = [];
    const pathLike = /(?<![\w./-])(?:(?:docs|examples|lib|test|bench|scripts)\/[\w./-]*\w\.(?:md|ts|js|mjs|svg|json)|[A-Z]+\.md)(?![\w/-])/g;
    for (const piece of pieces) {
      for (const m of piece.text.matchAll(pathLike)) {
        if (!fs.existsSync(path.join(root, m[0]))) {
          missing.push(`${piece.file}:${lineOf(piece, m.index)}: ${m[0]}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });
});
