/**
 * The SQL92 filter syntax tree: what the parser builds and the compiler turns into closures.
 *
 * Two sorts of node: a Value (a literal or a property) and a Condition (something true, false
 * or unknown). The parser checks sorts, so every Condition's operands are Values and every
 * AND/OR/NOT operand is a Condition. BETWEEN is rewritten into two comparisons.
 */

export type Value =
  | { readonly kind: 'string'; readonly value: string; readonly pos: number }
  | { readonly kind: 'number'; readonly value: number; readonly pos: number }
  | { readonly kind: 'boolean'; readonly value: boolean; readonly pos: number }
  | { readonly kind: 'null'; readonly pos: number }
  | { readonly kind: 'property'; readonly name: string; readonly pos: number };

export type CompareOp = '=' | '<>' | '<' | '<=' | '>' | '>=';
export type StringTest = 'CONTAINS' | 'STARTSWITH' | 'ENDSWITH';

export type Condition =
  | { readonly kind: 'and' | 'or'; readonly items: readonly Condition[] }
  | { readonly kind: 'not'; readonly item: Condition }
  | { readonly kind: 'const'; readonly value: boolean }
  | { readonly kind: 'compare'; readonly op: CompareOp; readonly left: Value;
      readonly right: Value }
  | { readonly kind: 'isNull'; readonly negated: boolean; readonly operand: Value }
  | { readonly kind: 'in'; readonly negated: boolean; readonly operand: Value;
      readonly list: readonly (string | number)[] }
  | { readonly kind: 'test'; readonly op: StringTest; readonly negated: boolean;
      readonly operand: Value; readonly pattern: string };

/** A node as the parser first sees it: it may turn out to be either sort. */
export type Node = Value | Condition;

const VALUE_KINDS: ReadonlySet<string> = new Set(['string', 'number', 'boolean', 'null',
  'property']);

export function isValue(node: Node): node is Value {
  return VALUE_KINDS.has(node.kind);
}

/** `a > b` read from the other side: `b < a`. */
export const MIRRORED: Readonly<Record<CompareOp, CompareOp>> = {
  '=': '=', '<>': '<>', '<': '>', '<=': '>=', '>': '<', '>=': '<=',
};
