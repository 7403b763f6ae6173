/**
 * The tag filter: RocketMQ's `TagA || TagB` subscription expression.
 *
 * `*`, an empty or blank expression, null and undefined select every message, tagged or not,
 * as the one MATCH_ALL filter. Otherwise the expression lists tags separated by `||`, with
 * optional whitespace around each; a tag is refused when empty (`A ||`, `||`), when it holds
 * whitespace or a single `|` (both are typos for `||`), or when it is `*` beside other tags.
 * A message matches when its tag equals one of the listed tags; an untagged one never does.
 *
 * `matchesTagsCode` is the ConsumeQueue pre-check: the store's tag code of a record is
 * `javaHashCode(tags)`, 0 for none (record-codec.ts tagsCodeOf), kept as a signed 32-bit int.
 * Hashes collide ('Aa' and 'BB'), so the pre-check only rules records out; `matches` then
 * compares the tag strings, and a colliding tag is never delivered.
 */
import { javaHashCode } from '../../store/checksum.js';
import type { MessageFilter } from './filter-types.js';
import { checkExpression, invalidFilter, MAX_FILTER_TAGS } from './filter-limits.js';

/** Selects every message, with or without a tag. */
export const MATCH_ALL: MessageFilter = Object.freeze({
  type: 'TAG',
  expression: '*',
  matchesTagsCode: (_tagsCode: number): boolean => true,
  matches: (): boolean => true,
});

class TagFilter implements MessageFilter {
  readonly type = 'TAG';
  private readonly tags: ReadonlySet<string>;
  private readonly codes: ReadonlySet<number>;

  constructor(readonly expression: string, tags: ReadonlySet<string>) {
    this.tags = tags;
    this.codes = new Set([...tags].map(javaHashCode));
    Object.freeze(this);
  }

  matchesTagsCode(tagsCode: number): boolean {
    // `| 0` also accepts a code read back as unsigned; it can only add candidates, never drop.
    return this.codes.has(tagsCode | 0);
  }

  matches(tags: string | undefined): boolean {
    return typeof tags === 'string' && this.tags.has(tags);
  }
}

/** Compile a tag expression; throws INVALID_FILTER saying where and what is wrong. */
export function compileTagFilter(expression: unknown): MessageFilter {
  const tags = parseTags(expression);
  return tags === null ? MATCH_ALL : new TagFilter(expression as string, tags);
}

/** The tags an expression lists, or null when it selects everything. */
export function parseTags(expression: unknown): ReadonlySet<string> | null {
  if (expression === null || expression === undefined) return null;
  const src = checkExpression(expression, 'tag');
  const whole = src.trim();
  if (whole === '' || whole === '*') return null;
  const tags = new Set<string>();
  for (let from = 0; ;) {
    const bar = src.indexOf('||', from);
    const end = bar < 0 ? src.length : bar;
    tags.add(checkTag(src, from, end));
    if (tags.size > MAX_FILTER_TAGS) {
      throw invalidFilter(`tag expression lists more than ${MAX_FILTER_TAGS} tags`,
        MAX_FILTER_TAGS, tags.size);
    }
    if (bar < 0) return tags;
    from = bar + 2;
  }
}

/** The tag in src[from, end), trimmed; positions in messages are 1-based. */
function checkTag(src: string, from: number, end: number): string {
  const raw = src.slice(from, end);
  const tag = raw.trim();
  const pos = from + raw.indexOf(tag) + 1;
  if (tag === '') {
    const where = end < src.length ? `before '||' at position ${end + 1}`
      : `after '||' at position ${from - 1}`;
    throw invalidFilter(`empty tag in tag expression: expected a tag ${where}`);
  }
  // A single '|' is the likelier typo, so it is named first.
  const bad = /\|/.exec(tag) ?? /\s/.exec(tag);
  if (bad !== null) {
    const what = bad[0] === '|' ? "a single '|'" : 'whitespace';
    throw invalidFilter(`tag ${JSON.stringify(tag)} at position ${pos} holds ${what} at ` +
      `position ${pos + bad.index}; separate tags with '||'`);
  }
  if (tag === '*') {
    throw invalidFilter(`'*' at position ${pos} selects every tag and cannot be listed with ` +
      'other tags');
  }
  return tag;
}
